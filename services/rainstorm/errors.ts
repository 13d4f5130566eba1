/**
 * The two refusals of a worker (and their HTTP answers in http.ts): RequestError (400/404, the
 * request is wrong) and TaskGone (503, the task is not here now: the sender re-routes).
 */

/**
 * The task a batch is for is not (or no longer) running here: it moved, was retired or is
 * restarting. Answered 503; the sender re-routes the batch with the routes it gets next.
 */
export class TaskGone extends Error {}

/**
 * A request this worker refuses as it is: answered with `status` (400 unless said otherwise) and
 * `{"error": message}`. Nothing of it reaches an operator or the file system.
 */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
