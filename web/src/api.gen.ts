// Generated from crates/reveille-protocol by its `typescript` test; do not edit.

export type Severity = "info" | "warning" | "error" | "critical";

export type Urgency = "high" | "low";

export type IncidentState = "triggered" | "acknowledged" | "snoozed" | "resolved";

export type Link = { href: string, text?: string | null, };

export type TimelineEntry = { at: string, 
/**
 * A user name, a device, a monitoring source or `reveille` itself.
 */
actor: string, 
/**
 * Stable machine name: `triggered`, `deduplicated`, `paged`, `acknowledged`, `receipt`, …
 */
kind: string, message: string, data?: unknown, };

export type ErrorCode = "invalid_body" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "payload_too_large" | "rate_limited" | "unavailable" | "internal";

export type ErrorBody = { code: ErrorCode, message: string, 
/**
 * The offending field of the request body, when there is one.
 */
field?: string | null, };

export type IncidentView = { id: number, service: string, dedup_key: string, state: IncidentState, urgency: Urgency, severity: Severity, summary: string, source: string, details: unknown, links: Array<Link>, runbook_url: string | null, created_at: string, updated_at: string, acknowledged_by: string | null, resolved_by: string | null, snoozed_until: string | null, 
/**
 * Users who were paged for this incident.
 */
paged: Array<string>, drill: boolean, 
/**
 * Users whose device reported it cannot make sound for this page.
 */
silent: Array<string>, };

export type IncidentDetailView = { timeline: Array<TimelineEntry>, id: number, service: string, dedup_key: string, state: IncidentState, urgency: Urgency, severity: Severity, summary: string, source: string, details: unknown, links: Array<Link>, runbook_url: string | null, created_at: string, updated_at: string, acknowledged_by: string | null, resolved_by: string | null, snoozed_until: string | null, 
/**
 * Users who were paged for this incident.
 */
paged: Array<string>, drill: boolean, 
/**
 * Users whose device reported it cannot make sound for this page.
 */
silent: Array<string>, };

export type IncidentPage = { incidents: Array<IncidentView>, next_before: number | null, };

export type FeedKind = "page" | "incident";

export type FeedEntryView = { id: number, kind: FeedKind, at: string, incident: IncidentView, };

export type SnoozeRequest = { 
/**
 * How long to stay quiet, in seconds.
 */
seconds: number, };

export type SessionRequest = { token?: string, 
/**
 * The code of a one-time sign-in link (`reveille web-link`).
 */
code?: string, };

export type SessionInfo = { user: string, 
/**
 * Sent back as `X-CSRF-Token` with every request that changes something.
 */
csrf: string, expires_at: string, };

export type ScheduleOnCall = { schedule: string, primary: string | null, shadows: Array<string>, 
/**
 * When this changes next (within a year), if it does.
 */
until: string | null, };

export type LevelOnCall = { 
/**
 * 1 for the first level.
 */
level: number, primaries: Array<string>, shadows: Array<string>, 
/**
 * Minutes before the next level is paged.
 */
delay_minutes: number, };

export type ServiceOnCall = { service: string, levels: Array<LevelOnCall>, 
/**
 * How many more times the ladder runs after the first.
 */
repeat: number, };

export type OnCallReport = { at: string, schedules: Array<ScheduleOnCall>, services: Array<ServiceOnCall>, };

export type Shift = { start: string, end: string, primary: string | null, shadows: Array<string>, };

export type ScheduleView = { schedule: string, time_zone: string, shifts: Array<Shift>, };

export type OverrideRequest = { user: string, start: string, end: string, };

export type OverrideView = { id: number, schedule: string, user: string, start: string, end: string, created_by: string, };

export type DrillRequest = { user?: string | null, 
/**
 * Drill whoever is primary on this schedule now.
 */
schedule?: string | null, };

export type DrillResult = { incident_id: number, user: string, started_at: string, delivered_at: string | null, ringing_at: string | null, 
/**
 * Whether a ringing receipt said the device was silent.
 */
silent: boolean, acked_at: string | null, seconds_to_ack: number | null, };

export type Duty = { schedule: string, 
/**
 * `now` or `next`.
 */
when: string, start: string, end: string, shadow: boolean, };

export type DeviceStatus = { 
/**
 * `desktop`, `watch`, `ntfy`, `fcm`, `apns`, `webpush`, `email` or `matrix`.
 */
kind: string, name: string, live: boolean, detail: string | null, };

export type LastReceipt = { at: string, incident_id: number, 
/**
 * `delivered`, `ringing` or `acked`.
 */
kind: string, device: string, volume: number | null, muted: boolean | null, 
/**
 * The device said it cannot make sound.
 */
silent: boolean, };

export type PersonReadiness = { user: string, on_call: Array<Duty>, devices: Array<DeviceStatus>, last_receipt: LastReceipt | null, last_drill: DrillResult | null, 
/**
 * Why the server counts this person deaf (the escalation ladder passes them), if it does.
 */
deaf: string | null, ready: boolean, 
/**
 * Why `ready` is false, one line each.
 */
reasons: Array<string>, };

export type Readiness = { at: string, people: Array<PersonReadiness>, };

export type CalendarLink = { schedule: string, url: string, };

export type CalendarLinks = { 
/**
 * The caller's own shifts, across every schedule.
 */
me: string, schedules: Array<CalendarLink>, };

export type WebPushInfo = { 
/**
 * The server's VAPID public key: an uncompressed P-256 point, base64url.
 */
public_key: string, 
/**
 * How many browsers of the caller are subscribed.
 */
subscribed: number, };

export type WebPushKeys = { p256dh: string, auth: string, };

export type WebPushSubscription = { endpoint: string, keys: WebPushKeys, };

export type WebPushMessage = { title: string, body: string, incident_id: number, url: string, };
