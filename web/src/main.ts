// The console's shell: the header (navigation, live indicator, who is signed in), the session,
// and the hash router that hands the main area to one view at a time. Views never talk to each
// other; they get a `Shell` and give back their cleanup.
import "./base.css";
import "./views.css";
import * as api from "./api";
import type { SessionInfo } from "./api.gen";
import { h, message } from "./dom";
import { parseHash, type Route, type RouteName } from "./router";
import type { Shell, View } from "./view";
import { signinView } from "./views/signin";
import { incidentsView } from "./views/incidents";
import { incidentView } from "./views/incident";
import { oncallView } from "./views/oncall";
import { scheduleView } from "./views/schedule";
import { readinessView } from "./views/readiness";
import { calendarsView } from "./views/calendars";
import { settingsView } from "./views/settings";

const byId = (id: string) => document.getElementById(id) as HTMLElement;

const notFound: View = (root) => {
  root.append(h("h1", null, "Not found"), h("p", null, h("a", { href: "#/incidents" }, "Go to the incidents")));
};

const VIEWS: Record<RouteName, View> = {
  signin: signinView,
  incidents: incidentsView,
  incident: incidentView,
  oncall: oncallView,
  schedule: scheduleView,
  readiness: readinessView,
  calendars: calendarsView,
  settings: settingsView,
  notfound: notFound,
};

const SECTION: Partial<Record<RouteName, string>> = { incident: "incidents", schedule: "oncall" };

let session: SessionInfo | null = null;
let returnTo = "#/incidents";
let cleanup: (() => void) | void;
let expiry = 0;

const LIVE_TEXT: Record<api.LiveStatus, string> = {
  connecting: "Connecting…",
  live: "Live",
  retrying: "Offline — reconnecting…",
};

const shell: Shell = {
  get user() {
    return session?.user ?? "";
  },
  announce(text) {
    const region = byId("announcer");
    region.textContent = "";
    // A fresh text node after a tick, so the same words twice are announced twice.
    window.setTimeout(() => (region.textContent = text), 50);
  },
  setLive(status) {
    const el = byId("live");
    el.hidden = status === null;
    el.dataset.state = status ?? "";
    el.textContent = status === null ? "" : LIVE_TEXT[status];
  },
  signedIn(s, target) {
    setSession(s);
    const next = target ?? (returnTo.startsWith("#/signin") ? "#/incidents" : returnTo);
    returnTo = "#/incidents";
    shell.replace(next);
  },
  replace(hash) {
    history.replaceState(null, "", hash);
    render();
  },
};

function setSession(s: SessionInfo | null): void {
  session = s;
  byId("nav").hidden = s === null;
  byId("signout").hidden = s === null;
  const who = byId("whoami");
  who.hidden = s === null;
  who.textContent = s ? `Signed in as ${s.user}` : "";
  clearTimeout(expiry);
  if (s) {
    // When the session runs out, ask the server (it may have been renewed) rather than guess.
    const wait = Math.min(Math.max(Date.parse(s.expires_at) - Date.now(), 0) + 1000, 2 ** 31 - 1);
    if (!Number.isNaN(wait)) expiry = window.setTimeout(recheck, wait);
  }
}

async function recheck(): Promise<void> {
  try {
    const s = await api.getSession();
    if (s) setSession(s);
    else signedOut();
  } catch {
    // Unreachable server: the next request will tell.
  }
}

function signedOut(): void {
  setSession(null);
  const route = parseHash(location.hash);
  if (route.name === "signin") return;
  returnTo = location.hash || "#/incidents";
  shell.replace("#/signin");
}

function markSection(route: Route): void {
  const section = SECTION[route.name] ?? route.name;
  for (const a of byId("nav").querySelectorAll("a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function render(): void {
  cleanup?.();
  cleanup = undefined;
  shell.setLive(null);
  const route = parseHash(location.hash);
  if (session === null && route.name !== "signin") {
    returnTo = location.hash || "#/incidents";
    history.replaceState(null, "", "#/signin");
    return render();
  }
  if (session !== null && route.name === "signin" && route.param === "") {
    history.replaceState(null, "", "#/incidents");
    return render();
  }
  markSection(route);
  const main = byId("main");
  main.replaceChildren();
  cleanup = VIEWS[route.name](main, route, shell);
  // Move focus to the new page's heading unless the view put it somewhere on purpose.
  if (!main.contains(document.activeElement)) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
}

async function boot(): Promise<void> {
  api.onUnauthorized(signedOut);
  byId("signout").addEventListener("click", async () => {
    try {
      await api.signOut();
    } catch {
      // Signed out here whatever the server said; the cookie expires on its own.
    }
    returnTo = "#/incidents";
    setSession(null);
    shell.replace("#/signin");
  });
  window.addEventListener("hashchange", render);
  // A one-time link is used as it is, whoever is signed in now.
  if (parseHash(location.hash).name !== "signin" || parseHash(location.hash).param === "") {
    try {
      setSession(await api.getSession());
    } catch (e) {
      byId("main").replaceChildren(
        h("h1", null, "Reveille"),
        h("p", { class: "error", role: "alert" }, message(e)),
        h("p", null, h("button", { type: "button", onclick: () => location.reload() }, "Try again")),
      );
      return;
    }
  }
  render();
}

boot();
