// The sign-in view: paste a token, or arrive through a one-time link (`#/signin/<code>`) whose
// code is taken out of the address at once and exchanged for a session cookie.
import * as api from "../api";
import { errorLine, h, message } from "../dom";
import type { View } from "../view";

/** The user a sign-in link's code names (its first part is the name, base64url). */
function linkUser(code: string): string | null {
  try {
    const part = code.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    return new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))) || null;
  } catch {
    return null;
  }
}

export const signinView: View = (root, route, shell) => {
  let alive = true;
  const error = errorLine();
  const status = h("p", { role: "status" });
  const token = h("input", {
    id: "signin-token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "data-testid": "signin-token",
  });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "signin-submit" }, "Sign in");

  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const value = token.value.trim();
        if (!value) return error.show("Paste your access token first.");
        error.show(null);
        submit.disabled = true;
        status.textContent = "Signing in…";
        try {
          const session = await api.signIn({ token: value });
          token.value = "";
          if (alive) shell.signedIn(session);
        } catch (e) {
          status.textContent = "";
          error.show(`Sign-in failed: ${message(e)}`);
          token.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", { for: "signin-token" }, "Access token"),
    token,
    h(
      "p",
      { class: "hint", id: "signin-hint" },
      "Paste a token made with ",
      h("code", null, "reveille token create --user YOU"),
      ", or open a one-time sign-in link from ",
      h("code", null, "reveille web-link"),
      ". The token is kept in a secure cookie, never in this page.",
    ),
    submit,
  );
  token.setAttribute("aria-describedby", "signin-hint");
  root.append(h("h1", null, "Sign in to Reveille"), status, error.el, form);

  if (route.param) {
    // The code must not stay in the address bar or the history, whatever happens next.
    const code = route.param;
    history.replaceState(null, "", "#/signin");
    form.hidden = true;
    // Asked first: a link someone else sent would otherwise sign this browser in as them.
    const who = linkUser(code);
    const go = h(
      "button",
      {
        type: "button",
        class: "primary",
        "data-testid": "signin-link-continue",
        onclick: () => {
          go.disabled = true;
          status.textContent = "Signing in with your link…";
          api.signIn({ code }).then(
            (session) => alive && shell.signedIn(session, "#/incidents"),
            (e) => {
              if (!alive) return;
              status.textContent = "";
              go.hidden = true;
              form.hidden = false;
              error.show(
                `This sign-in link did not work: ${message(e)} Links work once and expire after a few minutes; ` +
                  "ask for a new one or paste a token.",
              );
            },
          );
        },
      },
      who ? `Sign in as ${who}` : "Sign in with this link",
    );
    status.textContent = who ? `This link signs this browser in as ${who}.` : "";
    root.append(go);
    go.focus();
  } else {
    token.focus();
  }
  return () => {
    alive = false;
  };
};
