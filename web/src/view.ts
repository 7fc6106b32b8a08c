// What the shell hands every view, and what a view gives back. Types only.
import type { LiveStatus } from "./api";
import type { SessionInfo } from "./api.gen";
import type { Route } from "./router";

export type Shell = {
  /** The signed-in user's name ("" on the sign-in view). */
  readonly user: string;
  /** Says something through the polite live region (new incidents, results of actions). */
  announce(text: string): void;
  /** The header's live indicator; null hides it (the view follows no stream). */
  setLive(status: LiveStatus | null): void;
  /** The sign-in view reports a new session here; the shell goes to `target`, or else where the
   * person was headed before being asked to sign in. */
  signedIn(session: SessionInfo, target?: string): void;
  /** Replaces the current history entry and renders it (no hashchange needed). */
  replace(hash: string): void;
};

/** Renders into `root` and returns what to undo when the route changes (streams, listeners). */
export type View = (root: HTMLElement, route: Route, shell: Shell) => (() => void) | void;
