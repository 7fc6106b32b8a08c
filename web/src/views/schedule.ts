// One schedule as a calendar of four weeks, Monday to Sunday, in the schedule's OWN time zone:
// each day runs from one local midnight to the next (23 or 25 hours across a DST change). Shows
// shifts with shadows, overrides with a Remove button, "Take this shift", and a form to add an
// override whose times are read on the schedule's wall clock.
import * as api from "../api";
import type { OverrideView, ScheduleView, Shift } from "../api.gen";
import { type Child, errorLine, fill, h, message } from "../dom";
import type { View } from "../view";
import {
  addDays,
  checkZone,
  clock,
  dayLabel,
  dayStart,
  isoDate,
  type LocalDate,
  localDate,
  mondayOf,
  parseIsoDate,
  parseLocalDateTime,
  rfc3339,
} from "../zone";

const DAY = 86_400_000;
const WEEKS = 4;

type Span = { start: number; end: number };
const span = (x: { start: string; end: string }): Span => ({ start: Date.parse(x.start), end: Date.parse(x.end) });
const overlaps = (a: Span, b: Span) => a.start < b.end && a.end > b.start;

/** "09:00–24:00": the part of `x` inside the day, on the zone's clock. */
function hours(x: Span, day: Span, tz: string): string {
  const from = x.start > day.start ? clock(x.start, tz) : "00:00";
  const to = x.end < day.end ? clock(x.end, tz) : "24:00";
  return `${from}–${to}`;
}

const tag = (text: string, kind: string) => h("span", { class: `tag tag-${kind}` }, text);

export const scheduleView: View = (root, route, shell) => {
  const name = route.param;
  const requested = parseIsoDate(route.query.get("from"));
  let alive = true;
  let zone = "";
  let monday: LocalDate = requested ?? mondayOf(localDate(Date.now(), "UTC"));
  const error = errorLine();
  const status = h("p", { role: "status", class: "status" });
  const title = h("h1", null, `Schedule ${name}`);
  const zoneNote = h("p", { class: "muted" });
  const pager = h("nav", { class: "pager", "aria-label": "Weeks" });
  const calendar = h("div", { class: "calendar", "data-testid": "calendar" }, h("p", null, "Loading…"));

  const userInput = h("input", { id: "ov-user", type: "text", autocomplete: "off", required: true, value: shell.user });
  const startInput = h("input", { id: "ov-start", type: "datetime-local", required: true });
  const endInput = h("input", { id: "ov-end", type: "datetime-local", required: true });
  const formZone = h("p", { class: "hint", id: "ov-zone" });
  const addButton = h("button", { type: "submit", "data-testid": "add-override" }, "Add override");
  const form = h(
    "form",
    { class: "override-form", "aria-labelledby": "ov-h" },
    h("h2", { id: "ov-h" }, "Add an override"),
    formZone,
    h("div", { class: "field" }, h("label", { for: "ov-user" }, "Who"), userInput),
    h("div", { class: "field" }, h("label", { for: "ov-start" }, "Start"), startInput),
    h("div", { class: "field" }, h("label", { for: "ov-end" }, "End"), endInput),
    h("div", { class: "field buttons" }, addButton),
  );
  for (const input of [startInput, endInput]) input.setAttribute("aria-describedby", "ov-zone");

  /** Runs a change, says how it went, and reloads the calendar. */
  async function change(button: HTMLButtonElement, run: () => Promise<unknown>, done: string): Promise<void> {
    button.disabled = true;
    error.show(null);
    try {
      await run();
      status.textContent = done;
      shell.announce(done);
      await load();
    } catch (e) {
      error.show(message(e));
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const start = parseLocalDateTime(startInput.value, zone);
    const end = parseLocalDateTime(endInput.value, zone);
    if (!zone) return error.show("The schedule has not loaded yet.");
    if (start === null || end === null) return error.show("Give both a start and an end.");
    if (end <= start) return error.show("The end must come after the start.");
    const user = userInput.value.trim();
    const body = { user, start: rfc3339(start), end: rfc3339(end) };
    void change(addButton, () => api.addOverride(name, body), `Override added for ${user}.`);
  });

  function shiftEntry(shift: Shift, day: Span, overrides: OverrideView[]): HTMLElement {
    const s = span(shift);
    const overridden = overrides.some(
      (o) => o.user === shift.primary && Date.parse(o.start) <= s.start && Date.parse(o.end) >= s.end,
    );
    // A shift already over cannot be taken; nor can one's own.
    const take =
      shift.primary === shell.user || s.end <= Date.now()
        ? null
        : h("button", { type: "button", class: "small", "data-testid": "take-shift" }, "Take this shift");
    take?.setAttribute("aria-label", `Take this shift: ${hours(s, day, zone)}, now ${shift.primary ?? "nobody"}`);
    take?.addEventListener("click", () =>
      change(
        take,
        () => api.addOverride(name, { user: shell.user, start: shift.start, end: shift.end }),
        "You took the shift.",
      ),
    );
    return h(
      "li",
      { class: "shift", "data-testid": "shift", "data-start": shift.start, "data-end": shift.end },
      h("span", { class: "time" }, hours(s, day, zone)),
      " ",
      shift.primary ? h("strong", { class: "who" }, shift.primary) : h("span", { class: "muted" }, "nobody"),
      overridden ? [" ", tag("override", "override")] : null,
      shift.shadows.map((who) => [", ", who, " ", tag("shadow", "shadow")]),
      take ? [" ", take] : null,
    );
  }

  function overrideEntry(o: OverrideView, day: Span): HTMLElement {
    const remove = h("button", { type: "button", class: "small", "data-testid": "remove-override" }, "Remove");
    remove.setAttribute("aria-label", `Remove the override for ${o.user}`);
    remove.addEventListener("click", () => change(remove, () => api.removeOverride(o.id), "Override removed."));
    return h(
      "li",
      { class: "override", "data-testid": "override", "data-id": o.id },
      h("span", { class: "time" }, hours(span(o), day, zone)),
      " ",
      h("strong", null, o.user),
      " ",
      tag("override", "override"),
      h("span", { class: "muted" }, ` set by ${o.created_by}`),
      " ",
      remove,
    );
  }

  function draw(view: ScheduleView, overrides: OverrideView[]): void {
    title.textContent = `Schedule ${view.schedule}`;
    zoneNote.textContent = `Days and times in ${zone}, the schedule's time zone.`;
    formZone.textContent = `Start and end are read as ${zone} time (the schedule's zone), not your browser's.`;
    const today = isoDate(localDate(Date.now(), zone));
    const link = (date: LocalDate | null, text: string) =>
      h(
        "a",
        { href: `#/schedules/${encodeURIComponent(name)}${date ? `?from=${isoDate(date)}` : ""}`, class: "button" },
        text,
      );
    fill(
      pager,
      link(addDays(monday, -7 * WEEKS), "← Previous 4 weeks"),
      link(null, "This week"),
      link(addDays(monday, 7 * WEEKS), "Next 4 weeks →"),
    );

    const weeks: Child[] = [];
    for (let w = 0; w < WEEKS; w++) {
      const first = addDays(monday, 7 * w);
      const days: Child[] = [];
      for (let d = 0; d < 7; d++) {
        const date = addDays(first, d);
        const day = { start: dayStart(date, zone), end: dayStart(addDays(date, 1), zone) };
        // Shifts and overrides of the day, in order of their start.
        const entries = [
          ...view.shifts
            .filter((s) => overlaps(span(s), day))
            .map((s) => [span(s).start, shiftEntry(s, day, overrides)] as const),
          ...overrides
            .filter((o) => overlaps(span(o), day))
            .map((o) => [span(o).start, overrideEntry(o, day)] as const),
        ]
          .sort((a, b) => a[0] - b[0])
          .map(([, el]) => el);
        const isToday = isoDate(date) === today;
        days.push(
          h(
            "li",
            { class: isToday ? "day today" : "day", "data-date": isoDate(date) },
            h("h3", null, dayLabel(date), isToday ? " (today)" : ""),
            h("ul", null, entries.length ? entries : h("li", { class: "muted" }, "No one on call")),
          ),
        );
      }
      weeks.push(
        h("section", { class: "week" }, h("h2", null, `Week of ${dayLabel(first)}`), h("ol", { class: "days" }, days)),
      );
    }
    fill(calendar, weeks);
  }

  /**
   * Asks with a day's margin around the UTC guess (no zone is further than 14 h from UTC), learns
   * the zone from the answer, and asks again only when the zone's weeks fall outside the margin.
   */
  async function load(): Promise<void> {
    const guess = requested ?? mondayOf(localDate(Date.now(), "UTC"));
    let from = Date.UTC(guess.y, guess.m - 1, guess.d) - DAY;
    let days = 7 * WEEKS + 2;
    try {
      let [view, list] = await Promise.all([api.schedule(name, rfc3339(from), days), api.overrides()]);
      checkZone(view.time_zone);
      zone = view.time_zone;
      monday = requested ?? mondayOf(localDate(Date.now(), zone));
      const start = dayStart(monday, zone);
      const end = dayStart(addDays(monday, 7 * WEEKS), zone);
      if (start < from || end > from + days * DAY) {
        from = start;
        days = 7 * WEEKS + 1;
        view = await api.schedule(name, rfc3339(from), days);
      }
      if (!alive) return;
      const range = { start, end };
      draw(
        view,
        list.filter((o) => o.schedule === view.schedule && overlaps(span(o), range)),
      );
    } catch (e) {
      if (!alive) return;
      if (e instanceof RangeError) error.show(`The schedule's time zone is not one this browser knows: ${message(e)}`);
      else error.show(`Could not load the schedule: ${message(e)}`);
      fill(calendar);
    }
  }

  root.append(title, zoneNote, error.el, status, pager, calendar, form);
  void load();
  return () => {
    alive = false;
  };
};
