// Every exchange with the Reveille server: typed fetch wrappers and the two live streams.
// It never touches the page; what a 401 means for the page is the shell's business (see
// `onUnauthorized`). The session cookie is HttpOnly: the only secret scripts hold is the CSRF
// token, kept in memory here and sent with every request that changes something.
import type * as T from "./api.gen";

/** A refused or failed request, with the server's stable code and human message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** An incident with its history, oldest entry first. */
export type Detail = { incident: T.IncidentView; timeline: T.TimelineEntry[] };

let csrf: string | null = null;
/** Counts sign-ins, so a 401 to a request sent before the latest one cannot end the new session. */
let epoch = 0;
let unauthorized: () => void = () => {};

/** What to do when the server says the session is gone (the shell shows the sign-in view). */
export function onUnauthorized(f: () => void): void {
  unauthorized = f;
}

type Options = { method?: string; body?: unknown; accept?: string; signingIn?: boolean; retried?: boolean };

/** The CSRF token is an HMAC under the server's link key: after `reveille rotate-link-key` (or on
 * a node with another key file) the one held here is refused with 403. Read it again once and
 * retry, so an Acknowledge is not lost to it. */
function csrfRefused(res: Response, error: ApiError, o: Options): boolean {
  return res.status === 403 && !o.retried && (o.method ?? "GET") !== "GET" && /CSRF/i.test(error.message);
}

async function send(path: string, o: Options = {}): Promise<Response> {
  const method = o.method ?? "GET";
  const started = epoch;
  const headers: Record<string, string> = { Accept: o.accept ?? "application/json" };
  if (method !== "GET" && csrf !== null) headers["X-CSRF-Token"] = csrf;
  if (o.body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the Reveille server. Check the connection and try again.");
  }
  if (res.ok) return res;
  const error = await toError(res);
  if (csrfRefused(res, error, o) && (await getSession()) !== null) {
    return send(path, { ...o, retried: true });
  }
  // A wrong token on the sign-in form is an answer to show, not a lost session.
  if (res.status === 401 && !o.signingIn && started === epoch) {
    csrf = null;
    unauthorized();
  }
  throw error;
}

async function toError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as Partial<T.ErrorBody>;
    if (typeof body.message === "string") {
      return new ApiError(res.status, String(body.code ?? "error"), body.message, body.field ?? null);
    }
  } catch {
    // Not our JSON error body (a proxy's page, say): fall back to the status line.
  }
  return new ApiError(res.status, "http", `The server answered ${res.status} ${res.statusText}`.trim());
}

async function json<R>(path: string, o: Options = {}): Promise<R> {
  return (await (await send(path, o)).json()) as R;
}

const enc = encodeURIComponent;

// ---- Session ----

/** The current session, or null when not signed in. */
export async function getSession(): Promise<T.SessionInfo | null> {
  try {
    const s = await json<T.SessionInfo>("/api/v1/session", { signingIn: true });
    csrf = s.csrf;
    return s;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/** Signs in with a pasted token or the code of a one-time link. */
export async function signIn(body: { token: string } | { code: string }): Promise<T.SessionInfo> {
  const s = await json<T.SessionInfo>("/api/v1/session", { method: "POST", body, signingIn: true });
  csrf = s.csrf;
  epoch++;
  return s;
}

export async function signOut(): Promise<void> {
  // This browser stops getting the person's pages: the next one to sign in here is someone else.
  try {
    const registration = await navigator.serviceWorker?.getRegistration();
    const subscription = await registration?.pushManager.getSubscription();
    if (subscription) {
      await send("/api/v1/webpush/subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } });
      await subscription.unsubscribe();
    }
  } catch {
    // Signing out goes on: the server removes a subscription the push service calls gone.
  }
  try {
    await send("/api/v1/session", { method: "DELETE", signingIn: true });
  } finally {
    csrf = null;
  }
}

// ---- Incidents ----

export const listIncidents = (query: URLSearchParams) => json<T.IncidentPage>(`/api/v1/incidents?${query}`);

/** Accepts the detail both nested (`{incident, timeline}`) and flattened (incident fields + timeline). */
export async function getIncident(id: number): Promise<Detail> {
  const raw = await json<{ incident?: T.IncidentView; timeline?: T.TimelineEntry[] }>(`/api/v1/incidents/${id}`);
  return { incident: raw.incident ?? (raw as unknown as T.IncidentView), timeline: raw.timeline ?? [] };
}

export const acknowledge = (id: number) => json<T.IncidentView>(`/api/v1/incidents/${id}/ack`, { method: "POST" });

export const resolve = (id: number) => json<T.IncidentView>(`/api/v1/incidents/${id}/resolve`, { method: "POST" });

export const snooze = (id: number, seconds: number) =>
  json<T.IncidentView>(`/api/v1/incidents/${id}/snooze`, { method: "POST", body: { seconds } });

export async function postmortem(id: number): Promise<string> {
  return (await send(`/api/v1/incidents/${id}/postmortem`, { accept: "text/markdown" })).text();
}

/** The service's sanitised runbook as an HTML fragment, or null when it has none. */
export async function runbookHtml(service: string): Promise<string | null> {
  try {
    return await (await send(`/api/v1/runbooks/${enc(service)}?format=html`, { accept: "text/html" })).text();
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

// ---- On call, schedules, overrides ----

export const onCall = () => json<T.OnCallReport>("/api/v1/oncall");

export const schedule = (name: string, from: string, days: number) =>
  json<T.ScheduleView>(`/api/v1/schedules/${enc(name)}?from=${enc(from)}&days=${days}`);

/** Every stored override. Accepts the contract's `{overrides: [...]}` and a bare array. */
export async function overrides(): Promise<T.OverrideView[]> {
  const raw = await json<T.OverrideView[] | { overrides: T.OverrideView[] }>("/api/v1/overrides");
  return Array.isArray(raw) ? raw : raw.overrides;
}

export const addOverride = (scheduleName: string, body: T.OverrideRequest) =>
  json<T.OverrideView>(`/api/v1/schedules/${enc(scheduleName)}/overrides`, { method: "POST", body });

export const removeOverride = (id: number) => json<T.OverrideView>(`/api/v1/overrides/${id}`, { method: "DELETE" });

// ---- Readiness, calendars, Web Push ----

export const readiness = () => json<T.Readiness>("/api/v1/readiness");

export const startDrill = (user: string) => json<T.IncidentView>("/api/v1/drills", { method: "POST", body: { user } });

export const calendars = () => json<T.CalendarLinks>("/api/v1/calendars");

export const webPush = () => json<T.WebPushInfo>("/api/v1/webpush");

export async function addPushSubscription(subscription: PushSubscriptionJSON): Promise<void> {
  await send("/api/v1/webpush/subscriptions", { method: "POST", body: subscription });
}

export async function removePushSubscription(endpoint: string): Promise<void> {
  await send("/api/v1/webpush/subscriptions", { method: "DELETE", body: { endpoint } });
}

// ---- Live streams (Server-Sent Events) ----

export type LiveStatus = "connecting" | "live" | "retrying";

type StreamHooks<D> = {
  /** Each event's data, parsed. */
  onData: (data: D) => void;
  /** Called once per connection, when it is up: the moment to fetch what may have been missed. */
  onConnected?: () => void;
  onStatus?: (status: LiveStatus) => void;
};

/** The server sends a heartbeat every ~25 s; this much silence means the connection is dead. */
const QUIET_LIMIT_MS = 60_000;

/** Capped exponential backoff with ±20 % jitter, so a restarted server is not stampeded. */
export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 15));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Follows one SSE stream until the returned function is called. One explicit cycle:
 * connecting → live → (error or silence) → retrying after a backoff → connecting. The browser's
 * own retry is not used: on any error the source is closed and the session checked first, so an
 * expired session leads to the sign-in view instead of endless retries.
 */
function follow<D>(path: string, event: string, hooks: StreamHooks<D>): () => void {
  let source: EventSource | null = null;
  let attempt = 0;
  let retryTimer = 0;
  let watchdog = 0;
  let stopped = false;

  const connect = () => {
    hooks.onStatus?.("connecting");
    const es = new EventSource(path);
    source = es;
    let connected = false;
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = window.setTimeout(() => fail(es), QUIET_LIMIT_MS);
    };
    // Both the browser's "open" and the server's first event named "open" land here.
    es.addEventListener("open", () => {
      alive();
      if (connected) return;
      connected = true;
      attempt = 0;
      hooks.onStatus?.("live");
      hooks.onConnected?.();
    });
    es.addEventListener("heartbeat", alive);
    es.addEventListener(event, (e) => {
      alive();
      let data: D;
      try {
        data = JSON.parse((e as MessageEvent<string>).data) as D;
      } catch {
        return; // A malformed event is skipped; the next resync corrects the page.
      }
      hooks.onData(data);
    });
    es.addEventListener("error", () => fail(es));
    alive();
  };

  const fail = async (es: EventSource) => {
    if (stopped || source !== es) return;
    es.close();
    source = null;
    clearTimeout(watchdog);
    hooks.onStatus?.("retrying");
    const started = epoch;
    try {
      const session = await getSession();
      if (stopped) return;
      if (session === null && started === epoch) {
        stop();
        unauthorized();
        return;
      }
    } catch {
      // The server is unreachable: keep retrying.
    }
    if (stopped) return;
    retryTimer = window.setTimeout(connect, retryDelay(attempt++));
  };

  const stop = () => {
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(watchdog);
    source?.close();
    source = null;
  };

  connect();
  return stop;
}

/** Every created or changed incident, as it happens. */
export const followIncidents = (hooks: StreamHooks<T.IncidentView>) =>
  follow("/api/v1/incidents/stream", "incident", hooks);

/** The whole readiness board, whenever it changes (and once at connection). */
export const followReadiness = (hooks: StreamHooks<T.Readiness>) =>
  follow("/api/v1/readiness/stream", "readiness", hooks);
