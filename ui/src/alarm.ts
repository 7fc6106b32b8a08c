// The alarm window: the page, the buttons, and the sanitised runbook in a sandboxed frame.
import * as ipc from "./ipc";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const id = Number(new URLSearchParams(location.search).get("incident"));

function age(since: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

async function load() {
  try {
    const view = await ipc.incident(id);
    const i = view.incident;
    // Another pager's page has no Reveille number (its id is below zero): its source names it.
    const number = i.id > 0 ? `#${i.id} ` : "";
    document.title = `Reveille — ${number}${i.summary}`;
    $("severity").textContent = `${i.drill ? "DRILL · " : ""}${i.severity.toUpperCase()} · ${i.urgency} urgency`;
    $("severity").dataset.severity = i.severity;
    $("summary").textContent = i.summary;
    $("meta").textContent = `${number}${i.service} · ${i.source} · ${i.state} · ${age(i.created_at)} ago`;
    $("links").replaceChildren(
      ...i.links.map((l) => {
        const li = document.createElement("li");
        li.textContent = `${l.text ?? "Link"}: ${l.href}`;
        return li;
      }),
    );
    $("details").textContent = JSON.stringify(i.details, null, 2);
    if (view.runbook_link) {
      $("runbook-link").hidden = false;
      $("runbook-link").textContent = `Runbook: ${view.runbook_link}`;
    }
    const frame = $<HTMLIFrameElement>("runbook");
    frame.hidden = !view.runbook_here;
    // The page is on screen and can be acknowledged; the runbook follows when it arrives.
    if (view.runbook_here) {
      showRunbook(frame);
    }
  } catch (e) {
    $("error").textContent = String(e);
  }
}

// The frame's document is set once, with the runbook: a placeholder document set first raced
// with it in WebKit (a second srcdoc set while the first still loaded was sometimes dropped,
// leaving "Loading" in the frame for good).
async function showRunbook(frame: HTMLIFrameElement) {
  const status = $("runbook-status");
  status.hidden = false;
  try {
    const html = await ipc.runbook(id);
    status.hidden = true;
    if (html === null) {
      frame.hidden = true;
      return;
    }
    frame.srcdoc =
      `<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">` +
      `<base target="_blank"><style>body{font-family:sans-serif;line-height:1.5}</style>${html}`;
  } catch (e) {
    status.hidden = true;
    frame.hidden = true;
    $("error").textContent = `Runbook: ${String(e)}`;
  }
}

for (const action of ["ack", "snooze", "resolve"] as const) {
  $(action).addEventListener("click", async () => {
    try {
      await ipc.act(id, action);
      $("summary").textContent = action === "ack" ? "Acknowledged" : action === "snooze" ? "Snoozed" : "Resolved";
    } catch (e) {
      $("error").textContent = String(e);
    }
  });
}

load();
