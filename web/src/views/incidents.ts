// The incident list: filters kept in the hash query, keyset "Load more", and rows updated in
// place from the live stream (a new incident appears at the top, highlighted and announced).
// Keys: j/k move the selection, Enter opens, a acknowledges, / jumps to the filters.
import * as api from "../api";
import type { IncidentView } from "../api.gen";
import { age, errorLine, h, message, severityTag, stateBadge, typingInto } from "../dom";
import {
  apiQuery,
  type Filters,
  fromLocalInput,
  hashQuery,
  matches,
  readFilters,
  STATES,
  toLocalInput,
} from "../filters";
import type { View } from "../view";

const ackable = (v: IncidentView) => v.state === "triggered" || v.state === "snoozed";

export const incidentsView: View = (root, route, shell) => {
  let filters = readFilters(route.query);
  const rows = new Map<number, IncidentView>();
  const fresh = new Set<number>();
  let nextBefore: number | null = null;
  let morePagesLoaded = false;
  let selected: number | null = null;
  let generation = 0;
  const error = errorLine();

  // ---- Filters ----
  const stateSelect = h(
    "select",
    { id: "f-state", name: "state", "data-testid": "filter-state" },
    STATES.map((s) => h("option", { value: s }, s === "open" ? "open (not resolved)" : s)),
  );
  const service = h("input", {
    id: "f-service",
    name: "service",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "any",
    "data-testid": "filter-service",
  });
  const urgency = h(
    "select",
    { id: "f-urgency", name: "urgency", "data-testid": "filter-urgency" },
    h("option", { value: "" }, "any"),
    h("option", { value: "high" }, "high"),
    h("option", { value: "low" }, "low"),
  );
  const mine = h("input", { id: "f-mine", name: "mine", type: "checkbox", "data-testid": "filter-mine" });
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", "data-testid": "filter-since" });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", "data-testid": "filter-until" });

  const showFilters = () => {
    stateSelect.value = filters.state;
    service.value = filters.service;
    urgency.value = filters.urgency;
    mine.checked = filters.mine;
    since.value = toLocalInput(filters.since);
    until.value = toLocalInput(filters.until);
  };

  const applyFilters = () => {
    const next: Filters = {
      state: stateSelect.value as Filters["state"],
      service: service.value.trim(),
      urgency: urgency.value as Filters["urgency"],
      mine: mine.checked,
      since: fromLocalInput(since.value),
      until: fromLocalInput(until.value),
    };
    if (JSON.stringify(next) === JSON.stringify(filters)) return;
    filters = next;
    const q = hashQuery(filters).toString();
    // replaceState fires no hashchange: the list reloads here, the filters keep their focus.
    history.replaceState(null, "", q ? `#/incidents?${q}` : "#/incidents");
    reload();
  };

  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter incidents",
      onsubmit: (e: Event) => {
        e.preventDefault();
        applyFilters();
      },
      onchange: applyFilters,
    },
    h("div", { class: "field" }, h("label", { for: "f-state" }, "State"), stateSelect),
    h("div", { class: "field" }, h("label", { for: "f-service" }, "Service"), service),
    h("div", { class: "field" }, h("label", { for: "f-urgency" }, "Urgency"), urgency),
    h("div", { class: "field check" }, mine, h("label", { for: "f-mine" }, "Only mine")),
    h("div", { class: "field" }, h("label", { for: "f-since" }, "Created since"), since),
    h("div", { class: "field" }, h("label", { for: "f-until" }, "Created before"), until),
    h(
      "div",
      { class: "field buttons" },
      h("button", { type: "submit" }, "Apply"),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            filters = readFilters(new URLSearchParams());
            showFilters();
            history.replaceState(null, "", "#/incidents");
            reload();
          },
        },
        "Clear filters",
      ),
    ),
  );
  showFilters();

  // ---- Table ----
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "incidents", "data-testid": "incident-list" },
    h("caption", { class: "visually-hidden" }, "Incidents, newest first"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["State", "Severity", "Summary", "Service", "Age", "Acknowledged by", "Actions"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    tbody,
  );
  const status = h("p", { class: "list-status", role: "status" }, "Loading…");
  const more = h("button", { type: "button", "data-testid": "load-more", hidden: true }, "Load more");

  function row(v: IncidentView): HTMLTableRowElement {
    const ack = ackable(v)
      ? h("button", { type: "button", class: "primary", "data-testid": "ack" }, "Acknowledge")
      : null;
    ack?.addEventListener("click", () => acknowledge(v.id, ack));
    const isFresh = fresh.has(v.id) && v.state === "triggered";
    return h(
      "tr",
      {
        "data-testid": "incident-row",
        "data-id": v.id,
        "data-state": v.state,
        class: [isFresh ? "fresh" : "", selected === v.id ? "selected" : ""].join(" ").trim() || null,
      },
      h(
        "td",
        { "data-label": "State" },
        stateBadge(v.state),
        v.drill ? h("span", { class: "tag" }, "drill") : null,
        isFresh ? h("span", { class: "tag tag-new" }, "new") : null,
      ),
      h("td", { "data-label": "Severity" }, severityTag(v.severity), " ", h("span", { class: "muted" }, v.urgency)),
      h("td", { "data-label": "Summary", class: "summary" }, h("a", { href: `#/incidents/${v.id}` }, v.summary)),
      h("td", { "data-label": "Service" }, v.service),
      h("td", { "data-label": "Age" }, h("span", { class: "age", "data-created": v.created_at }, age(v.created_at))),
      h("td", { "data-label": "Acknowledged by" }, v.acknowledged_by ?? "—"),
      h("td", { "data-label": "Actions", class: "actions" }, ack),
    );
  }

  const rowEl = (id: number) => tbody.querySelector<HTMLTableRowElement>(`tr[data-id="${id}"]`);

  /** Puts an incident where the filters say it belongs: replaced, inserted in order, or removed. */
  function place(v: IncidentView, fromStream: boolean): void {
    const old = rowEl(v.id);
    if (!matches(filters, v, shell.user)) {
      old?.remove();
      rows.delete(v.id);
      return afterChange();
    }
    if (!old && fromStream) {
      // Older than every loaded row while more pages exist: "Load more" will bring it.
      if (nextBefore !== null && rows.size > 0 && v.id < Math.min(...rows.keys())) return;
      if (v.state === "triggered") {
        fresh.add(v.id);
        shell.announce(`New ${v.severity} incident on ${v.service}: ${v.summary}`);
      }
    }
    rows.set(v.id, v);
    const tr = row(v);
    if (old) {
      const focused = old.contains(document.activeElement);
      old.replaceWith(tr);
      if (focused) tr.querySelector("a")?.focus();
    } else {
      const after = [...tbody.rows].find((r) => Number(r.dataset.id) < v.id) ?? null;
      tbody.insertBefore(tr, after);
    }
    afterChange();
  }

  function afterChange(): void {
    status.textContent = rows.size === 0 ? "No incidents match these filters." : "";
    more.hidden = nextBefore === null;
  }

  /** Fetches the first page and merges it: rows it no longer holds (within its range) go. */
  async function sync(): Promise<void> {
    const gen = generation;
    try {
      const page = await api.listIncidents(apiQuery(filters));
      if (gen !== generation) return;
      const ids = new Set(page.incidents.map((i) => i.id));
      const floor = page.next_before === null ? -Infinity : Math.min(...ids);
      for (const id of [...rows.keys()]) {
        if (id >= floor && !ids.has(id)) {
          rows.delete(id);
          rowEl(id)?.remove();
        }
      }
      if (!morePagesLoaded) nextBefore = page.next_before;
      for (const v of page.incidents) place(v, false);
      afterChange();
      error.show(null);
    } catch (e) {
      if (gen === generation) error.show(`Could not load incidents: ${message(e)}`);
    }
  }

  function reload(): void {
    generation++;
    rows.clear();
    tbody.replaceChildren();
    nextBefore = null;
    morePagesLoaded = false;
    selected = null;
    status.textContent = "Loading…";
    more.hidden = true;
    void sync();
  }

  more.addEventListener("click", async () => {
    if (nextBefore === null) return;
    const gen = generation;
    more.disabled = true;
    try {
      const page = await api.listIncidents(apiQuery(filters, nextBefore));
      if (gen !== generation) return;
      morePagesLoaded = true;
      nextBefore = page.next_before;
      for (const v of page.incidents) place(v, false);
      afterChange();
    } catch (e) {
      error.show(`Could not load more: ${message(e)}`);
    } finally {
      more.disabled = false;
    }
  });

  async function acknowledge(id: number, button?: HTMLButtonElement | null): Promise<void> {
    if (button) button.disabled = true;
    try {
      place(await api.acknowledge(id), false);
      shell.announce(`Incident ${id} acknowledged.`);
      error.show(null);
    } catch (e) {
      if (button) button.disabled = false;
      error.show(`Could not acknowledge incident ${id}: ${message(e)}`);
    }
  }

  // ---- Keyboard ----
  function select(id: number | null): void {
    selected = id;
    for (const tr of tbody.rows) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
    if (id !== null) rowEl(id)?.querySelector("a")?.focus();
  }

  function move(step: number): void {
    const list = [...tbody.rows].map((r) => Number(r.dataset.id));
    if (list.length === 0) return;
    const at = selected === null ? -1 : list.indexOf(selected);
    const next = at < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, at + step));
    select(list[next]);
  }

  const onKey = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (typingInto(e.target)) return;
    if (e.key === "/") {
      e.preventDefault();
      filterBox.open = true;
      service.focus();
      service.select();
    } else if (e.key === "j") {
      move(1);
    } else if (e.key === "k") {
      move(-1);
    } else if (e.key === "Enter" && selected !== null) {
      // A focused link or button does its own thing on Enter.
      if (e.target instanceof HTMLAnchorElement || e.target instanceof HTMLButtonElement) return;
      location.hash = `#/incidents/${selected}`;
    } else if (e.key === "a" && selected !== null) {
      const v = rows.get(selected);
      if (v && ackable(v)) void acknowledge(v.id, rowEl(v.id)?.querySelector("button"));
    }
  };
  document.addEventListener("keydown", onKey);

  // Keep the selection in step with clicks and tabbing.
  tbody.addEventListener("focusin", (e) => {
    const tr = (e.target as HTMLElement).closest("tr");
    if (tr && Number(tr.dataset.id) !== selected) {
      selected = Number(tr.dataset.id);
      for (const r of tbody.rows) r.classList.toggle("selected", r === tr);
    }
  });

  // On a phone the filters fold away unless one is in use, so the list comes first.
  const filterBox = h(
    "details",
    { class: "filter-box", open: matchMedia("(min-width: 761px)").matches || hashQuery(filters).toString() !== "" },
    h("summary", null, "Filters"),
    form,
  );

  root.append(
    h("h1", null, "Incidents"),
    filterBox,
    h("p", { class: "hint" }, "Keys: j / k move, Enter opens, a acknowledges, / jumps to the filters."),
    error.el,
    table,
    status,
    more,
  );

  const ticker = window.setInterval(() => {
    for (const el of tbody.querySelectorAll<HTMLElement>(".age")) el.textContent = age(el.dataset.created ?? "");
  }, 30_000);

  void sync();
  const stop = api.followIncidents({
    onData: (v) => place(v, true),
    onConnected: () => void sync(),
    onStatus: (s) => shell.setLive(s),
  });

  return () => {
    stop();
    clearInterval(ticker);
    document.removeEventListener("keydown", onKey);
  };
};
