// The dashboard in a real browser: Debian's Chromium, driven by playwright-core (no browser download).
// Run by the e2e test `dashboard::the_dashboard_shows_changes_live_and_approves_from_the_page`, which
// starts the stack and passes:
//   DASHBOARD_URL  the page, with its token in the fragment (as `cpctl dashboard` prints it)
//   GRAPHQL_URL    the public endpoint's /graphql, for the changes made through the API
//   TOKEN          the same tenant's token, for those changes
//   APPROVAL_ID    a pending approval the page's user may decide
//   WORKFLOW_KEY   a definition that waits a moment, then completes
//   SCREENSHOT     where to keep the screenshot (CI keeps it as an artifact)
//   CHROMIUM       the browser (default /usr/bin/chromium)
// It prints one line per check and exits non-zero (with a screenshot all the same) on the first failure.

import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

async function gql(query, variables = {}) {
  const resp = await fetch(env("GRAPHQL_URL"), {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${env("TOKEN")}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors?.length) throw new Error(`${body.errors[0].extensions?.code}: ${body.errors[0].message}`);
  return body.data;
}

async function until(what, ms, probe) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in CI: Chromium's sandbox needs a user namespace a container may not give.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const consoleErrors = [];
page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
page.on("pageerror", (e) => consoleErrors.push(String(e)));
let failed = null;
try {
  await page.goto(env("DASHBOARD_URL"));
  await page.waitForSelector('#status[data-state="live"]', { timeout: 15000 });
  if (page.url().includes("token=")) throw new Error("the token stayed in the address bar");
  console.log("connected: live");

  // A change through the API appears on the page within a second. "live" means connected; the event
  // subscription may still be on its way to the subgraph, so the change is made again until one shows,
  // and the one that shows must have shown within the second.
  let name;
  let took;
  for (let attempt = 1; ; attempt++) {
    name = `Renamed ${Date.now()}`;
    const sent = Date.now();
    await gql("mutation($n: String!) { updateTenant(displayName: $n) { id } }", { n: name });
    const shown = await page
      .waitForFunction((n) => [...document.querySelectorAll('#events li[data-event-type="TenantUpdated"] .detail')]
        .some((d) => d.textContent.includes(n)), name, { timeout: 1000 })
      .then(() => true, () => false);
    if (shown) {
      took = Date.now() - sent;
      break;
    }
    if (attempt === 5) throw new Error("no TenantUpdated shown within a second of any of five renames");
  }
  console.log(`TenantUpdated on the page ${took} ms after the mutation was sent`);
  await until("the new name in the header", 3000, async () => (await page.textContent("#tenant")).includes(name));

  // A workflow instance moves through its states on the page.
  const { startWorkflow } = await gql("mutation($k: String!) { startWorkflow(input: { definitionKey: $k }) { id } }", {
    k: env("WORKFLOW_KEY"),
  });
  const row = `#workflows tr[data-instance="${startWorkflow.id}"]`;
  await page.waitForSelector(row, { timeout: 5000 });
  await page.waitForSelector(`${row}[data-status="COMPLETED"]`, { timeout: 15000 });
  console.log(`instance ${startWorkflow.id} shown COMPLETED`);

  // A pending approval, approved from the page, is approved.
  const approval = `#approvals li[data-approval="${env("APPROVAL_ID")}"]`;
  await page.waitForSelector(approval, { timeout: 10000 });
  await page.click(`${approval} button.approve`);
  await until("the approval to be APPROVED", 10000, async () => {
    const { approval: a } = await gql("query($id: ID!) { approval(id: $id) { status } }", { id: env("APPROVAL_ID") });
    return a.status === "APPROVED";
  });
  await page.waitForSelector(approval, { state: "detached", timeout: 5000 });
  console.log("approved from the page");

  // The usage chart and the audit log's signed checkpoint are there.
  await until("twelve hourly usage bars", 5000, async () => (await page.locator("#usage rect").count()) === 12);
  const used = await page.$$eval("#usage rect", (bars) => bars.reduce((n, b) => n + Number(b.dataset.quantity), 0));
  if (used !== 30) throw new Error(`the chart shows ${used} api-calls over 12 hours, not the 30 recorded`);
  console.log(`usage chart: ${used} api-calls over 12 hours`);
  await page.waitForSelector("#audit-size", { timeout: 10000 });
  console.log(`audit checkpoint of ${await page.textContent("#audit-size")} entries shown`);
  if (consoleErrors.length) throw new Error(`the page logged errors: ${consoleErrors.join(" | ")}`);
} catch (e) {
  failed = e;
} finally {
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true }).catch(() => {});
  await browser.close();
}
if (failed) {
  console.error(`FAILED: ${failed.message}`);
  process.exit(1);
}
console.log(`ok (screenshot: ${process.env.SCREENSHOT})`);
