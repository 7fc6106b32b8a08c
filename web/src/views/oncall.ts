// Who is on call now: each schedule's primary and shadows, and each service's escalation levels.
import * as api from "../api";
import type { LevelOnCall, OnCallReport } from "../api.gen";
import { type Child, errorLine, fill, h, message, when } from "../dom";
import type { View } from "../view";

const shadowTag = () => h("span", { class: "tag tag-shadow" }, "shadow");

/** Shadows, each with a visible "shadow" mark. */
function shadowNames(shadows: string[]): Child[] {
  return shadows.map((s, n) => [n ? ", " : "", s, " ", shadowTag()]);
}

/** "alice, bob, carol shadow" — the primaries in bold, then the shadows. */
function people(primaries: string[], shadows: string[]): Child[] {
  const out: Child[] = primaries.map((p, n) => [n ? ", " : "", h("strong", null, p)]);
  if (primaries.length === 0) out.push(h("span", { class: "muted" }, "nobody"));
  if (shadows.length) out.push(", ", shadowNames(shadows));
  return out;
}

function level(l: LevelOnCall): HTMLElement {
  return h(
    "li",
    { "data-testid": "oncall-level" },
    h("span", { class: "level" }, `Level ${l.level}: `),
    people(l.primaries, l.shadows),
    h("span", { class: "muted" }, ` — next level after ${l.delay_minutes} min`),
  );
}

function report(r: OnCallReport): Child[] {
  return [
    h("p", { class: "muted" }, "As of ", when(r.at)),
    h("h2", null, "Schedules"),
    r.schedules.length === 0
      ? h("p", { class: "muted" }, "No schedules are configured.")
      : h(
          "ul",
          { class: "cards" },
          r.schedules.map((s) =>
            h(
              "li",
              { class: "card", "data-testid": "oncall-schedule", "data-schedule": s.schedule },
              h("h3", null, h("a", { href: `#/schedules/${encodeURIComponent(s.schedule)}` }, s.schedule)),
              h(
                "p",
                null,
                "Primary: ",
                h("strong", { "data-testid": "oncall-primary", "data-schedule": s.schedule }, s.primary ?? "nobody"),
              ),
              s.shadows.length ? h("p", null, "Shadows: ", shadowNames(s.shadows)) : null,
              h("p", { class: "muted" }, s.until ? ["Until ", when(s.until)] : "No change within a year"),
            ),
          ),
        ),
    h("h2", null, "Services"),
    r.services.length === 0
      ? h("p", { class: "muted" }, "No services are configured.")
      : h(
          "ul",
          { class: "cards" },
          r.services.map((s) =>
            h(
              "li",
              { class: "card", "data-testid": "oncall-service", "data-service": s.service },
              h("h3", null, s.service),
              h("ol", { class: "levels" }, s.levels.map(level)),
              h("p", { class: "muted" }, s.repeat > 0 ? `Repeats ${s.repeat} time(s).` : "Does not repeat."),
            ),
          ),
        ),
  ];
}

export const oncallView: View = (root) => {
  let alive = true;
  const error = errorLine();
  const body = h("div", null, h("p", null, "Loading…"));
  root.append(h("h1", null, "On call"), error.el, body);
  api.onCall().then(
    (r) => alive && fill(body, report(r)),
    (e) => alive && (fill(body), error.show(`Could not load who is on call: ${message(e)}`)),
  );
  return () => {
    alive = false;
  };
};
