/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) on a secured
 * 5-node cluster (testNet(31)): the page shows no data and says why until the secret is entered,
 * then lists 5 alive members with last heard, the leader and its term, and the joins in the
 * timeline; the first screen of a cold load transfers < 200 KB and is drawn within a second; the
 * HyDFS ring has 5 node tokens and a file lists its 3 replicas; a running job's task rates change
 * and draw a sparkline; a running exactly-once job's output tail grows and its task logs show
 * their sizes; an autoscaling job's card shows its scaling decision; kill_task restarts a task
 * and kill_job cancels a job from the page; a
 * SIGKILLed node turns failed without a reload, in the table and the timeline, and leaves the
 * ring, and the files it held show their replica change in the HyDFS activity list. Screenshots
 * of each state go to the test's temp dir. Without /usr/bin/chromium (.ci/run installs it when
 * root) the test is skipped with the reason.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
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
/** The bounds on the first screen: what it transfers, and how soon it is drawn (on this machine). */
const FIRST_SCREEN_BYTES_MAX = 200 * 1024;
const FIRST_SCREEN_MS_MAX = 1000;
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

/** The HyDFS panel's row of a file as [name, bytes, ops, replicas], if listed. */
async function fileRow(page: Page, name: string): Promise<string[] | undefined> {
  const rows = await page.$$eval("#files tr:not(:first-child)", (trs) => trs.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent ?? "")));
  return rows.find((r) => r[0] === name);
}

describe.skipIf(unsupported !== undefined)("dashboard in chromium on a secured 5-node cluster", () => {
  const dir = tempPath("dashboard-browser-");
  const shots = join(dir, "screenshots");
  const c = new LocalCluster({ dir, subnet: testNet(31), secret: SECRET, killOnExit: true });
  let browser: Browser | undefined;
  let page: Page;
  /** The job the job test ran (done by the time the next test runs). */
  let job = "";

  /** Node k's page in a fresh browser context (no cache) whose tab already holds the secret, as after a login. */
  async function signedInPage(k: number): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser!.newContext();
    await context.addInitScript({ content: `sessionStorage.setItem("rainstorm-secret", ${JSON.stringify(SECRET)});` });
    const fresh = await context.newPage();
    await fresh.goto(`http://${c.host(k)}:15000/`);
    return { context, page: fresh };
  }

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

  test("the Cluster panel: last heard of every peer, the protocol, the leader and its term, the timeline", async () => {
    // memberd is asked for last heard every MEMBERD_POLL_MS: each peer heard moments ago; node 1 itself never ("-").
    const heard = async () => page.$$eval("#members tr:not(:first-child) td:nth-child(5)", (tds) => tds.map((td) => td.textContent ?? ""));
    await waitFor(async () => (await heard()).filter((h) => / s ago$/.test(h)).length === NODES - 1, scaled(10_000), "last heard of 4 peers");
    expect((await heard()).filter((h) => h === "-").length).toBe(1);
    expect(await page.textContent("#protocol")).toMatch(/^protocol (pingack|gossip), suspicion (enabled|disabled)/);
    // The term shows once the leader has claimed one (at the first job, or a takeover: leader_seat.ts standby).
    expect(await page.textContent("#node")).toMatch(new RegExp(`^node ${c.host(1)}, leader ${c.host(1)}( \\(term [1-9]\\d*\\))?$`));
    expect(await page.$$eval("#timeline li", (lis) => lis.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, "2b-cluster-panel.png"), fullPage: true });
  });

  test("the first screen of a cold load transfers < 200 KB and is drawn within a second", async () => {
    const { context, page: cold } = await signedInPage(1);
    await cold.waitForFunction("performance.getEntriesByName('rainstorm-first-screen').length > 0", undefined, { timeout: scaled(10_000) });
    // The page and everything it loaded (its scripts) as transferred, headers included, and the
    // stream's snapshot (the data the first screen shows; the stream itself stays open, so it is counted by the page).
    const m: { page: number; other: number; scripts: string[]; data: number; ms: number } = await cold.evaluate(`(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const loaded = performance.getEntriesByType("resource").filter((r) => r.initiatorType !== "fetch");
      const mark = performance.getEntriesByName("rainstorm-first-screen")[0];
      return {
        page: nav.transferSize,
        other: loaded.reduce((n, r) => n + r.transferSize, 0),
        scripts: loaded.filter((r) => r.name.endsWith(".ts")).map((r) => new URL(r.name).pathname).sort(),
        data: mark.detail.bytes,
        ms: mark.startTime,
      };
    })()`);
    const bytes = m.page + m.other + m.data;
    console.log(
      `dashboard first screen: ${bytes} bytes (page ${m.page}, scripts ${m.other}, snapshot ${m.data}), drawn ${m.ms.toFixed(0)} ms after navigation`,
    );
    expect(m.scripts).toEqual(["/dashboard/app.ts", "/dashboard/draw.ts", "/dashboard/signer.ts"]);
    expect(bytes).toBeLessThan(FIRST_SCREEN_BYTES_MAX);
    expect(m.ms).toBeLessThan(scaled(FIRST_SCREEN_MS_MAX));
    await cold.screenshot({ path: join(shots, "2c-cold-load.png") });
    await context.close();
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
    await page.click("#jobs button.kill-task");
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

  test("HyDFS: the ring has a token per node; a file shows its size, ops and 3 replicas", async () => {
    const text = `${Array.from({ length: 1500 }, (_, i) => `line-${i}`).join("\n")}\n`;
    await waitFor(
      async () => (await page.$$("#ring circle.node")).length === NODES && (await fileRow(page, "input.csv")) !== undefined,
      scaled(15_000),
      `${NODES} node tokens and input.csv on the page`,
    );
    const [, bytes, ops, replicas] = (await fileRow(page, "input.csv"))!;
    expect([bytes, ops]).toEqual([String(new TextEncoder().encode(text).length), "1"]);
    const hosts = replicas!.split(", ");
    expect([hosts.length, hosts.every((h) => c.nodeNumbers.some((k) => c.host(k) === h))]).toEqual([3, true]);
    expect(await page.$$eval("#ring circle.file", (dots) => dots.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, "4b-hydfs.png"), fullPage: true });
  });

  test("a running exactly-once job: sparklines, its output tail growing, each task's log size; kill_job from the page turns it cancelled", async () => {
    // Paced (50 tuples/s, ~30 s), exactly-once: the job runs until the page cancels it.
    const args = ["1", "2", "-stage-config-map", "stage0 echo-wrapper", "input.csv", "out-cancelled.txt", "true", "false", "50", "0", "0"];
    let cancelled = "";
    const run = new RainstormTestClient(c).run(args, scaled(90_000), (ev) => (cancelled = ev.event === "accepted" ? ev.job : cancelled));
    const button = () => `#jobs .job[data-job="${cancelled}"] button.kill-job`;
    await waitFor(async () => cancelled !== "" && (await page.$$(button())).length === 1, scaled(20_000), "the running job's kill_job button").catch(
      async (err: Error) => {
        // What the page showed instead (a slow start, or a job that failed), for the one who reads the failure.
        throw new Error(
          `${err.message}; accepted: ${cancelled || "not yet"}; status: ${await page.textContent("#status")}; jobs: ${(await page.textContent("#jobs"))?.slice(0, 400)}`,
        );
      },
    );
    await waitFor(async () => (await page.$$(`#jobs .job[data-job="${cancelled}"] svg.spark polyline`)).length === 2, scaled(15_000), "a sparkline per task");
    const card = `#jobs .job[data-job="${cancelled}"]`;
    // The output tail, pushed from the leader's job events: the count of lines seen goes up at least twice.
    const counts = new Set<number>();
    const tailGrows = async () => {
      const text = (await page.$$eval(`${card} small`, (ss) => ss.map((s) => s.textContent ?? ""))).join(" ");
      const m = /last (\d+) of (\d+) lines seen/.exec(text);
      if (m) counts.add(Number(m[2]));
      return counts.size >= 3;
    };
    await waitFor(tailGrows, scaled(15_000), "an output tail that grows");
    expect(await page.textContent(`${card} pre.tail`)).toMatch(/line-\d+/);
    // Another node follows the job at the leader over HTTP (GET /jobs/:job/events): its stream carries the same details.
    const res = await c.http.fetch(`http://${c.host(2)}:15000/dashboard/stream`, { timeoutMs: scaled(10_000) });
    let remote: Record<string, any> | undefined;
    for await (const line of readLines(res.body!)) {
      const u = JSON.parse(line);
      const d = u.event === "job_details" && u.job === cancelled ? u : u.job_details?.[cancelled];
      if (d?.output.length > 0) remote = d;
      if (remote) break;
    }
    expect(remote!.output.at(-1)).toMatch(/line-\d+/);
    // Each task's exactly-once log size, from the HyDFS survey, and the job's total.
    const logSizes = () => page.$$eval(`${card} td.eo-log`, (tds) => tds.map((td) => Number(td.textContent)));
    await waitFor(async () => (await logSizes()).filter((n) => n > 0).length === 2, scaled(15_000), "2 task log sizes > 0");
    expect(Number(await page.textContent(`${card} .eo-total`))).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, "4c-sparklines.png"), fullPage: true });
    await page.click(button());
    await waitFor(
      async () => (await page.textContent(`#jobs .job[data-job="${cancelled}"] .status`)) === "cancelled",
      scaled(20_000),
      `job ${cancelled} cancelled on the page`,
    );
    expect(await page.textContent("#status")).toContain(`kill_job ${cancelled}`);
    expect(await page.$$(button())).toEqual([]);
    const ended = await run;
    expect(ended.events.at(-1)?.event).toBe("cancelled");
    await page.screenshot({ path: join(shots, "4d-job-cancelled.png"), fullPage: true });
  });

  test("an autoscaling job's scaling decision shows in its card", async () => {
    // 400 tuples/s into one task of a stateless stage with HW 200: it gains a task after a few samples (autoscale.ts).
    const lines = Array.from({ length: 6000 }, (_, i) => `scale-${i}`);
    await new HydfsTestClient(c).write(1, "create", "scale-input.csv", `${lines.join("\n")}\n`);
    const args = ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "scale-input.csv", "out-scaled.txt", "false", "true", "400", "50", "200"];
    let job = "";
    const run = new RainstormTestClient(c).run(args, scaled(90_000), (ev) => (job = ev.event === "accepted" ? ev.job : job));
    const decisions = () => page.$$eval(`#jobs .job[data-job="${job}"] ul.scaling li`, (lis) => lis.map((li) => li.textContent ?? ""));
    await waitFor(async () => job !== "" && (await decisions()).length > 0, scaled(20_000), "a scaling decision in the job's card");
    expect((await decisions()).at(-1)).toMatch(/stage 0: 1 → 2 tasks \([\d.]+ tuples\/s per task\)/);
    await page.screenshot({ path: join(shots, "4e-scaled.png"), fullPage: true });
    // Done with it: cancelled from the page, as above.
    await page.click(`#jobs .job[data-job="${job}"] button.kill-job`);
    expect((await run).events.at(-1)?.event).toBe("cancelled");
  });

  test("a SIGKILLed node turns failed without a reload; its files' replica changes show as HyDFS activity", async () => {
    const before = await page.evaluate(() => performance.timeOrigin);
    // The files it holds a copy of (the jobs above wrote several: inputs, outputs, task logs).
    const allFiles = await page.$$eval("#files tr:not(:first-child)", (trs) => trs.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent ?? "")));
    const held = allFiles.filter((r) => r[3]!.split(", ").includes(c.host(NODES))).map((r) => r[0]!);
    expect(held.length).toBeGreaterThan(0);
    c.kill(NODES);
    await waitFor(
      async () => (await memberRows(page)).some(([host, state]) => host === c.host(NODES) && state === "failed"),
      scaled(30_000),
      `node ${NODES} failed on the page`,
    );
    // Same document: the page was updated by its stream, not reloaded.
    expect(await page.evaluate(() => performance.timeOrigin)).toBe(before);
    expect((await memberRows(page)).filter(([, state]) => state === "alive").length).toBe(NODES - 1);
    // The timeline says so too, and HyDFS takes the node off its ring (the panel follows within a survey or two).
    expect(await page.$$eval("#timeline li.failed b", (bs) => bs.map((b) => b.textContent))).toContain(c.host(NODES));
    await waitFor(async () => (await page.$$("#ring circle.node")).length === NODES - 1, scaled(20_000), "the ring without the killed node");
    // The first survey every node answers again shows those files without the killed node's copy.
    const activity = () => page.$$eval("#hydfs-activity li", (lis) => lis.map((li) => [li.querySelector("b")?.textContent ?? "", li.textContent ?? ""]));
    await waitFor(
      async () =>
        (await activity()).some(
          ([name, line]) => held.includes(name!) && line!.split("→")[0]!.includes(c.host(NODES)) && !line!.split("→")[1]!.includes(c.host(NODES)),
        ),
      scaled(15_000),
      `a replica change of one of ${held.join(", ")} away from ${c.host(NODES)} in the HyDFS activity`,
    );
    await page.screenshot({ path: join(shots, "5-node-failed.png"), fullPage: true });
  });

  test("the leader SIGKILLed: another node's page names the new leader and its term, without a reload", async () => {
    const { context, page: second } = await signedInPage(2);
    const title = () => second.textContent("#node");
    await waitFor(
      async () => (await title())?.startsWith(`node ${c.host(2)}, leader ${c.host(1)} (term `) ?? false,
      scaled(10_000),
      "node 2's page naming node 1",
    );
    const termOf = (text: string | null) => Number(/\(term (\d+)\)/.exec(text ?? "")?.[1] ?? 0);
    const before = termOf(await title());
    const origin = await second.evaluate(() => performance.timeOrigin);
    c.kill(1);
    await waitFor(
      async () => {
        const text = await title();
        return !text?.includes(`leader ${c.host(1)} `) && termOf(text) > before;
      },
      scaled(30_000),
      "a new leader and a higher term on node 2's page",
    );
    expect(await second.evaluate(() => performance.timeOrigin)).toBe(origin);
    await second.screenshot({ path: join(shots, "6-new-leader.png"), fullPage: true });
    await context.close();
  });
});
