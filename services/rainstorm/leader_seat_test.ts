/**
 * Claiming terms (leader_seat.ts claimTerm) against an in-memory HyDFS with create-once
 * semantics: concurrent claimants each get a different term, terms stay dense (1..N), and a
 * claimant that lost a race takes the next one.
 */
import { expect, test } from "bun:test";
import { highestTerm, termFileName } from "./election.ts";
import type { FileWriter, JobFiles } from "./job_files.ts";
import { claimTerm } from "./leader_seat.ts";

/** Create-once files; every call yields to the event loop first, so concurrent claims interleave. */
class OnceFiles implements JobFiles {
  readonly files = new Map<string, string>();
  async exists(name: string): Promise<boolean> {
    await Promise.resolve();
    return this.files.has(name);
  }
  async text(name: string): Promise<string | undefined> {
    return this.files.get(name);
  }
  async lines(name: string): Promise<AsyncIterable<string>> {
    const text = this.files.get(name);
    if (text === undefined) throw new Error(`reading ${name}: 404 no such file`);
    return (async function* () {
      yield* text.split("\n").filter(Boolean);
    })();
  }
  writer(name: string): FileWriter {
    return {
      write: async (kind, text) => {
        await Promise.resolve();
        if (kind === "create" && this.files.has(name)) throw Object.assign(new Error(`create ${name}: 409 exists`), { status: 409 });
        this.files.set(name, (this.files.get(name) ?? "") + text);
      },
    };
  }
  async remove(name: string): Promise<void> {
    this.files.delete(name);
  }
}

/** Claim until one succeeds, as the seat does (it retries a lost race). */
async function claim(files: JobFiles, addr: string): Promise<number> {
  for (;;) {
    try {
      return await claimTerm(files, addr, 0);
    } catch (err) {
      if (!/409/.test((err as Error).message)) throw err;
    }
  }
}

test("concurrent claimants each get their own term; the terms are 1..N and each file names its claimant", async () => {
  const files = new OnceFiles();
  const addrs = Array.from({ length: 6 }, (_, i) => `127.0.0.${i + 1}:15000`);
  const terms = await Promise.all(addrs.map((a) => claim(files, a)));
  expect([...terms].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  terms.forEach((t, i) => expect(files.files.get(termFileName(t))).toBe(`${addrs[i]}\n`));
  expect(await highestTerm((t) => files.exists(termFileName(t)))).toBe(6);
});

test("a later claim takes the term after the highest, whatever the hint", async () => {
  const files = new OnceFiles();
  for (let t = 1; t <= 9; t++) files.files.set(termFileName(t), "x\n");
  expect(await claimTerm(files, "a:1", 0)).toBe(10);
  expect(await claimTerm(files, "a:1", 3)).toBe(11);
  expect(await claimTerm(files, "a:1", 50)).toBe(12);
});
