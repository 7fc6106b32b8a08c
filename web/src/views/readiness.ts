// The readiness board: a card per person on call now or next, saying whether a page would be
// heard (devices live, last receipt, last drill, deafness) and why not. Follows the readiness
// stream; "Start drill" sends a test page to one person.
import * as api from "../api";
import type { DeviceStatus, DrillResult, Duty, LastReceipt, PersonReadiness, Readiness } from "../api.gen";
import { alarmMark, type Child, errorLine, fill, h, message, percent, when } from "../dom";
import type { View } from "../view";

function duty(d: Duty): HTMLElement {
  return h(
    "li",
    null,
    h("span", { class: "tag" }, d.when),
    " ",
    d.shadow
      ? ["shadow of ", h("strong", null, d.schedule), " ", h("span", { class: "tag tag-shadow" }, "shadow")]
      : ["primary of ", h("strong", null, d.schedule)],
    d.when === "now" ? [" until ", when(d.end)] : [" from ", when(d.start), " until ", when(d.end)],
  );
}

function devices(list: DeviceStatus[]): Child {
  if (list.length === 0) return h("span", { class: "mark-bad" }, "No devices");
  const kinds = [...new Set(list.map((d) => d.kind))];
  return h(
    "ul",
    { class: "devices" },
    kinds.map((kind) =>
      h(
        "li",
        null,
        h("span", { class: "kind" }, `${kind}: `),
        list
          .filter((d) => d.kind === kind)
          .map((d, n) => [
            n ? "; " : "",
            d.name,
            " ",
            h("span", { class: d.live ? "tag tag-ok" : "tag tag-bad" }, d.live ? "live" : "offline"),
            d.detail ? h("span", { class: "muted" }, ` (${d.detail})`) : null,
          ]),
      ),
    ),
  );
}

function receipt(r: LastReceipt | null): Child {
  if (!r) return h("span", { class: "muted" }, "none yet");
  const what: Child = r.silent
    ? alarmMark("SILENT")
    : r.muted
      ? alarmMark("MUTED")
      : r.kind === "ringing"
        ? r.volume === null
          ? "ringing"
          : `ringing at ${percent(r.volume)}`
        : r.kind;
  return [
    what,
    ` on ${r.device}, `,
    when(r.at),
    " (",
    h("a", { href: `#/incidents/${r.incident_id}` }, `#${r.incident_id}`),
    ")",
  ];
}

function drill(d: DrillResult | null): Child {
  if (!d) return h("span", { class: "muted" }, "never");
  const result: Child =
    d.seconds_to_ack !== null
      ? `acked in ${Math.round(d.seconds_to_ack)} s`
      : d.silent
        ? alarmMark("SILENT")
        : h("strong", { class: "mark-bad" }, "not acked");
  return [
    result,
    ", started ",
    when(d.started_at),
    " (",
    h("a", { href: `#/incidents/${d.incident_id}` }, `#${d.incident_id}`),
    ")",
  ];
}

export const readinessView: View = (root, _route, shell) => {
  let alive = true;
  const error = errorLine();
  const asOf = h("p", { class: "muted" });
  const board = h("ul", { class: "cards board", "data-testid": "readiness-board" }, h("li", null, "Loading…"));
  /** What the last "Start drill" said, per person, so a redraw keeps it. */
  const drillNotes = new Map<string, Child>();

  function card(p: PersonReadiness): HTMLElement {
    const note = h("p", { class: "drill-note", role: "status" }, drillNotes.get(p.user) ?? null);
    const start = h("button", { type: "button", "data-testid": "start-drill" }, "Start drill");
    start.setAttribute("aria-label", `Start drill for ${p.user}`);
    start.addEventListener("click", async () => {
      start.disabled = true;
      try {
        const incident = await api.startDrill(p.user);
        const text: Child = [
          "Drill started: ",
          h("a", { href: `#/incidents/${incident.id}` }, `incident #${incident.id}`),
        ];
        drillNotes.set(p.user, text);
        fill(note, text);
        shell.announce(`Drill started for ${p.user}.`);
      } catch (e) {
        fill(note, h("span", { class: "error" }, `Drill failed: ${message(e)}`));
      } finally {
        start.disabled = false;
      }
    });
    const dl = h(
      "dl",
      { class: "facts" },
      h("dt", null, "On call"),
      h("dd", null, p.on_call.length ? h("ul", { class: "duties" }, p.on_call.map(duty)) : "not now or next"),
      h("dt", null, "Devices"),
      h("dd", null, devices(p.devices)),
      h("dt", null, "Last receipt"),
      h("dd", null, receipt(p.last_receipt)),
      h("dt", null, "Last drill"),
      h("dd", null, drill(p.last_drill)),
      h("dt", null, "Counted deaf"),
      h("dd", null, p.deaf ? h("strong", { class: "mark-bad" }, `yes: ${p.deaf}`) : "no"),
    );
    return h(
      "li",
      {
        class: p.ready ? "card person ready" : "card person not-ready",
        "data-testid": "person",
        "data-user": p.user,
        "data-ready": String(p.ready),
      },
      h(
        "h2",
        null,
        p.user,
        " ",
        h("span", { class: p.ready ? "badge ok" : "badge bad" }, p.ready ? "READY" : "NOT READY"),
      ),
      p.ready
        ? null
        : h(
            "ul",
            { class: "reasons", "data-testid": "reasons" },
            p.reasons.map((r) => h("li", null, r)),
          ),
      dl,
      start,
      note,
    );
  }

  let shownAt = -Infinity;

  function draw(r: Readiness): void {
    // The first fetch may answer after the stream has already said something newer.
    const at = Date.parse(r.at);
    if (!alive || at < shownAt) return;
    shownAt = at;
    // Keep keyboard focus on the same control of the same person across a redraw.
    const active = document.activeElement;
    const holder = active instanceof HTMLElement ? active.closest<HTMLElement>("[data-testid=person]") : null;
    const focusUser = holder?.dataset.user;
    const focusId = active instanceof HTMLElement ? active.dataset.testid : undefined;
    fill(asOf, "As of ", when(r.at));
    fill(board, r.people.length ? r.people.map(card) : h("li", { class: "muted" }, "Nobody is on call now or next."));
    if (focusUser && focusId) {
      for (const c of board.querySelectorAll<HTMLElement>("[data-testid=person]")) {
        if (c.dataset.user === focusUser) c.querySelector<HTMLElement>(`[data-testid="${focusId}"]`)?.focus();
      }
    }
    error.show(null);
  }

  root.append(
    h("h1", null, "Readiness"),
    h("p", { class: "hint" }, "Would each person on call hear a page right now? Red cards say why not."),
    asOf,
    error.el,
    board,
  );
  api.readiness().then(draw, (e) => alive && error.show(`Could not load readiness: ${message(e)}`));
  const stop = api.followReadiness({ onData: draw, onStatus: (s) => shell.setLive(s) });
  return () => {
    alive = false;
    stop();
  };
};
