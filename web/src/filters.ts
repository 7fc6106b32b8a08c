// The incident list's filters: read from and written to the hash query, turned into the API's
// query, and matched against a live incident the way the server would. Pure.
import type { IncidentView } from "./api.gen";

export const STATES = ["open", "triggered", "acknowledged", "resolved", "all"] as const;
export type StateFilter = (typeof STATES)[number];

export type Filters = {
  state: StateFilter;
  service: string;
  urgency: "" | "high" | "low";
  mine: boolean;
  /** RFC 3339 instants or "". */
  since: string;
  until: string;
};

function instant(s: string | null): string {
  return s && !Number.isNaN(Date.parse(s)) ? s : "";
}

export function readFilters(q: URLSearchParams): Filters {
  const state = q.get("state") ?? "open";
  const urgency = q.get("urgency") ?? "";
  return {
    state: (STATES as readonly string[]).includes(state) ? (state as StateFilter) : "open",
    service: (q.get("service") ?? "").trim(),
    urgency: urgency === "high" || urgency === "low" ? urgency : "",
    mine: q.get("mine") === "true",
    since: instant(q.get("since")),
    until: instant(q.get("until")),
  };
}

/** The query for the hash: only what differs from the defaults. */
export function hashQuery(f: Filters): URLSearchParams {
  const q = new URLSearchParams();
  if (f.state !== "open") q.set("state", f.state);
  if (f.service) q.set("service", f.service);
  if (f.urgency) q.set("urgency", f.urgency);
  if (f.mine) q.set("mine", "true");
  if (f.since) q.set("since", f.since);
  if (f.until) q.set("until", f.until);
  return q;
}

/** The query for `GET /api/v1/incidents`. */
export function apiQuery(f: Filters, before: number | null = null, limit = 50): URLSearchParams {
  const q = hashQuery(f);
  q.set("state", f.state);
  if (before !== null) q.set("before", String(before));
  q.set("limit", String(limit));
  return q;
}

/** Whether the list, filtered as it is, would show this incident. */
export function matches(f: Filters, i: IncidentView, me: string): boolean {
  const open = i.state !== "resolved";
  if (f.state === "open" && !open) return false;
  if (f.state !== "open" && f.state !== "all" && i.state !== f.state) return false;
  if (f.service && i.service !== f.service) return false;
  if (f.urgency && i.urgency !== f.urgency) return false;
  if (f.mine && !i.paged.includes(me) && i.acknowledged_by !== me) return false;
  const created = Date.parse(i.created_at);
  if (f.since && created < Date.parse(f.since)) return false;
  if (f.until && created >= Date.parse(f.until)) return false;
  return true;
}

/** An RFC 3339 instant as a datetime-local value in the browser's zone, and back. */
export function toLocalInput(iso: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fromLocalInput(value: string): string {
  if (!value) return "";
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? "" : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}
