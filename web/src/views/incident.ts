// One incident: its facts, links, details, the runbook in a sandboxed frame, the timeline with
// device receipts, the actions, and the postmortem download. Kept current from the live stream.
// Everything the server sends is shown as text; the runbook only inside `sandbox=""` srcdoc.
import * as api from "../api";
import type { IncidentView, TimelineEntry } from "../api.gen";
import {
  alarmMark,
  type Child,
  errorLine,
  fill,
  h,
  message,
  outsideLink,
  percent,
  severityTag,
  stateBadge,
  when,
} from "../dom";
import type { View } from "../view";

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const SNOOZES: [number, string][] = [
  [900, "15 minutes"],
  [3600, "1 hour"],
  [14400, "4 hours"],
];

/** The details JSON: a definition list for an object, pretty-printed text otherwise. */
function detailsBlock(details: unknown): HTMLElement {
  if (details === null || details === undefined || (isRecord(details) && Object.keys(details).length === 0)) {
    return h("p", { class: "muted" }, "No details.");
  }
  if (!isRecord(details)) return h("pre", { class: "json" }, JSON.stringify(details, null, 2));
  return h(
    "dl",
    { class: "details" },
    Object.entries(details).map(([key, value]) => [
      h("dt", null, key),
      h(
        "dd",
        null,
        typeof value === "object" && value !== null
          ? h("pre", { class: "json" }, JSON.stringify(value, null, 2))
          : typeof value === "string"
            ? value
            : JSON.stringify(value),
      ),
    ]),
  );
}

/** What a device receipt says: kind, device, volume, and MUTED/SILENT in red. */
function receipt(data: unknown): Child[] {
  if (!isRecord(data)) return [];
  const out: Child[] = [];
  if (typeof data.kind === "string") out.push(h("span", { class: "tag" }, data.kind));
  if (typeof data.device === "string") out.push(` on ${data.device}`);
  if (typeof data.volume === "number") out.push(`, volume ${percent(data.volume)}`);
  if (data.muted === true) out.push(" ", alarmMark("MUTED"));
  if (data.silent === true || data.volume === 0) out.push(" ", alarmMark("SILENT"));
  if (typeof data.output === "string" && data.output) out.push(`, output: ${data.output}`);
  return out;
}

function timelineEntry(e: TimelineEntry): HTMLElement {
  return h(
    "li",
    { "data-testid": "timeline-entry", "data-kind": e.kind },
    h("span", { class: "when" }, when(e.at)),
    " ",
    h("span", { class: "tag kind" }, e.kind),
    " ",
    h("span", { class: "actor" }, e.actor),
    e.message ? [": ", h("span", { class: "message" }, e.message)] : null,
    e.kind === "receipt" ? h("span", { class: "receipt" }, " — ", receipt(e.data)) : null,
  );
}

function fact(term: string, ...value: Child[]): Child {
  return [h("dt", null, term), h("dd", null, ...value)];
}

export const incidentView: View = (root, route, shell) => {
  const id = Number(route.param);
  let alive = true;
  let runbookShown = false;
  const error = errorLine();

  const badges = h("p", { class: "badges" });
  const title = h("h1", { class: "incident-title" }, `Incident #${id}`);
  const facts = h("dl", { class: "facts" });
  const links = h("section", { "aria-labelledby": "links-h" });
  const details = h("div");
  const runbook = h(
    "div",
    { class: "runbook", "data-testid": "runbook" },
    h("p", { class: "muted" }, "Loading the runbook…"),
  );
  const timeline = h("ol", { class: "timeline", "data-testid": "timeline" });

  const ack = h("button", { type: "button", class: "primary", "data-testid": "ack" }, "Acknowledge");
  const snoozeFor = h(
    "select",
    { id: "snooze-for", "data-testid": "snooze-duration" },
    SNOOZES.map(([s, label]) => h("option", { value: s }, label)),
  );
  const snooze = h("button", { type: "button", "data-testid": "snooze" }, "Snooze");
  const snoozeGroup = h(
    "span",
    { class: "snooze" },
    h("label", { for: "snooze-for" }, "Snooze for"),
    snoozeFor,
    snooze,
  );
  const resolve = h("button", { type: "button", "data-testid": "resolve" }, "Resolve");
  const postmortem = h("button", { type: "button", "data-testid": "postmortem" }, "Download postmortem (markdown)");

  const act = (button: HTMLButtonElement, run: () => Promise<IncidentView>, done: string) => {
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.show(null);
      try {
        const v = await run();
        shell.announce(done);
        await refresh(v);
      } catch (e) {
        error.show(`${button.textContent}: ${message(e)}`);
      } finally {
        button.disabled = false;
      }
    });
  };
  act(ack, () => api.acknowledge(id), "Acknowledged.");
  act(snooze, () => api.snooze(id, Number(snoozeFor.value)), "Snoozed.");
  act(resolve, () => api.resolve(id), "Resolved.");

  postmortem.addEventListener("click", async () => {
    postmortem.disabled = true;
    try {
      const text = await api.postmortem(id);
      const url = URL.createObjectURL(new Blob([text], { type: "text/markdown" }));
      const a = h("a", { href: url, download: `incident-${id}.md`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      error.show(`Postmortem: ${message(e)}`);
    } finally {
      postmortem.disabled = false;
    }
  });

  function show(i: IncidentView, entries: TimelineEntry[] | null): void {
    document.title = `#${i.id} ${i.summary} — Reveille`;
    fill(
      badges,
      stateBadge(i.state),
      " ",
      severityTag(i.severity),
      " ",
      h("span", { class: "tag" }, `${i.urgency} urgency`),
      i.drill ? h("span", { class: "tag" }, "drill") : null,
    );
    title.textContent = i.summary;
    ack.hidden = !(i.state === "triggered" || i.state === "snoozed");
    snoozeGroup.hidden = i.state === "resolved";
    resolve.hidden = i.state === "resolved";
    fill(
      facts,
      fact("Incident", `#${i.id}`),
      fact("State", i.state, i.snoozed_until ? [" until ", when(i.snoozed_until)] : null),
      fact("Service", i.service),
      fact("Source", i.source),
      fact("Created", when(i.created_at)),
      fact("Updated", when(i.updated_at)),
      fact("Acknowledged by", i.acknowledged_by ?? "—"),
      fact("Resolved by", i.resolved_by ?? "—"),
      fact("Paged", i.paged.length ? i.paged.join(", ") : "nobody"),
      i.silent.length ? fact("Silent devices", alarmMark("SILENT"), ` ${i.silent.join(", ")}`) : null,
      fact("Dedup key", h("code", null, i.dedup_key)),
      i.runbook_url ? fact("Runbook link", outsideLink(i.runbook_url)) : null,
    );
    fill(
      links,
      h("h2", { id: "links-h" }, "Links"),
      i.links.length
        ? h(
            "ul",
            { class: "links" },
            i.links.map((l) => h("li", null, outsideLink(l.href, l.text))),
          )
        : h("p", { class: "muted" }, "No links."),
    );
    fill(details, detailsBlock(i.details));
    if (entries) {
      fill(
        timeline,
        entries.length ? entries.map(timelineEntry) : h("li", { class: "muted" }, "Nothing has happened yet."),
      );
    }
    if (!runbookShown) {
      runbookShown = true;
      void showRunbook(i.service);
    }
  }

  async function showRunbook(service: string): Promise<void> {
    try {
      const html = await api.runbookHtml(service);
      if (!alive) return;
      if (html === null) return fill(runbook, h("p", { class: "muted" }, `There is no runbook for ${service}.`));
      const frame = h("iframe", {
        sandbox: "",
        title: `Runbook for ${service}`,
        referrerpolicy: "no-referrer",
        "data-testid": "runbook-frame",
      });
      // Set once, with the runbook: no scripts, no same-origin, and its own strict policy too.
      frame.srcdoc =
        `<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" ` +
        `content="default-src 'none'; img-src data:">${html}`;
      fill(runbook, frame);
    } catch (e) {
      fill(runbook, h("p", { class: "error" }, `Could not load the runbook: ${message(e)}`));
    }
  }

  /** Shows `v` at once (when given), then the full detail with the timeline. */
  async function refresh(v?: IncidentView): Promise<void> {
    if (v) show(v, null);
    try {
      const d = await api.getIncident(id);
      if (alive) show(d.incident, d.timeline);
    } catch (e) {
      if (alive) error.show(`Could not load incident #${id}: ${message(e)}`);
    }
  }

  root.append(
    h("p", { class: "back" }, h("a", { href: "#/incidents" }, "← All incidents")),
    badges,
    title,
    error.el,
    h("div", { class: "actions" }, ack, snoozeGroup, resolve, postmortem),
    facts,
    links,
    h("section", { "aria-labelledby": "details-h" }, h("h2", { id: "details-h" }, "Details"), details),
    h("section", { "aria-labelledby": "runbook-h" }, h("h2", { id: "runbook-h" }, "Runbook"), runbook),
    h("section", { "aria-labelledby": "timeline-h" }, h("h2", { id: "timeline-h" }, "Timeline"), timeline),
  );
  for (const b of [ack, snoozeGroup, resolve]) b.hidden = true;

  void refresh();
  const stop = api.followIncidents({
    onData: (v) => v.id === id && void refresh(v),
    onConnected: () => void refresh(),
    onStatus: (s) => shell.setLive(s),
  });
  return () => {
    alive = false;
    stop();
    document.title = "Reveille";
  };
};
