/**
 * Node names and hosts, as pure functions: what is an address or a host name, how a name from the
 * command line becomes a host through the config's aliases, and the names ctl gives the members
 * of a list_mem answer. Separate from context.ts (which asks the cluster) so that it stays free of
 * I/O and is tested with tables.
 */
import { memberHost } from "../member/state.ts";
import { CtlError } from "./errors.ts";

/** "10.0.0.1:6000" -> "10.0.0.1". */
export function hostOf(hostPort: string): string {
  return memberHost(hostPort);
}

/** An IPv4 address as 4 decimal numbers 0-255 without leading zeros (URL parsers read "010" as octal). */
export const IPV4_DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** One host name label: letters, digits and hyphens, 1-63 characters, no hyphen at either end. */
const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Longest host name (RFC 1035). */
const MAX_HOSTNAME_CHARS = 253;

/**
 * Whether `name` is a host name ctl may connect to: dot-separated labels (none empty) with at
 * least one letter, whose last label is not a number. URL parsers read a numeric last label as
 * an IPv4 address ("99" is 0.0.0.99, "0x7f.1" is 127.0.0.1), so a name like that is no host name.
 */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOSTNAME_CHARS || !/[A-Za-z]/.test(name)) return false;
  const labels = name.split(".");
  if (!labels.every((l) => HOSTNAME_LABEL.test(l))) return false;
  const last = labels[labels.length - 1]!;
  return !/^\d+$/.test(last) && !/^0x[0-9a-f]*$/i.test(last);
}

/**
 * The one way ctl turns a node name from the command line into a host: an alias from the config
 * ("01", or "1" for "01"), an IPv4 dotted quad, or a host name (isHostname). Anything else - "99"
 * when there is no alias 99, "1.2.3", "a/b" - is a CtlError that names the value, where it came
 * from (`what`, e.g. "--node") and the aliases there are.
 */
export function resolveNodeName(aliases: Record<string, string>, name: string, what: string): string {
  // Own keys only: "constructor" or "__proto__" are not aliases.
  if (Object.hasOwn(aliases, name)) return aliases[name]!;
  const padded = name.padStart(2, "0");
  if (/^\d+$/.test(name) && Object.hasOwn(aliases, padded)) return aliases[padded]!;
  if (IPV4_DOTTED_QUAD.test(name) || isHostname(name)) return name;
  const known = Object.keys(aliases);
  throw new CtlError(
    `${what} ${JSON.stringify(name)}: expected an alias (${known.length > 0 ? known.join(", ") : "none in the config"}), an IPv4 address such as 10.0.0.5, or a host name such as node1.example.com`,
  );
}

/** A member id "host:udpPort@boot" -> host. */
export { memberHost };

/** IPv4 addresses in numeric order, then host names in alphabetical order. */
export function compareHosts(a: string, b: string): number {
  const ipA = IPV4_DOTTED_QUAD.test(a);
  const ipB = IPV4_DOTTED_QUAD.test(b);
  if (ipA && ipB) {
    const pa = a.split(".").map(Number);
    const pb = b.split(".").map(Number);
    for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
    return 0;
  }
  if (ipA !== ipB) return ipA ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Names for the members of a list_mem answer: the hosts of the members that are alive or
 * suspected, in host order (compareHosts), named 01, 02, ... (3 digits from 100 members on).
 */
export function namesFromMembers(members: { id: string; state: string }[]): Record<string, string> {
  const hosts = [...new Set(members.filter((m) => m.state === "alive" || m.state === "suspect").map((m) => memberHost(m.id)))].sort(compareHosts);
  const digits = Math.max(2, String(hosts.length).length);
  return Object.fromEntries(hosts.map((h, i) => [String(i + 1).padStart(digits, "0"), h]));
}
