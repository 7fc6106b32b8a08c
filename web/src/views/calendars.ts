// Calendar feeds: the iCalendar URLs of the person's own shifts and of each schedule, with copy
// buttons. The URLs carry a secret, so they are shown only here, in read-only fields.
import * as api from "../api";
import type { CalendarLinks } from "../api.gen";
import { errorLine, fill, h, message } from "../dom";
import type { View } from "../view";

export const calendarsView: View = (root, _route, shell) => {
  let alive = true;
  const error = errorLine();
  const list = h("ul", { class: "feeds" }, h("li", null, "Loading…"));
  let count = 0;

  function feed(label: string, url: string): HTMLElement {
    const id = `feed-${count++}`;
    const input = h("input", { id, type: "text", readonly: true, class: "url", "data-testid": "calendar-url" });
    input.value = url;
    const copy = h("button", { type: "button", "data-testid": "copy" }, "Copy");
    copy.setAttribute("aria-label", `Copy the link: ${label}`);
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(url);
      } catch {
        // No clipboard API (plain http, old browser): select the text for Ctrl+C.
        input.focus();
        input.select();
        if (!document.execCommand("copy"))
          return error.show("Copying is not allowed here: the link is selected, press Ctrl+C.");
      }
      copy.textContent = "Copied";
      shell.announce("Link copied.");
      window.setTimeout(() => (copy.textContent = "Copy"), 2000);
    });
    return h("li", null, h("label", { for: id }, label), h("div", { class: "copy-row" }, input, copy));
  }

  const draw = (c: CalendarLinks) =>
    fill(
      list,
      feed("My shifts, on every schedule", c.me),
      c.schedules.map((s) => feed(`Schedule ${s.schedule}`, s.url)),
    );

  root.append(
    h("h1", null, "Calendars"),
    h(
      "p",
      { class: "hint" },
      "Subscribe in your calendar app (\u201cadd calendar from URL\u201d) to see your shifts next to everything else. " +
        "Each link works without signing in: keep it to yourself.",
    ),
    error.el,
    list,
  );
  api.calendars().then(
    (c) => alive && draw(c),
    (e) => alive && (fill(list), error.show(`Could not load the calendar links: ${message(e)}`)),
  );
  return () => {
    alive = false;
  };
};
