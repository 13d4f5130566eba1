/**
 * The dashboard's static files, embedded in the executable (text imports: no files, no CDN, no
 * network at run time) and the client modules transpiled from TypeScript once, at start. Plain
 * TypeScript and no framework: a few small panels redrawn whole on each update (and two SVG
 * drawings as text) do not need one, and the page stays a few tens of KB.
 */
import * as pageText from "./page.html" with { type: "text" };
import * as appText from "./app.ts" with { type: "text" };
import * as signerText from "./signer.ts" with { type: "text" };
import * as drawText from "./draw.ts" with { type: "text" };

/** A text import's content (typed as a namespace, because tsc reads the imported file as a module). */
const textOf = (ns: unknown) => (ns as { default: string }).default;

/** The browser asks for app.ts and its imports ./draw.ts and ./signer.ts by these paths (the import specifiers are kept as written). */
export const DASHBOARD_ASSETS = ["/", "/dashboard/app.ts", "/dashboard/draw.ts", "/dashboard/signer.ts"] as const;

export interface Asset {
  body: string;
  type: string;
}

/** Transpile the client modules (once per process) and return the assets by path. */
export function dashboardAssets(): Map<string, Asset> {
  const ts = new Bun.Transpiler({ loader: "ts", target: "browser" });
  const js = "text/javascript; charset=utf-8";
  return new Map<string, Asset>([
    ["/", { body: textOf(pageText), type: "text/html; charset=utf-8" }],
    ["/dashboard/app.ts", { body: ts.transformSync(textOf(appText)), type: js }],
    ["/dashboard/draw.ts", { body: ts.transformSync(textOf(drawText)), type: js }],
    ["/dashboard/signer.ts", { body: ts.transformSync(textOf(signerText)), type: js }],
  ]);
}
