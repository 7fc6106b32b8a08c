// The settings and sign-in window.
import * as ipc from "./ipc";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const error = (e: unknown) => ($("error").textContent = String(e));

function field(id: string): HTMLInputElement {
  return $<HTMLInputElement>(id);
}

function render(view: ipc.View) {
  const following = view.signed_in || view.sources.length > 0;
  $("signin").hidden = view.signed_in;
  $("account").hidden = !view.signed_in;
  $("alarm-settings").hidden = !following;
  renderSources(view.sources);
  const state = view.keyring_problem
    ? `${view.keyring_problem} This computer will NOT ring until it can read your sign-in.`
    : !following
    ? "Not signed in: this computer will not ring."
    : view.lost
      ? "FEED LOST — you may miss pages."
      : view.ringing_total > 0
        ? `Ringing for ${view.ringing_total} page(s).`
        : view.connected
          ? "On duty — all quiet."
          : "Connecting…";
  $("state").textContent = view.audio ? state : `${state} No audio output: pages are SILENT here.`;
  $("user").textContent = view.user ?? "";
  $("server-name").textContent = view.settings.server;
  field("server").value ||= view.settings.server;
  // The form is filled when it first appears and after a save, never under the person's fingers.
  if (!formFilled || justSaved) {
    field("start_level").value = String(Math.round(view.settings.start_level * 100));
    field("ramp_seconds").value = String(view.settings.ramp_seconds);
    field("snooze_minutes").value = String(view.settings.snooze_minutes);
    field("feed_lost_seconds").value = String(view.settings.feed_lost_seconds);
    field("device").value = view.settings.device;
    $<HTMLSelectElement>("sound").value = view.settings.sound;
    field("make_sure_i_hear_it").checked = view.settings.make_sure_i_hear_it;
    field("autostart").checked = view.settings.autostart;
    formFilled = true;
    justSaved = false;
  }
  const list = $("ringing");
  list.replaceChildren(
    ...view.ringing.map((i) => {
      const li = document.createElement("li");
      li.textContent = `#${i.id} [${i.severity}] ${i.service}: ${i.summary}`;
      return li;
    }),
  );
  const more = view.ringing_total - view.ringing.length;
  if (more > 0) {
    const li = document.createElement("li");
    li.textContent = `…and ${more} more.`;
    list.append(li);
  }
  current = view;
}

/** One line per pager: what the tray says of it, what its last answer did, and Remove. */
function renderSources(sources: ipc.SourceView[]) {
  $("sources").replaceChildren(
    ...sources.map((source) => {
      const li = document.createElement("li");
      li.className = source.health.ok === false ? "error" : "";
      li.dataset.source = source.name;
      const text = document.createElement("span");
      text.textContent = source.line + (source.health.note ? ` — ${source.health.note}` : "");
      const remove = document.createElement("button");
      remove.textContent = "Remove";
      remove.addEventListener("click", async () => {
        try {
          render(await ipc.removeSource(source.name));
        } catch (e) {
          error(e);
        }
      });
      li.append(text, " ", remove);
      return li;
    }),
  );
}

/** Shows the fields the chosen kind of pager uses, named as that pager names them. */
function showSourceFields() {
  const kind = $<HTMLSelectElement>("source-kind").value as ipc.Kind;
  document.querySelectorAll<HTMLElement>("#source-form [data-kinds]").forEach((label) => {
    label.hidden = !label.dataset.kinds!.split(" ").includes(kind);
  });
  const secret: Record<ipc.Kind, string> = {
    pagerduty: "PagerDuty user API token",
    opsgenie: "Opsgenie API key (GenieKey)",
    alertmanager: "Password or token (empty if none)",
    ntfy: "Access token or password",
  };
  const email: Record<ipc.Kind, string> = {
    pagerduty: "Your PagerDuty login email (the From of your acknowledgements)",
    opsgenie: "Your Opsgenie user (email)",
    alertmanager: "Your name or email (on the silences you make)",
    ntfy: "",
  };
  const url: Record<ipc.Kind, string> = {
    pagerduty: "https://api.pagerduty.com",
    opsgenie: "https://api.opsgenie.com",
    alertmanager: "http://alertmanager:9093",
    ntfy: "https://ntfy.sh",
  };
  $("source-secret-label").textContent = secret[kind];
  $("source-email-label").textContent = email[kind];
  field("source-url").placeholder = url[kind];
}
$("source-kind").addEventListener("change", showSourceFields);
showSourceFields();

$("source-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").textContent = "";
  const source: ipc.SourceConfig = {
    name: field("source-name").value,
    kind: $<HTMLSelectElement>("source-kind").value as ipc.Kind,
    url: field("source-url").value,
    email: field("source-email").value,
    matchers: $<HTMLTextAreaElement>("source-matchers").value.split("\n"),
    query: field("source-query").value,
    topic: field("source-topic").value,
    user: field("source-user").value,
    poll_seconds: Number(field("source-poll").value),
    silence_minutes: Number(field("source-silence").value),
  };
  try {
    render(await ipc.addSource(source, field("source-secret").value));
    $<HTMLFormElement>("source-form").reset();
    showSourceFields();
  } catch (e) {
    error(e);
  } finally {
    field("source-secret").value = "";
  }
});

let current: ipc.View | null = null;
let formFilled = false;
let justSaved = false;

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").textContent = "";
  try {
    render(await ipc.signIn(field("server").value, field("token").value));
    field("token").value = "";
  } catch (e) {
    error(e);
  }
});

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!current) return;
  const settings: ipc.Settings = {
    ...current.settings,
    start_level: Number(field("start_level").value) / 100,
    ramp_seconds: Number(field("ramp_seconds").value),
    snooze_minutes: Number(field("snooze_minutes").value),
    feed_lost_seconds: Number(field("feed_lost_seconds").value),
    device: field("device").value,
    sound: $<HTMLSelectElement>("sound").value,
    make_sure_i_hear_it: field("make_sure_i_hear_it").checked,
    autostart: field("autostart").checked,
  };
  try {
    justSaved = true;
    render(await ipc.saveSettings(settings));
  } catch (e) {
    error(e);
  }
});

$("test").addEventListener("click", async () => {
  if (!(await ipc.testAlarm())) error("No audio output on this computer.");
});
$("stop").addEventListener("click", () => ipc.stopAlarm());
$("signout").addEventListener("click", async () => render(await ipc.signOut()));

const refresh = async () => {
  try {
    render(await ipc.status());
  } catch (e) {
    error(e);
  }
};
// The app sends the whole view whenever it changes; read once at the start.
ipc.onStatus(render);
refresh();
