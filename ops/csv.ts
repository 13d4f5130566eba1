/**
 * RFC 4180 CSV for one record at a time: the operators see one line of a file per tuple, so
 * there is no multi-line record reassembly here (a quoted field may still hold CR or LF when the
 * caller hands over such a string; it parses and formats correctly).
 *
 * Conventions, chosen so that `parseCsvLine(formatCsvRecord(fields))` returns `fields` for every
 * array of strings (csv_test.ts checks this on random records):
 * - The empty line is the record with no fields (`[]`), and the record with one empty field is
 *   written `""` (Python's csv module does both): otherwise `[]` and `[""]` would collide.
 * - Leniency, because one odd line of a real file must not stop a stream job:
 *   - an unterminated quoted field runs to the end of the line (its `""` pairs still unescape);
 *   - characters after a closing quote and before the next comma are kept (`"ab"c` -> `abc`);
 *   - a quote inside an unquoted field is an ordinary character (`ab"c` -> `ab"c`);
 *   - one trailing CR outside quotes is dropped, so lines of a CRLF file parse like LF ones.
 */

/** Split one CSV line into its fields (see the module comment for the edge cases). */
export function parseCsvLine(line: string): string[] {
  line = withoutLineEnd(line);
  if (line.length === 0) return [];
  // Most lines of real data have no quotes at all: split is many times faster than the scanner.
  if (line.indexOf('"') < 0) return line.split(",");
  const fields: string[] = [];
  let start = 0;
  while (start >= 0) {
    fields.push(readField(line, start));
    start = nextFieldStart;
  }
  return fields;
}

/**
 * Field `col` (0-based) of a CSV line, or undefined when the line has fewer fields. Same result
 * as `parseCsvLine(line)[col]`, but stops at `col`: grep and aggregate key on an early column of
 * 22-field lines, so this skips most of the work.
 */
export function csvField(line: string, col: number): string | undefined {
  line = withoutLineEnd(line);
  if (line.length === 0) return undefined;
  let start = 0;
  for (let c = 0; c < col; c++) {
    // Skipping still has to read the field: a quoted comma is not a separator.
    readField(line, start);
    start = nextFieldStart;
    if (start < 0) return undefined;
  }
  return readField(line, start);
}

/**
 * Where the field after the one readField just read starts, or -1 when that was the last field.
 * A module variable rather than a returned pair: this runs for every field of every tuple, and
 * a pair per field is garbage the hot path does not need.
 */
let nextFieldStart = -1;

/** The field starting at index `start` of a line without its line end; sets nextFieldStart. */
function readField(line: string, start: number): string {
  let i = start;
  let field = "";
  if (line.charCodeAt(i) === 34 /* " */) {
    i++;
    for (;;) {
      const q = line.indexOf('"', i);
      if (q < 0) {
        // Unterminated quote: lenient, the field runs to the end of the line.
        nextFieldStart = -1;
        return field + line.slice(i);
      }
      field += line.slice(i, q);
      if (line.charCodeAt(q + 1) === 34) {
        field += '"';
        i = q + 2;
      } else {
        i = q + 1;
        break;
      }
    }
  }
  // The unquoted part: a whole unquoted field, or stray text after a closing quote.
  const comma = line.indexOf(",", i);
  nextFieldStart = comma < 0 ? -1 : comma + 1;
  return field + line.slice(i, comma < 0 ? line.length : comma);
}

/** The line without one trailing CR (a CRLF file's line end), unless the CR is inside quotes. */
function withoutLineEnd(line: string): string {
  const n = line.length;
  if (n === 0 || line.charCodeAt(n - 1) !== 13 /* \r */) return line;
  return endsInsideQuotes(line) ? line : line.slice(0, -1);
}

/** Quote a field only when it must be: it holds a comma, a quote, CR or LF. */
export function formatCsvField(field: string): string {
  if (!/[",\r\n]/.test(field)) return field;
  return `"${field.replaceAll('"', '""')}"`;
}

/** Join fields into one CSV record (no line terminator); inverse of parseCsvLine. */
export function formatCsvRecord(fields: readonly string[]): string {
  // A lone empty field would print as the empty line, which parses as no fields at all.
  if (fields.length === 1 && fields[0] === "") return '""';
  return fields.map(formatCsvField).join(",");
}

/** True when the line ends inside an open quoted field, so a trailing CR is field content. */
function endsInsideQuotes(line: string): boolean {
  let inQuotes = false;
  let atFieldStart = true;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (inQuotes) {
      if (c === 34) {
        if (line.charCodeAt(i + 1) === 34) i++;
        else inQuotes = false;
      }
    } else if (c === 44 /* , */) {
      atFieldStart = true;
      continue;
    } else if (c === 34 && atFieldStart) {
      inQuotes = true;
    }
    atFieldStart = false;
  }
  return inQuotes;
}
