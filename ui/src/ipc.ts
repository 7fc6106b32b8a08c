// The only caller of invoke() and listen(): every command the Rust side offers, and the one event
// it sends, typed.
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";

export interface Incident {
  id: number;
  service: string;
  state: string;
  urgency: string;
  severity: string;
  summary: string;
  source: string;
  details: unknown;
  links: { href: string; text?: string }[];
  runbook_url: string | null;
  created_at: string;
  acknowledged_by: string | null;
  drill: boolean;
}

export interface Settings {
  server: string;
  device: string;
  sound: string;
  start_level: number;
  ramp_seconds: number;
  snooze_minutes: number;
  feed_lost_seconds: number;
  on_duty: boolean;
  make_sure_i_hear_it: boolean;
  autostart: boolean;
}

export interface View {
  signed_in: boolean;
  user: string | null;
  connected: boolean;
  lost: boolean;
  /** The oldest ringing incidents (at most 50). */
  ringing: Incident[];
  ringing_total: number;
  pending: number;
  audio: boolean;
  settings: Settings;
  /** Why the saved sign-in cannot be read from the keyring now (it is retried). */
  keyring_problem: string | null;
  sources: SourceView[];
}

export type Kind = "pagerduty" | "opsgenie" | "alertmanager" | "ntfy";

/** A pager besides Reveille, as set up (never its credential). */
export interface SourceConfig {
  name: string;
  kind: Kind;
  url: string;
  email: string;
  matchers: string[];
  query: string;
  topic: string;
  user: string;
  poll_seconds: number;
  silence_minutes: number;
}

export interface SourceView {
  name: string;
  kind: Kind;
  url: string;
  health: { ok: boolean | null; message: string; open: number; lost: boolean; pending: number; note: string | null };
  /** What the tray says of it. */
  line: string;
}

export interface IncidentView {
  incident: Incident;
  /** The server keeps this incident's runbook: ask runbook() for it. */
  runbook_here: boolean;
  runbook_link: string | null;
}

export const status = () => invoke<View>("status");
export const signIn = (server: string, token: string) => invoke<View>("sign_in", { server, token });
export const signOut = () => invoke<View>("sign_out");
export const incident = (id: number) => invoke<IncidentView>("incident", { id });
/** The incident's runbook as sanitised HTML (null: none). */
export const runbook = (id: number) => invoke<string | null>("runbook", { id });
export const act = (id: number, action: "ack" | "snooze" | "resolve") => invoke<void>("act", { id, action });
export const testAlarm = () => invoke<boolean>("test_alarm");
export const stopAlarm = () => invoke<void>("stop_alarm");
export const saveSettings = (settings: Settings) => invoke<View>("save_settings", { settings });
export const addSource = (source: SourceConfig, secret: string) => invoke<View>("add_source", { source, secret });
export const removeSource = (name: string) => invoke<View>("remove_source", { name });
/** The whole view, each time it changes (sent at most ten times a second). */
export const onStatus = (render: (view: View) => void) =>
  listen<View>("status", (event) => render(event.payload));
