/**
 * The page's drawings as SVG text, pure (no DOM: app.ts inserts them; draw_test.ts runs them
 * under bun): a task's input-rate sparkline and the HyDFS ring.
 */

/** Samples a sparkline keeps (one per jobs update, about one a second: the last minute). */
export const SPARK_SAMPLES = 60;
const SPARK_W = 90;
const SPARK_H = 18;
/** The ring's drawing: radius and margin in SVG units. */
const RING_R = 100;
const RING_MARGIN = 24;

/** A token (16 hex digits, the first 64 bits of SHA-256) as a fraction of the ring, from its first 32 bits (plenty for a drawing). */
export function ringFraction(token: string): number {
  return parseInt(token.slice(0, 8), 16) / 2 ** 32;
}

/** The point at `fraction` of the circle of radius r around (c, c), clockwise from 12 o'clock, rounded to 0.1. */
export function ringPoint(fraction: number, r: number, c: number): [number, number] {
  const a = fraction * 2 * Math.PI;
  const round = (v: number) => Math.round(v * 10) / 10;
  return [round(c + r * Math.sin(a)), round(c - r * Math.cos(a))];
}

/** Polyline points of `values` scaled into w x h (the largest value at the top; all zero on the bottom line). */
export function sparkPoints(values: number[], w = SPARK_W, h = SPARK_H): string {
  const max = Math.max(...values, 0);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values.map((v, i) => `${Math.round(i * step * 10) / 10},${max > 0 ? Math.round((h - (v / max) * h) * 10) / 10 : h}`).join(" ");
}

export function sparkline(values: number[]): string {
  if (values.length < 2) return "";
  return `<svg class="spark" width="${SPARK_W}" height="${SPARK_H}" viewBox="0 -1 ${SPARK_W} ${SPARK_H + 2}"><polyline fill="none" stroke="currentColor" points="${sparkPoints(values)}"/></svg>`;
}

/** Text or attribute value made safe for HTML. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The ring: a circle, a dot per node token (labelled with its host's last part) and a tick per file token. */
export function ringSvg(nodes: { host: string; token: string }[], files: { name: string; token: string }[]): string {
  const c = RING_R + RING_MARGIN;
  const size = 2 * c;
  const parts = [`<circle cx="${c}" cy="${c}" r="${RING_R}" fill="none" stroke="#bbb"/>`];
  for (const f of files) {
    const [x, y] = ringPoint(ringFraction(f.token), RING_R, c);
    parts.push(`<circle class="file" cx="${x}" cy="${y}" r="2.5"><title>${esc(f.name)}</title></circle>`);
  }
  for (const n of nodes) {
    const fr = ringFraction(n.token);
    const [x, y] = ringPoint(fr, RING_R, c);
    const [lx, ly] = ringPoint(fr, RING_R + 14, c);
    const label = n.host.split(".").at(-1) ?? n.host;
    parts.push(`<circle class="node" cx="${x}" cy="${y}" r="6"><title>${esc(n.host)} ${n.token}</title></circle>`);
    parts.push(`<text x="${lx}" y="${ly}" text-anchor="middle" dominant-baseline="middle">${esc(label)}</text>`);
  }
  return `<svg id="ring-svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">${parts.join("")}</svg>`;
}
