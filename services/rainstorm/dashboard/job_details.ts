/**
 * A job's details as its card shows them, built from the leader's job events (pure: the hub
 * passes each event and when it heard it; table-tested in job_details_test.ts): the tail of its
 * output, its last scaling decisions and its last restarts, each bounded so a long job keeps the
 * page light.
 */
import type { JobEvent } from "../model.ts";

/** Output lines kept per job (the card's tail). */
export const OUTPUT_TAIL_LINES = 20;
/** Characters of one output line kept (a wide tuple is cut, with an ellipsis). */
export const OUTPUT_LINE_CHARS_MAX = 200;
/** Scaling decisions kept per job, and restarts kept per job. */
export const JOB_EVENTS_KEPT = 10;

/** One `scaled` event: the stage went from `from` to `to` tasks; `at` is when the hub heard it (epoch ms). */
export interface ScalingLine {
  at: number;
  stage: number;
  from: number;
  to: number;
  avg_rate_per_task: number;
  reason: string;
}

/** One `task_restarted` event, heard at `at` (epoch ms). */
export interface RestartLine {
  at: number;
  stage: number;
  index: number;
  node: string;
  pid: number;
  reason: string;
}

export interface JobDetails {
  /** The last OUTPUT_TAIL_LINES output lines, oldest first. */
  output: string[];
  /** Output lines seen since the watch began (the tail is the last of them). */
  output_lines: number;
  scaling: ScalingLine[];
  restarts: RestartLine[];
}

export const noDetails = (): JobDetails => ({ output: [], output_lines: 0, scaling: [], restarts: [] });

/** The last `max` of `items`. */
const lastOf = <T>(items: T[], max: number): T[] => (items.length > max ? items.slice(items.length - max) : items);

const cut = (line: string): string => (line.length > OUTPUT_LINE_CHARS_MAX ? `${line.slice(0, OUTPUT_LINE_CHARS_MAX)}…` : line);

/** The details after `ev` heard at `atMs`; undefined when the event changes nothing the card shows. */
export function withJobEvent(d: JobDetails, ev: JobEvent, atMs: number): JobDetails | undefined {
  switch (ev.event) {
    case "output":
      if (ev.lines.length === 0) return undefined;
      return {
        ...d,
        output: lastOf([...d.output, ...lastOf(ev.lines, OUTPUT_TAIL_LINES).map(cut)], OUTPUT_TAIL_LINES),
        output_lines: d.output_lines + ev.lines.length,
      };
    case "scaled": {
      const { stage, from, to, avg_rate_per_task, reason } = ev;
      return { ...d, scaling: lastOf([...d.scaling, { at: atMs, stage, from, to, avg_rate_per_task, reason }], JOB_EVENTS_KEPT) };
    }
    case "task_restarted": {
      const { stage, index, node, pid, reason } = ev;
      return { ...d, restarts: lastOf([...d.restarts, { at: atMs, stage, index, node, pid, reason }], JOB_EVENTS_KEPT) };
    }
    default:
      return undefined;
  }
}
