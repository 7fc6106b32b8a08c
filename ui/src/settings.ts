// The settings and sign-in window.
import * as ipc from "./ipc";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const error = (e: unknown) => ($("error").textContent = String(e));

function field(id: string): HTMLInputElement {
  return $<HTMLInputElement>(id);
}

function render(view: ipc.View) {
  $("signin").hidden = view.signed_in;
  $("account").hidden = !view.signed_in;
  const state = view.keyring_problem
    ? `${view.keyring_problem} This computer will NOT ring until it can read your sign-in.`
    : !view.signed_in
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
