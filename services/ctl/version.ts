/** ctl's version: the one version of every executable (services/shared/version.ts). */
export { VERSION as CTL_VERSION } from "../shared/version.ts";
