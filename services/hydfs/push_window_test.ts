/**
 * PushWindow: the bounded window of a streamed upload's chunk pushes. Pushes are fakes the test
 * settles by hand, so what runs when is exact and nothing sleeps.
 */
import { expect, test } from "bun:test";
import { PushWindow } from "./push_window.ts";

/** A push the test finishes (ok or failed) when it wants. */
function manualPush() {
  let started = false;
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const push = () => {
    started = true;
    return new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
  };
  return { push, started: () => started, finish: () => finish(), fail: (err: Error) => fail(err) };
}

/** Let settled promises' callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

test("at most `limit` pushes run; add waits for room and starts the next as one finishes", async () => {
  const w = new PushWindow(2);
  const p = [manualPush(), manualPush(), manualPush()];
  await w.add(p[0]!.push);
  await w.add(p[1]!.push);
  expect(w.running).toBe(2);
  let thirdAdded = false;
  const third = w.add(p[2]!.push).then(() => (thirdAdded = true));
  await tick();
  expect([thirdAdded, p[2]!.started()]).toEqual([false, false]);
  p[1]!.finish();
  await third;
  expect([p[2]!.started(), w.running]).toEqual([true, 2]);
  p[0]!.finish();
  p[2]!.finish();
  await w.drain();
  expect(w.running).toBe(0);
});

test("a failure stops further adds and is thrown by drain, which still waits for every running push", async () => {
  const w = new PushWindow(3);
  const a = manualPush();
  const b = manualPush();
  await w.add(a.push);
  await w.add(b.push);
  a.fail(new Error("replica gone"));
  await tick();
  const never = manualPush();
  await expect(w.add(never.push)).rejects.toThrow("replica gone");
  expect(never.started()).toBe(false);
  let drained = false;
  const d = w.drain().catch((err: Error) => {
    drained = true;
    return err.message;
  });
  await tick();
  // b is still running: drain must not return before it.
  expect(drained).toBe(false);
  b.finish();
  expect(await d).toBe("replica gone");
});

test("an add waiting for room is released by a failure (it does not wait for a slot forever)", async () => {
  const w = new PushWindow(1);
  const a = manualPush();
  await w.add(a.push);
  const waiting = w.add(manualPush().push);
  a.fail(new Error("disk full"));
  await expect(waiting).rejects.toThrow("disk full");
});

test("drain of a window that never failed resolves; a limit below 1 is refused", async () => {
  await new PushWindow(4).drain();
  expect(() => new PushWindow(0)).toThrow("push window limit 0");
});
