/**
 * ctl's errors: a CtlError is a failure ctl states in one line (exit 1, no stack), a CtlHttpError
 * a daemon's non-2xx answer. Separate so the modules that throw them (context.ts, node_names.ts,
 * client_config.ts, hydfs_call.ts, ...) need not import each other.
 */
export class CtlError extends Error {}

/** A daemon's non-2xx answer, with its status (hydfs.ts retries 503; a 421 from rainstormd names the leader). */
export class CtlHttpError extends CtlError {
  constructor(
    message: string,
    readonly status: number,
    /** The answer's JSON body, when it had one. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}
