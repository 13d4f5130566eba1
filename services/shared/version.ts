/**
 * The one version of every executable: package.json's `version` (bun embeds the JSON in compiled
 * executables). `--version` prints it, the ready line and every daemon's `/metrics`
 * (`<daemon>_build_info{version="..."} 1`) carry it.
 */
import pkg from "../../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

/** What `<name> --version` prints. */
export function versionLine(name: string): string {
  return `${name} ${VERSION}`;
}

/** The Prometheus lines of `<daemon>_build_info`, a gauge that is always 1 and carries the version. */
export function buildInfoMetric(daemon: string): string {
  const name = `${daemon}_build_info`;
  return `# HELP ${name} Always 1; the label carries the version of this executable.\n# TYPE ${name} gauge\n${name}{version="${VERSION}"} 1\n`;
}
