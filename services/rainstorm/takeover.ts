/**
 * What a new leader reads to take over (leader.ts recover): the index of jobs and each job's
 * journal (journal.ts), from HyDFS. Separate from the driver because it is all reading and
 * forgiving: a journal that cannot be read or folded costs that one job (logged), not the takeover.
 */
import type { Logger } from "../shared/log.ts";
import type { JobFiles } from "./job_files.ts";
import { foldJournal, JOB_INDEX_NAME, type JournaledJob, journalName, parseIndex } from "./journal.ts";

/** Journals read at once during a takeover (each one HyDFS read). */
const JOURNAL_READS_AT_ONCE = 8;

/**
 * Every job the index lists that still has a journal: running ones (to take over) and ended ones
 * not yet forgotten (to list, and to delete their task logs and journal in time).
 */
export async function readJournals(files: JobFiles, log: Logger): Promise<JournaledJob[]> {
  const index = parseIndex((await files.text(JOB_INDEX_NAME)) ?? "");
  for (const p of index.problems) log.warn(`takeover: ${JOB_INDEX_NAME}: ${p}`);
  const running: JournaledJob[] = [];
  const ids = [...index.jobs];
  const next = async (): Promise<void> => {
    for (let id = ids.shift(); id !== undefined; id = ids.shift()) {
      try {
        const j = foldJournal((await files.text(journalName(id))) ?? "");
        if (j) running.push(j);
      } catch (err) {
        log.warn(`takeover: job ${id}: its journal cannot be read (${(err as Error).message}); it is not taken over`);
      }
    }
  };
  await Promise.all(Array.from({ length: JOURNAL_READS_AT_ONCE }, next));
  return running.sort((a, b) => (a.job < b.job ? -1 : 1));
}
