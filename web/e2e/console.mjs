// The web console in a real browser: Debian's Chromium driven by playwright-core, against a
// running `reveille serve` (started by tests/tests/console.rs, which passes what it needs in the
// environment). Each check prints `ok - …` or `not ok - …`; the exit status is the number failed.
//
// REVEILLE_URL      the server, e.g. http://127.0.0.1:41234
// REVEILLE_CODE     a one-time sign-in code for alice (`reveille web-link`)
// REVEILLE_TOKEN    alice's API token (read, respond, ingest): the "device" and curl's sender
// SCREENSHOTS       a directory to write screenshots to (optional)

import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const url = process.env.REVEILLE_URL;
const code = process.env.REVEILLE_CODE;
const token = process.env.REVEILLE_TOKEN;
const shots = process.env.SCREENSHOTS;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let failed = 0;
let passed = 0;
async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    passed++;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e?.stack ?? e).split("\n").join("\n  ")}`);
  }
}

const api = (path, init = {}) =>
  fetch(url + path, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
  });

async function page(summary, extra = {}) {
  const r = await api("/api/v1/events", {
    method: "POST",
    body: JSON.stringify({ service: "payments", summary, severity: "critical", ...extra }),
  });
  const text = await r.text();
  assert.equal(r.status, 202, text);
  return JSON.parse(text).incident_id;
}

/** alice's device: the SSE feed, held open; `events` collects what it hears. */
async function device() {
  const controller = new AbortController();
  const r = await fetch(url + "/api/v1/feed", {
    headers: { authorization: `Bearer ${token}`, "user-agent": "reveille-desktop/e2e" },
    signal: controller.signal,
  });
  const events = [];
  const reader = r.body.getReader();
  (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += new TextDecoder().decode(value);
        let at;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const kind = /^event: ?(.*)$/m.exec(frame)?.[1];
          const data = /^data: ?(.*)$/m.exec(frame)?.[1];
          if (kind === "page" || kind === "incident") events.push({ kind, ...JSON.parse(data) });
        }
      }
    } catch {}
  })();
  return { events, close: () => controller.abort() };
}

/** Each view, and what shows once it has its data. */
const views = () => [
  ["#/incidents", "incident-row"],
  [`#/incidents/${id}`, "timeline-entry"],
  ["#/oncall", "oncall-primary"],
  ["#/schedules/primary", "shift"],
  ["#/readiness", "person"],
  ["#/calendars", "calendar-url"],
  ["#/settings", "push-status"],
];

async function open(page, view, ready) {
  await page.goto(`${url}/${view}`);
  await page.getByTestId(ready).first().waitFor();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
context.setDefaultTimeout(10000);
const tab = await context.newPage();
tab.on("pageerror", (e) => console.log(`# page error: ${e.message}`));
tab.on("console", (m) => m.type() === "error" && console.log(`# console error: ${m.text()}`));
const dialogs = [];
tab.on("dialog", (d) => {
  dialogs.push(d.message());
  d.dismiss();
});
const requests = [];
tab.on("request", (r) => requests.push(r.url()));
const alice = await device();

await check("a one-time link signs alice in, and works only once", async () => {
  await tab.goto(`${url}/#/signin/${code}`);
  const go = tab.getByTestId("signin-link-continue");
  assert.equal(await go.innerText(), "Sign in as alice");
  await go.click();
  await tab.waitForFunction(() => document.querySelector("[data-testid=whoami]")?.textContent?.includes("alice"));
  await tab.getByTestId("signout").waitFor();
  assert.ok(!tab.url().includes(code), "the code is left in the address bar");
  const again = await fetch(url + "/api/v1/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
  assert.equal(again.status, 401);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "reveille_session");
  assert.ok(session?.httpOnly, "the session cookie is not HttpOnly");
  assert.equal(session.sameSite, "Strict");
  const seen = await tab.evaluate(() => document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage));
  assert.ok(!seen.includes(session.value), "page scripts can see the session secret");
});

let id;
await check("a page sent with curl appears in the open list within 2 s, without a reload", async () => {
  await tab.goto(`${url}/#/incidents`);
  await tab.getByTestId("live-status").waitFor();
  await tab.waitForFunction(() => document.querySelector("[data-testid=live-status]")?.textContent?.match(/live/i));
  const before = await tab.evaluate(() => performance.timeOrigin);
  id = await page("Checkout is down: 5xx on every request");
  const row = tab.locator(`[data-testid=incident-row][data-id="${id}"]`);
  await row.waitFor({ timeout: 2000 });
  assert.match(await row.innerText(), /Checkout is down/);
  assert.equal(await tab.evaluate(() => performance.timeOrigin), before, "the page was reloaded");
});

await check("acknowledging in the browser adds the timeline line and silences alice's device", async () => {
  await tab.goto(`${url}/#/incidents/${id}`);
  await tab.getByTestId("ack").click();
  await tab.locator("[data-testid=timeline-entry]", { hasText: /acknowledged/i }).waitFor();
  const deadline = Date.now() + 5000;
  while (!alice.events.some((e) => e.incident?.id === id && e.incident.state === "acknowledged")) {
    assert.ok(Date.now() < deadline, "alice's device never heard the acknowledgement");
    await new Promise((r) => setTimeout(r, 50));
  }
  if (shots) await tab.screenshot({ path: `${shots}/console-incident.png`, fullPage: true });
});

await check("the postmortem downloads as markdown", async () => {
  const [download] = await Promise.all([tab.waitForEvent("download"), tab.getByTestId("postmortem").click()]);
  assert.equal(download.suggestedFilename(), `incident-${id}.md`);
  const text = readFileSync(await download.path(), "utf8");
  assert.match(text, new RegExp(`^# Incident #${id}: Checkout is down`));
});

await check("a request with the session cookie but no CSRF token is refused", async () => {
  const other = await page("Second incident");
  const refused = await tab.request.post(`${url}/api/v1/incidents/${other}/ack`);
  assert.equal(refused.status(), 403);
  const detail = await (await api(`/api/v1/incidents/${other}`)).json();
  assert.equal(detail.state, "triggered");
  const csrf = (await (await tab.request.get(`${url}/api/v1/session`)).json()).csrf;
  const accepted = await tab.request.post(`${url}/api/v1/incidents/${other}/ack`, {
    headers: { "x-csrf-token": csrf },
  });
  assert.equal(accepted.status(), 200);
});

await check("the console is served under a strict CSP", async () => {
  const r = await fetch(url + "/");
  const csp = r.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
});

await check("taking a shift changes who is on call now", async () => {
  await tab.goto(`${url}/#/oncall`);
  const cell = tab.locator('[data-testid=oncall-primary][data-schedule="primary"]');
  await cell.waitFor();
  assert.match(await cell.innerText(), /bob|carol/);
  assert.doesNotMatch(await cell.innerText(), /alice/);
  await tab.goto(`${url}/#/schedules/primary`);
  await tab.getByTestId("take-shift").first().click();
  await tab.getByTestId("override").first().waitFor();
  if (shots) await tab.screenshot({ path: `${shots}/console-schedule.png`, fullPage: true });
  await tab.goto(`${url}/#/oncall`);
  await tab.waitForFunction(() =>
    document.querySelector('[data-testid=oncall-primary][data-schedule="primary"]')?.textContent?.includes("alice"),
  );
});

await check("alice turns red on the readiness board when her only device goes", async () => {
  await tab.goto(`${url}/#/readiness`);
  const card = tab.locator('[data-testid=person][data-user="alice"]');
  await card.waitFor();
  await tab.waitForFunction(() => document.querySelector('[data-testid=person][data-user="alice"]')?.dataset.ready === "true");
  alice.close();
  await tab.waitForFunction(
    () => document.querySelector('[data-testid=person][data-user="alice"]')?.dataset.ready === "false",
    null,
    { timeout: 10000 },
  );
  assert.match(await card.getByTestId("reasons").innerText(), /device/i);
  if (shots) await tab.screenshot({ path: `${shots}/console-readiness.png`, fullPage: true });
});

await check("50 XSS payloads in summaries, details, links and runbooks run nothing", async () => {
  const payloads = JSON.parse(readFileSync(new URL("./xss.json", import.meta.url), "utf8"));
  assert.ok(payloads.length >= 50);
  const ids = [];
  for (const [n, p] of payloads.entries()) {
    ids.push(
      await page(p, {
        details: { [p]: p, nested: { html: p } },
        links: [{ href: p.includes("javascript:") ? p : `javascript:fetch('/xss-hit-${n}')`, text: p }],
        dedup_key: `xss-${n}`,
      }),
    );
  }
  requests.length = 0;
  await tab.goto(`${url}/#/incidents`);
  await tab.locator(`[data-testid=incident-row][data-id="${ids.at(-1)}"]`).waitFor();
  for (const n of [0, 7, 13, 21, 34, 49]) {
    await tab.goto(`${url}/#/incidents/${ids[n]}`);
    await tab.getByTestId("timeline-entry").first().waitFor();
    await tab.getByTestId("runbook").waitFor();
    for (const link of await tab.locator("main a").all()) {
      const href = (await link.getAttribute("href")) ?? "";
      assert.ok(!/^\s*javascript:/i.test(href), `a javascript: link was made: ${href}`);
    }
  }
  assert.deepEqual(dialogs, [], "a payload opened a dialog");
  const hits = requests.filter((r) => /xss|evil|attacker/i.test(r));
  assert.deepEqual(hits, [], "a payload made a request");
  const injected = await tab.evaluate(() => window.__xss);
  assert.equal(injected, undefined, "a payload ran");
});

await check("axe-core finds no serious or critical violation", async () => {
  const axeContext = await browser.newContext({ bypassCSP: true, colorScheme: "light" });
  await axeContext.addCookies(await context.cookies());
  const axePage = await axeContext.newPage();
  axePage.setDefaultTimeout(10000);
  for (const [view, ready] of views()) {
    await open(axePage, view, ready);
    await axePage.addScriptTag({ content: axeSource });
    const result = await axePage.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(
      bad.map((v) => `${view}: ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`),
      [],
    );
  }
  await axeContext.close();
});

await check("usable at 375 px wide: nothing scrolls sideways", async () => {
  const narrow = await browser.newContext({ viewport: { width: 375, height: 800 } });
  await narrow.addCookies(await context.cookies());
  const phone = await narrow.newPage();
  phone.setDefaultTimeout(10000);
  for (const [view, ready] of views()) {
    await open(phone, view, ready);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${view} is ${width} px wide`);
  }
  if (shots) {
    await phone.goto(`${url}/#/incidents`);
    await phone.locator("[data-testid=incident-row]").first().waitFor();
    await phone.screenshot({ path: `${shots}/console-phone.png` });
  }
  await narrow.close();
});

await check("signing out ends the session on the server", async () => {
  await tab.goto(`${url}/#/incidents`);
  await tab.getByTestId("signout").click();
  await tab.getByTestId("signin-token").waitFor();
  const r = await tab.request.get(`${url}/api/v1/session`);
  assert.equal(r.status(), 401);
});

await browser.close();
console.log(`console: ${passed} passed, ${failed} failed`);
process.exit(failed);
