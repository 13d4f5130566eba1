/** The dashboard's assets: light (well under the 200 KB), and nothing fetched from elsewhere. */
import { expect, test } from "bun:test";
import { DASHBOARD_ASSETS, dashboardAssets } from "./page.ts";

/** The bound on what the first screen transfers. */
const PAGE_BUDGET_BYTES = 200 * 1024;

test("every asset the page needs is served, in total under the budget", () => {
  const assets = dashboardAssets();
  expect([...assets.keys()]).toEqual([...DASHBOARD_ASSETS]);
  const total = [...assets.values()].reduce((n, a) => n + new TextEncoder().encode(a.body).length, 0);
  expect(total).toBeLessThan(PAGE_BUDGET_BYTES);
});

test("no network at run time: no absolute URL in the page or scripts; scripts import only each other", () => {
  for (const [path, a] of dashboardAssets()) {
    expect([path, a.body.match(/https?:\/\/|\/\/cdn|src="http/g)]).toEqual([path, null]);
    for (const m of a.body.matchAll(/(?:import|from)\s*["']([^"']+)["']/g))
      expect([path, m[1]]).toEqual([path, expect.stringMatching(/^\.\/(draw|signer)\.ts$/)]);
  }
  // The page loads the one module, by the path it is served at.
  expect(dashboardAssets().get("/")!.body).toContain('<script type="module" src="/dashboard/app.ts"></script>');
});
