/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) on a secured
 * 5-node cluster (testNet(31)): the page shows no data and says why until the secret is entered,
 * then lists 5 alive members; a SIGKILLed node turns failed on the page without a reload.
 * Screenshots of each state go to the test's temp dir. Without /usr/bin/chromium (.ci/run
 * installs it when root) the test is skipped with the reason.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { LocalCluster, tempPath, waitFor } from "../../testing/cluster.ts";
import { readLines } from "../../shared/lines.ts";
import { HydfsTestClient } from "../../testing/hydfs_client.ts";
import { RainstormTestClient } from "../../testing/rainstorm_client.ts";
import { testNet } from "../../testing/net.ts";
import { scaled } from "../../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const CHROMIUM = "/usr/bin/chromium";
const SECRET = "dashboard-browser-secret";
const NODES = 5;
const unsupported = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium; .ci/run does when root)`;
if (unsupported) console.warn(`dashboard_browser_test: skipped: ${unsupported}`);

/** The page's member rows as [host, state] (the incarnation column is checked apart). */
async function memberRows(page: Page): Promise<string[][]> {
  return page.$$eval("#members tr:not(:first-child)", (rows) => rows.map((r) => [...r.querySelectorAll("td")].slice(1, 3).map((td) => td.textContent ?? "")));
}

/** The page's task rows as [stage/task, node, pid, rate, restarts]. */
async function taskRows(page: Page): Promise<string[][]> {
  return page.$$eval("#jobs table tr:not(:first-child)", (rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].slice(0, 5).map((td) => td.textContent ?? "")),
  );
}

describe.skipIf(unsupported !== undefined)("dashboard in chromium on a secured 5-node cluster", () => {
  const dir = tempPath("dashboard-browser-");
  const shots = join(dir, "screenshots");
  const c = new LocalCluster({ dir, subnet: testNet(31), secret: SECRET, killOnExit: true });
  let browser: Browser | undefined;
  let page: Page;
  /** The job the job test ran (done by the time the next test runs). */
  let job = "";

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    await c.up(NODES);
    await c.waitAllAlive(c.nodeNumbers);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    // The cluster's data and the screenshots go with the temp dir, unless asked to keep them.
    const keep = process.env.RAINSTORM_KEEP_SCREENSHOTS === "1";
    await c.down(!keep);
    if (keep) console.log(`dashboard_browser_test: screenshots in ${shots}`);
  });

  test("without the secret: no data, the reason, and the secret form", async () => {
    await page.goto(`http://${c.host(1)}:15000/`);
    await page.waitForSelector("#login:not([hidden])", { timeout: scaled(10_000) });
    expect(await page.textContent("#status")).toContain("refused (401): this cluster needs its secret");
    expect(await memberRows(page)).toEqual([]);
    await page.screenshot({ path: join(shots, "1-needs-secret.png") });
  });

  test("a wrong secret is refused, then the right one shows 5 alive members", async () => {
    await page.fill("#secret", "not-the-secret");
    await page.click("#login button");
    await page.waitForFunction("document.getElementById('status').textContent.includes('wrong secret')", undefined, { timeout: scaled(10_000) });
    expect(await memberRows(page)).toEqual([]);
    await page.fill("#secret", SECRET);
    await page.click("#login button");
    const want = c.nodeNumbers.map((k) => [c.host(k), "alive"]);
    await waitFor(async () => JSON.stringify(await memberRows(page)) === JSON.stringify(want), scaled(15_000), "5 alive members on the page");
    expect(await page.isHidden("#login")).toBe(true);
    // Incarnations as memberd has them (every node starts at 0 and stays there unless suspected).
    const incarnations = await page.$$eval("#members tr:not(:first-child) td:nth-child(4)", (tds) => tds.map((td) => td.textContent));
    expect(incarnations).toEqual((await c.members(1)).sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true })).map((m) => String(m.incarnation)));
    await page.screenshot({ path: join(shots, "2-five-alive.png") });
  });

  test("a running job shows its tasks with changing rates; kill_task from the page restarts a task and the page shows it", async () => {
    const lines = Array.from({ length: 1500 }, (_, i) => `line-${i}`);
    await new HydfsTestClient(c).write(1, "create", "input.csv", `${lines.join("\n")}\n`);
    // Paced (100 tuples/s, ~15 s): the job runs while the page is watched.
    const args = ["1", "2", "-stage-config-map", "stage0 echo-wrapper", "input.csv", "out.txt", "false", "false", "100", "0", "0"];
    const run = new RainstormTestClient(c).run(args, scaled(90_000));
    await waitFor(
      async () => (await taskRows(page)).length === 2 && (await page.textContent("#jobs"))?.includes("running"),
      scaled(20_000),
      "2 tasks of a running job",
    );
    const rates = new Set<string>();
    // The rates shown change as the stream pushes new task lists: at least 3 distinct values seen.
    const seenRates = async () => {
      for (const r of await taskRows(page)) rates.add(r[3]!);
      return rates.size >= 3;
    };
    await waitFor(seenRates, scaled(15_000), "task rates that change");
    await page.screenshot({ path: join(shots, "3-job-running.png") });
    const [victim] = await taskRows(page);
    await page.click("#jobs button");
    await waitFor(
      async () => (await taskRows(page)).some((r) => r[0] === victim![0] && r[4] === "1" && r[2] !== victim![2]),
      scaled(20_000),
      `task ${victim![0]} restarted (new pid, restarts 1) on the page`,
    );
    expect(await page.textContent("#status")).toContain(`killed pid ${victim![2]}`);
    await page.screenshot({ path: join(shots, "4-task-restarted.png") });
    const ended = await run;
    expect([ended.failed, ended.done?.tuples_read]).toEqual([undefined, lines.length]);
    job = ended.done!.job;
  });

  test("a node that is not the leader streams the leader's jobs (asked over HTTP); unsigned, it is refused", async () => {
    const url = `http://${c.host(2)}:15000/dashboard/stream`;
    expect((await fetch(url, { signal: AbortSignal.timeout(scaled(5000)) })).status).toBe(401);
    const res = await c.http.fetch(url, { timeoutMs: scaled(5000) });
    expect(res.status).toBe(200);
    const seen: Record<string, any>[] = [];
    const abort = setTimeout(() => void res.body!.cancel(), scaled(10_000));
    for await (const line of readLines(res.body!)) {
      seen.push(JSON.parse(line));
      if (seen.at(-1)!.jobs?.some((j: { job: string; status: string }) => j.job === job && j.status === "done")) break;
    }
    clearTimeout(abort);
    expect(seen[0]).toMatchObject({ event: "snapshot", node: c.host(2), leader: c.host(1) });
    expect(seen.at(-1)!.jobs.map((j: { job: string }) => j.job)).toContain(job);
  });

  test("a SIGKILLed node turns failed without a reload", async () => {
    const before = await page.evaluate(() => performance.timeOrigin);
    c.kill(NODES);
    await waitFor(
      async () => (await memberRows(page)).some(([host, state]) => host === c.host(NODES) && state === "failed"),
      scaled(30_000),
      `node ${NODES} failed on the page`,
    );
    // Same document: the page was updated by its stream, not reloaded.
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(before);
    expect((await memberRows(page)).filter(([, state]) => state === "alive").length).toBe(NODES - 1);
    await page.screenshot({ path: join(shots, "5-node-failed.png") });
  });
});
