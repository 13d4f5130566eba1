/**
 * ctl's version, from package.json (bundled into the compiled binary at build time).
 * Interim: services/shared/version.ts (VERSION, the same number for every executable) is being
 * written; ctl should import that once it exists.
 */
import pkg from "../../package.json" with { type: "json" };

export const CTL_VERSION: string = pkg.version;
