// Settings: browser notifications through Web Push. Enabling asks for permission, registers the
// service worker (/sw.js), subscribes with the server's VAPID key and hands the subscription to
// the server; disabling undoes both.
import * as api from "../api";
import { errorLine, h, message } from "../dom";
import type { View } from "../view";

/** The bytes of a base64url string (the VAPID public key). */
export function base64urlBytes(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "="));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameBytes(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

const supported = () =>
  window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

async function currentSubscription(): Promise<PushSubscription | null> {
  const registration = await navigator.serviceWorker.getRegistration("/");
  return (await registration?.pushManager.getSubscription()) ?? null;
}

export const settingsView: View = (root, _route, shell) => {
  let alive = true;
  const error = errorLine();
  const status = h("p", { class: "push-status", role: "status", "data-testid": "push-status" }, "Checking…");
  const enable = h(
    "button",
    { type: "button", class: "primary", "data-testid": "push-enable", hidden: true },
    "Enable browser notifications",
  );
  const disable = h(
    "button",
    { type: "button", "data-testid": "push-disable", hidden: true },
    "Disable browser notifications",
  );

  async function show(): Promise<void> {
    if (!supported()) {
      status.textContent = "This browser cannot receive push notifications here (it needs HTTPS and Web Push support).";
      return;
    }
    try {
      const [info, subscription] = await Promise.all([api.webPush(), currentSubscription()]);
      if (!alive) return;
      const permission = Notification.permission;
      const here = subscription !== null && permission === "granted";
      const lines = [
        here
          ? "On: this browser shows a notification for every page, even with this tab closed."
          : "Off in this browser.",
        permission === "denied"
          ? "Notifications are blocked for this site: allow them in the browser's site settings."
          : "",
        `Browsers subscribed for ${shell.user}: ${info.subscribed}.`,
      ];
      status.textContent = lines.filter(Boolean).join(" ");
      enable.hidden = here || permission === "denied";
      disable.hidden = subscription === null;
    } catch (e) {
      if (alive) error.show(`Could not read the notification status: ${message(e)}`);
    }
  }

  enable.addEventListener("click", async () => {
    enable.disabled = true;
    error.show(null);
    try {
      // Asked first, straight from the click: browsers only allow the prompt from a gesture.
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("Notifications were not allowed, so none can be shown.");
      const key = base64urlBytes((await api.webPush()).public_key);
      const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      await navigator.serviceWorker.ready;
      let subscription = await registration.pushManager.getSubscription();
      if (subscription && !sameBytes(subscription.options.applicationServerKey, key)) {
        await subscription.unsubscribe();
        subscription = null;
      }
      subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      await api.addPushSubscription(subscription.toJSON());
      shell.announce("Browser notifications are on.");
    } catch (e) {
      error.show(`Could not enable notifications: ${message(e)}`);
    } finally {
      enable.disabled = false;
      await show();
    }
  });

  disable.addEventListener("click", async () => {
    disable.disabled = true;
    error.show(null);
    try {
      const subscription = await currentSubscription();
      if (subscription) {
        // The server forgets it first: if that fails, the browser keeps it and one can retry.
        await api.removePushSubscription(subscription.endpoint);
        await subscription.unsubscribe();
      }
      shell.announce("Browser notifications are off.");
    } catch (e) {
      error.show(`Could not disable notifications: ${message(e)}`);
    } finally {
      disable.disabled = false;
      await show();
    }
  });

  root.append(
    h("h1", null, "Settings"),
    h(
      "section",
      { "aria-labelledby": "push-h" },
      h("h2", { id: "push-h" }, "Browser notifications"),
      h(
        "p",
        { class: "hint" },
        "A notification in this browser for every page sent to you. It does not replace the desktop app or a phone: " +
          "a browser that is closed or asleep shows nothing.",
      ),
      status,
      error.el,
      h("p", { class: "buttons" }, enable, " ", disable),
    ),
  );
  void show();
  return () => {
    alive = false;
  };
};
