/**
 * The inputs an exactly-once task has processed, in memory bounded by what is in flight rather
 * than by everything the job ever produced (issue 14, item 4).
 *
 * Every tuple's id starts with its source line: the source names line L of src `src:L`, and each
 * stage appends `>` or `>j` (router.ts), so `src:L>>3` comes from line L. The source knows its
 * acknowledged position: every line up to it has been processed by every stage, since a task
 * acknowledges a batch only once its outputs are acknowledged downstream (or, in the last stage,
 * durable in dest). That position is a fact, never taken back (a restarted source or a new
 * leader resumes at or below it, and anything it sends again at or below it is a repeat). It
 * travels with the data as a batch's `floor`, and each task keeps:
 *
 * - `floor`: the highest acknowledged position it has heard of; an input from a line at or below
 *   it is a repeat without looking it up;
 * - the ids of the inputs above the floor that it processed: the ones still in flight somewhere.
 *
 * So the set holds about a window of lines' worth of ids, whatever the job's length; that is how
 * a low watermark bounds a dedup table (Kafka bounds its idempotent producer's state by keeping
 * per producer only the last sequence numbers; our producers' outputs are not ordered, since
 * stateless stages and the source window reorder them, but they all descend from one ordered src).
 * An id whose line cannot be read (not made by our source) stays in the set for the job's life.
 */

/**
 * The source line a tuple id comes from, or undefined when the id does not end in `:L` followed
 * only by `>` / `>j` steps. Read from the end (a character loop, no regex: every input of every
 * exactly-once task goes through here): the longest tail of digits and `>` must follow a `:` and
 * start with 1 to 15 digits, whatever `src` itself holds.
 */
export function originLineOf(id: string): number | undefined {
  let start = id.length;
  while (start > 0) {
    const c = id.charCodeAt(start - 1);
    if ((c >= DIGIT_0 && c <= DIGIT_9) || c === GT) start--;
    else break;
  }
  if (start === 0 || id.charCodeAt(start - 1) !== COLON) return undefined;
  let end = start;
  let line = 0;
  while (end < id.length && end - start < MAX_LINE_DIGITS) {
    const c = id.charCodeAt(end);
    if (c === GT) break;
    line = line * 10 + (c - DIGIT_0);
    end++;
  }
  if (end === start || (end < id.length && id.charCodeAt(end) !== GT)) return undefined;
  return line;
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const GT = 62;
const COLON = 58;
/** 15 digits stay below 2^53: a line number is exact. */
const MAX_LINE_DIGITS = 15;

/**
 * Pruning walks the whole set; it runs when the set has grown by this factor since the last one
 * (and not below PRUNE_MIN_IDS), so its cost per added id is constant and the set stays within
 * twice what is in flight.
 */
const PRUNE_GROWTH = 2;
const PRUNE_MIN_IDS = 4096;

export class SeenIds {
  private readonly ids = new Set<string>();
  private floorLine = 0;
  private sizeAfterPrune = 0;

  /** The highest acknowledged source position heard of: every line up to it is processed everywhere. */
  get floor(): number {
    return this.floorLine;
  }

  /** Ids held (those above the floor, and any without a source line). */
  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.belowFloor(id) || this.ids.has(id);
  }

  /** Remember a processed input (one at or below the floor needs no room: has() knows it). */
  add(id: string): void {
    if (this.belowFloor(id)) return;
    this.ids.add(id);
    if (this.ids.size >= Math.max(PRUNE_MIN_IDS, this.sizeAfterPrune * PRUNE_GROWTH)) this.prune();
  }

  /** A newer acknowledged position (lower ones are old news and change nothing). */
  raiseFloor(floor: number): void {
    if (floor > this.floorLine) this.floorLine = floor;
  }

  /** Forget the ids at or below the floor: has() answers for them without the set. */
  prune(): void {
    if (this.floorLine > 0) for (const id of this.ids) if (this.belowFloor(id)) this.ids.delete(id);
    this.sizeAfterPrune = this.ids.size;
  }

  private belowFloor(id: string): boolean {
    if (this.floorLine === 0) return false;
    const line = originLineOf(id);
    return line !== undefined && line <= this.floorLine;
  }
}
