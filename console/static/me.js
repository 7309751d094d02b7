// The logged-in person in the staff pages' header: who they are and where they may look (name, role, scopes),
// their menu (change my password, log out), and the links their role may follow: the service desk for all
// staff, the supervisor view, the statements and the reports for supervisors and admins, the accounts page for admins.
// Before a login no link shows.
//
// Rules
//   1. Logging out asks the server to revoke the token (Session.logout), then the page forgets it.
//   2. What the header says comes from GET /api/me, read at start, every minute and when the tab comes back:
//      an admin who renames, re-scopes or disables the person is seen without a new login (a disabled
//      account's token is refused, and the page goes back to its login).
//   3. The password dialog is built here, once, for every staff page; its words are catalogue keys.
"use strict";

import { $, ApiError, codeText, el, errorText } from "./common.js";
import { has, label, ready, t, translate } from "./i18n.js";

const ME_EVERY_MS = 60_000;
export const MIN_PASSWORD = 8;

/** A scope path ("龙文区/蓝田街道") as people write it: the parts with spaces, or only the last. */
export const placeWords = (path, last = false) => {
  const parts = String(path).split("/").filter(Boolean);
  return last ? parts[parts.length - 1] || "" : parts.join(" ");
};

/** The roles the supervisor view is for (GET /api/kpis and /api/escalations admit only these). */
export const SUPERVISOR_ROLES = new Set(["supervisor", "admin"]);

/** Where an account may look, in words: everywhere, nowhere, one place, or the first place and how many. */
export function scopeWords(scopes, { short = false } = {}) {
  const list = scopes || [];
  if (list.includes("*")) return t("scope.all");
  if (!list.length) return t("scope.none");
  if (!short) return list.map((path) => placeWords(path)).join(t("list.and"));
  if (list.length === 1) return placeWords(list[0], true);
  return t("scope.many", { first: placeWords(list[0], true), n: list.length });
}

/** The header's person, menu and links; show() after login, hide() at the login form. `onChange` runs after
 * each paint (after login, and when GET /api/me says the role changed, for instance). */
export function bindAccountMenu(session, { onChange = () => {} } = {}) {
  const menu = $("user-menu");
  const dialog = buildPasswordDialog();
  let timer = 0;

  const paint = () => {
    const who = session.current;
    if (!who) return;
    const name = who.name || who.username;
    $("user-info").textContent = t("me.chip", { name, role: label("role", who.role), scope: scopeWords(who.scopes, { short: true }) });
    $("user-info").title = t("me.scope_full", { scope: scopeWords(who.scopes) });
    $("user-name").textContent = who.name ? t("me.name_user", { name: who.name, username: who.username }) : who.username;
    $("user-role").textContent = label("role", who.role);
    $("user-scope").textContent = scopeWords(who.scopes);
    showLinks(who.role);
    onChange(who);
  };

  const refresh = async () => {
    if (!session.current) return;
    try {
      session.remember(await session.api("GET", "/api/me"));
      paint();
    } catch (_) {
      // a 401 has already ended the session (the page shows its login); anything else: try again later
    }
  };

  const onVisible = () => {
    if (document.visibilityState === "visible") refresh();
  };

  menu.addEventListener("toggle", () => {
    if (menu.open) refresh();
  });
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
  $("password-button").addEventListener("click", () => {
    menu.open = false;
    dialog.open(session);
  });
  $("logout-button").addEventListener("click", () => {
    menu.open = false;
    session.logout();
  });

  return {
    show() {
      menu.hidden = false;
      paint();
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, ME_EVERY_MS);
      document.addEventListener("visibilitychange", onVisible);
    },
    hide() {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisible);
      menu.open = false;
      menu.hidden = true;
      $("user-info").textContent = "";
      showLinks(null);
      dialog.close();
    },
    relabel: paint,
  };
}

/** The header's links to the pages a role may use (none before a login). */
function showLinks(role) {
  const links = {
    "supervisor-link": SUPERVISOR_ROLES.has(role),
    "accounts-link": role === "admin",
    "services-link": Boolean(role),
    "plans-link": Boolean(role),
    "registry-link": Boolean(role),
    "care-calls-link": Boolean(role),
    "calllog-link": Boolean(role),
    "duty-link": Boolean(role),
    "statements-link": SUPERVISOR_ROLES.has(role),
    "reports-link": SUPERVISOR_ROLES.has(role),
  };
  for (const [id, allowed] of Object.entries(links)) {
    const link = $(id);
    if (link) link.hidden = !allowed;
  }
}

// -- change my password -------------------------------------------------------------------------------------

/** A refusal in words, naming the catalogue's sentence for the code when there is one. */
export function refusal(error) {
  if (error instanceof ApiError && error.code && has(`error.${error.code}`)) {
    return codeText(error.code, error.params, error.message, error.status);
  }
  return errorText(error);
}

function passwordInput(id, key, autocomplete) {
  return [
    el("label", { htmlFor: id, dataset: { i18n: key } }),
    el("input", { id, type: "password", autocomplete, maxLength: 200 }),
  ];
}

function buildPasswordDialog() {
  const form = el("form", { id: "password-form", noValidate: true },
    el("h3", { id: "password-title", dataset: { i18n: "me.change_password" } }),
    el("p", { id: "password-who", className: "muted" }),
    ...passwordInput("password-old", "me.old_password", "current-password"),
    ...passwordInput("password-new", "me.new_password", "new-password"),
    ...passwordInput("password-again", "me.new_password_again", "new-password"),
    el("p", { id: "password-error", className: "error", role: "alert" }),
    el("div", { className: "form-buttons" },
      el("button", { id: "password-submit", type: "submit", className: "primary", dataset: { i18n: "me.save_password" } }),
      el("button", { id: "password-cancel", type: "button", dataset: { i18n: "form.back" } })));
  const done = el("div", { id: "password-done", hidden: true },
    el("h3", { dataset: { i18n: "me.change_password" } }),
    el("p", { className: "notice", role: "status", dataset: { i18n: "me.password_changed" } }),
    el("div", { className: "form-buttons" },
      el("button", { id: "password-ok", type: "button", className: "primary", dataset: { i18n: "me.done" } })));
  const dialog = el("dialog", { id: "password-dialog", className: "dialog", "aria-labelledby": "password-title" }, form, done);
  document.body.append(dialog);
  if (ready()) translate(dialog); // else setLanguage translates it with the page

  let session = null;
  const fail = (key, focus) => {
    $("password-error").textContent = t(key, { n: MIN_PASSWORD });
    if (focus) $(focus).focus();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const old = $("password-old").value;
    const next = $("password-new").value;
    if (!old) return fail("me.need_old", "password-old");
    if (next.length < MIN_PASSWORD) return fail("me.too_short", "password-new");
    if (next !== $("password-again").value) return fail("me.not_same", "password-again");
    if (next === old) return fail("me.same_as_old", "password-new");
    $("password-error").textContent = "";
    $("password-submit").disabled = true;
    try {
      await session.api("POST", "/api/me/password", { old_password: old, new_password: next });
      form.hidden = true;
      done.hidden = false;
      $("password-ok").focus();
    } catch (error) {
      if (!session.current) dialog.close(); // the session ended (401): the page shows its login
      $("password-error").textContent = refusal(error);
      if (error instanceof ApiError && error.code === "password_wrong") $("password-old").select();
    } finally {
      $("password-submit").disabled = false;
    }
  });
  $("password-cancel").addEventListener("click", () => dialog.close());
  $("password-ok").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    for (const id of ["password-old", "password-new", "password-again"]) $(id).value = "";
  });
  return {
    open(forSession) {
      session = forSession;
      const who = session.current;
      $("password-who").textContent = t("me.password_for", { username: who ? who.username : "" });
      $("password-error").textContent = "";
      form.hidden = false;
      done.hidden = true;
      dialog.showModal();
      $("password-old").focus();
    },
    close() {
      if (dialog.open) dialog.close();
    },
  };
}
