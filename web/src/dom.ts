// Small DOM and formatting helpers. Server data enters the page only as text through these:
// there is no innerHTML anywhere, attributes are set one by one, and an outside link becomes an
// <a> only when it is http(s).
import type { IncidentState } from "./api.gen";

export type Child = Node | string | number | null | undefined | false | readonly Child[];
type Handler = (event: Event) => void;
export type Attrs = Record<string, string | number | boolean | null | undefined | Handler>;

/** Creates an element: `on…` keys take listeners, `true` sets an empty attribute, null/false skip. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (typeof value === "function") {
      if (!key.startsWith("on")) throw new Error(`listener under a non-event key ${key}`);
      el.addEventListener(key.slice(2), value);
    } else if (key.startsWith("on")) {
      throw new Error(`refusing an inline handler attribute ${key}`);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children, strings as text nodes. */
export function append(parent: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's content. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** The URL if it is absolute http(s), else null. */
export function httpUrl(href: string): string | null {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** A link to somewhere outside: an <a> for http(s), plain text for anything else. */
export function outsideLink(href: string, text?: string | null): HTMLElement {
  const label = text && text.trim() ? text : href;
  const url = httpUrl(href);
  if (url === null) return h("span", { class: "unlinked" }, label === href ? href : `${label} (${href})`);
  return h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, label);
}

const STATES: readonly string[] = ["triggered", "acknowledged", "resolved", "snoozed"];

/** The big state badge; an unknown state is shown as given, in neutral colours. */
export function stateBadge(state: IncidentState | string): HTMLElement {
  const known = STATES.includes(state) ? state : "unknown";
  return h("span", { class: `badge state-${known}`, "data-testid": "state" }, state.toUpperCase());
}

const SEVERITIES: readonly string[] = ["critical", "error", "warning", "info"];

export function severityTag(severity: string): HTMLElement {
  const known = SEVERITIES.includes(severity) ? severity : "unknown";
  return h("span", { class: `severity sev-${known}` }, severity);
}

/** A short red/amber mark like MUTED or SILENT. */
export function alarmMark(text: string): HTMLElement {
  return h("strong", { class: "mark-bad" }, text);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A moment in the browser's own time zone, with a machine-readable <time>. */
export function when(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return "—";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return h("time", { datetime: iso }, dateTime.format(t));
}

/** "45 s", "12 min", "3 h", "2 d". */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** A volume between 0 and 1 as a whole percentage. */
export function percent(volume: number): string {
  return `${Math.round(volume * 100)}%`;
}

/** The message of anything thrown. */
export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An alert paragraph; `show` sets or clears its text. */
export function errorLine(): { el: HTMLElement; show: (e: unknown) => void } {
  const el = h("p", { class: "error", role: "alert" });
  return { el, show: (e) => (el.textContent = e === null || e === "" ? "" : message(e)) };
}

/** Runs a button's action with the button disabled meanwhile; errors go to `onError`. */
export function busy(button: HTMLButtonElement, action: () => Promise<unknown>, onError: (e: unknown) => void) {
  return async () => {
    if (button.disabled) return;
    button.disabled = true;
    onError(null);
    try {
      await action();
    } catch (e) {
      onError(e);
    } finally {
      button.disabled = false;
    }
  };
}

/** True when typing should go to a form control rather than to keyboard shortcuts. */
export function typingInto(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))
  );
}
