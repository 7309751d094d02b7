// Anxin accounts page (admins): who may log in, as what, and where they may look.
//
// The list comes from GET /api/accounts and is filtered here (name or username, role, state). One dialog
// creates and edits an account: a person (admin, supervisor, operator with scopes picked on the district /
// street / community tree of GET /api/communities; a caregiver tied to a responder, a clinic's desk to a clinic,
// a family member to one contact of one elder, found through GET /api/elders/{id}) or a service account (a
// telephony or alarm-receiving system: no password, grants, and keys). Disabling and enabling ask first;
// a password reset sets a new one for the person to change; a service key is shown once, to be copied.
//
// Rules
//   1. The server decides: every refusal is shown from its code, in the admin's language.
//   2. Data is never written as HTML (el() / textContent).
//   3. A new key exists in the page only while its dialog is open.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, loadConfig, serverNow } from "./common.js";
import { ask } from "./dialogs.js";
import {
  bindLanguageSelect, fmtDateTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { MIN_PASSWORD, bindAccountMenu, placeWords, refusal, scopeWords } from "./me.js";

const USERNAME = /^[A-Za-z0-9_.-]{1,64}$/;
const ROLE_ORDER = ["admin", "supervisor", "operator", "caregiver", "family", "clinic", "assessor", "service"];
const PICKER_FILTER_FROM = 30; // communities: from this many on, the scope picker gets a search box

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session);
const page = {
  accounts: [],
  tree: null, // {district: {street: {community: elders}}}
  responders: null, // responder_id -> {name, community}
  editing: null, // the account in the dialog (null: a new one)
  keysFor: null, // the service account whose keys are shown
};

// -- times and words ---------------------------------------------------------------------------------------

/** Epoch seconds from the API's number or ISO text; null stays null. */
function epochOf(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return value;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed / 1000;
}

const lockedNow = (account) => (epochOf(account.locked_until) || 0) > serverNow();

function stateOf(account) {
  if (account.disabled) return "disabled";
  return lockedNow(account) ? "locked" : "active";
}

const grantWords = (grants) => (grants || []).map((g) => label("grant", g)).join(t("list.and")) || t("accounts.no_grants");

function responderWords(id) {
  if (!id) return "—";
  const known = page.responders && page.responders.get(id);
  return known ? t("accounts.responder_named", { name: known.name, id }) : id;
}

function makePassword() {
  // no 0/O, 1/l/I: read out over the phone or copied from paper without doubt
  const letters = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => letters[b % letters.length]).join("");
}

function notice(text) {
  $("accounts-notice").textContent = text;
  $("accounts-notice").hidden = !text;
}

// -- the list ----------------------------------------------------------------------------------------------

async function load() {
  try {
    const answer = await session.api("GET", "/api/accounts");
    page.accounts = answer.accounts || [];
    $("accounts-error").textContent = "";
  } catch (error) {
    $("accounts-error").textContent = refusal(error);
  }
  render();
}

function shown() {
  const text = $("filter-text").value.trim().toLowerCase();
  const role = $("filter-role").value;
  const state = $("filter-state").value;
  return page.accounts
    .filter((a) => !text || [a.username, a.name || "", a.responder_id || ""].some((s) => s.toLowerCase().includes(text)))
    .filter((a) => !role || a.role === role)
    .filter((a) => !state || stateOf(a) === state)
    .sort((a, b) => (a.disabled - b.disabled) || (ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role))
      || a.username.localeCompare(b.username));
}

function render() {
  const accounts = shown();
  $("accounts-count").textContent = accounts.length === page.accounts.length
    ? t("accounts.count", { n: page.accounts.length })
    : t("accounts.count_of", { n: accounts.length, total: page.accounts.length });
  $("accounts-body").replaceChildren(...accounts.map(accountRow));
  $("accounts-empty").hidden = accounts.length > 0;
  $("accounts").hidden = accounts.length === 0;
}

/** A cell's column name, shown before it when the list is cards (a phone). */
const cellLabel = (key) => `${t(key)}${t("list.colon")}`;

function accountRow(account) {
  const me = session.current && account.username === session.current.username;
  const service = account.role === "service";
  const state = stateOf(account);
  const who = el("td", { className: "account-who" },
    el("strong", {}, account.name || account.username),
    account.name ? el("span", { className: "muted account-username" }, account.username) : null,
    me ? el("span", { className: "tag" }, t("accounts.you")) : null);
  const role = el("td", { className: "account-role", dataset: { label: cellLabel("accounts.role") } }, label("role", account.role),
    service ? el("span", { className: "muted account-grants" }, grantWords(account.grants)) : null);
  const scope = el("td", { className: "account-scope", dataset: { label: cellLabel("accounts.scope") } });
  if (account.role === "caregiver" || account.role === "clinic") scope.append(responderWords(account.responder_id));
  else if (account.role === "family") scope.append(account.responder_id || ""); // kin:ELDER:PHONE (dispatch.family)
  else {
    scope.append(scopeWords(account.scopes, { short: true }));
    scope.title = scopeWords(account.scopes);
  }
  const stateText = state === "locked"
    ? t("accounts.locked_until", { time: fmtDateTime(epochOf(account.locked_until)) })
    : t(`accounts.state_${state}`);
  const stateCell = el("td", { className: "account-state", dataset: { label: cellLabel("accounts.state") } },
    el("span", { className: `state-tag ${state}` }, stateText));
  const lastLogin = epochOf(account.last_login_at);
  const when = el("td", { className: "account-login", dataset: { label: cellLabel("accounts.last_login") } },
    service ? t("accounts.no_login_service") : lastLogin ? fmtDateTime(lastLogin) : t("accounts.never"));
  const button = (action, key, extra = {}) => el("button", {
    type: "button", dataset: { action, username: account.username }, ...extra,
  }, t(key));
  const actions = el("td", { className: "account-actions" },
    button("edit", "accounts.edit"),
    service ? button("keys", "accounts.keys") : button("reset", "accounts.reset"),
    me ? null : account.disabled ? button("enable", "accounts.enable") : button("disable", "accounts.disable", { className: "quiet-danger" }));
  return el("tr", { dataset: { username: account.username, state } }, who, role, scope, stateCell, when, actions);
}

async function rowAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const account = page.accounts.find((a) => a.username === button.dataset.username);
  if (!account) return;
  notice("");
  const action = button.dataset.action;
  if (action === "edit") openEditor(account);
  else if (action === "reset") openReset(account);
  else if (action === "keys") openKeys(account);
  else await switchAccount(account, action === "disable");
}

const whoWords = (account) => (account.name ? t("accounts.who", { name: account.name, username: account.username })
  : account.username);

async function switchAccount(account, disable) {
  const who = whoWords(account);
  $("confirm-yes").classList.toggle("danger", disable);
  $("confirm-yes").classList.toggle("primary", !disable);
  const sure = await ask({
    title: t(disable ? "accounts.disable_title" : "accounts.enable_title", { who }),
    text: t(disable ? (account.role === "service" ? "accounts.disable_service_text" : "accounts.disable_text")
      : "accounts.enable_text"),
    yes: t(disable ? "accounts.disable" : "accounts.enable"),
  });
  $("confirm-yes").classList.add("danger");
  $("confirm-yes").classList.remove("primary");
  if (!sure) return;
  try {
    await session.api("POST", `/api/accounts/${encodeURIComponent(account.username)}/${disable ? "disable" : "enable"}`);
    notice(t(disable ? "accounts.disabled_done" : "accounts.enabled_done", { who }));
  } catch (error) {
    $("accounts-error").textContent = refusal(error);
  }
  await load();
}

// -- the scope picker --------------------------------------------------------------------------------------

function scopeBox(value, text, extra) {
  return el("label", { className: "scope-node" },
    el("input", { type: "checkbox", value, dataset: { scope: value } }), " ", el("span", {}, text), extra || null);
}

function buildPicker(tree, chosen) {
  const picker = $("scope-picker");
  const communities = Object.values(tree).flatMap((streets) => Object.values(streets).flatMap(Object.keys));
  const parts = [scopeBox("*", t("scope.all_long"))];
  if (communities.length >= PICKER_FILTER_FROM) {
    parts.push(el("input", {
      type: "search", className: "scope-filter", placeholder: t("accounts.scope_filter"),
      "aria-label": t("accounts.scope_filter"), oninput: (e) => filterPicker(e.target.value.trim()),
    }));
  }
  const districts = Object.keys(tree).sort((a, b) => a.localeCompare(b, "zh-CN"));
  parts.push(el("ul", { className: "scope-tree" }, districts.map((district) => el("li", {},
    scopeBox(district, district),
    el("ul", {}, Object.keys(tree[district]).sort((a, b) => a.localeCompare(b, "zh-CN")).map((street) => el("li", {},
      scopeBox(`${district}/${street}`, street),
      el("ul", { className: "scope-communities" }, Object.entries(tree[district][street])
        .sort(([a], [b]) => a.localeCompare(b, "zh-CN"))
        .map(([community, elders]) => el("li", {},
          scopeBox(`${district}/${street}/${community}`, community,
            el("span", { className: "muted scope-count" }, t("accounts.elders_n", { n: elders })))))))))))));
  picker.replaceChildren(...parts);
  const known = new Set([...picker.querySelectorAll("input[data-scope]")].map((box) => box.value));
  const unknown = chosen.filter((path) => path !== "*" && !known.has(path));
  if (unknown.length) {
    // scopes of places no elder or responder is registered in (yet): kept, and shown so they can be removed
    picker.append(el("div", { className: "scope-other" }, el("span", { className: "muted" }, t("accounts.scope_other")),
      unknown.map((path) => scopeBox(path, placeWords(path)))));
  }
  for (const path of chosen) {
    const box = picker.querySelector(`input[data-scope="${CSS.escape(path)}"]`);
    if (box) box.checked = true;
  }
  settlePicker();
}

function filterPicker(text) {
  for (const item of $("scope-picker").querySelectorAll(".scope-communities > li")) {
    item.hidden = Boolean(text) && !item.textContent.includes(text);
  }
}

/** A checked place covers everything under it: those boxes show checked and cannot be changed. */
function settlePicker() {
  const boxes = [...$("scope-picker").querySelectorAll("input[data-scope]")];
  const checked = boxes.filter((b) => b.checked && !b.disabled).map((b) => b.value);
  const all = $("scope-picker").querySelector('input[data-scope="*"]');
  for (const box of boxes) {
    if (box === all) continue;
    const covered = all.checked || checked.some((path) => path !== box.value && box.value.startsWith(`${path}/`));
    box.disabled = covered;
    if (covered) box.checked = true;
    else if (box.dataset.implied === "1") box.checked = false;
    box.dataset.implied = covered ? "1" : "";
  }
  const scopes = chosenScopes();
  $("scope-chosen").textContent = scopes.length ? t("accounts.scope_chosen", { scope: scopeWords(scopes) })
    : t("accounts.scope_nothing");
}

function chosenScopes() {
  const boxes = [...$("scope-picker").querySelectorAll("input[data-scope]")];
  if (boxes.some((b) => b.value === "*" && b.checked)) return ["*"];
  return boxes.filter((b) => b.checked && !b.disabled).map((b) => b.value);
}

// -- create and edit ---------------------------------------------------------------------------------------

async function loadTree() {
  if (page.tree) return page.tree;
  const answer = await session.api("GET", "/api/communities");
  page.tree = answer.tree || {};
  return page.tree;
}

async function loadResponders() {
  if (page.responders) return;
  try {
    const answer = await session.api("GET", "/api/responders");
    const all = answer.responders || [];
    page.responders = new Map(all.map((r) => [r.responder_id, r]));
    paintResponderChoices();
  } catch (_) {
    page.responders = null; // typed ids still work; the server checks them
  }
}

const kind = () => (document.querySelector('input[name="account-kind"]:checked') || {}).value || "person";

function showFields() {
  const service = kind() === "service";
  const creating = page.editing === null;
  const role = service ? "service" : $("account-role").value;
  $("account-kind").hidden = !creating;
  $("account-kind-hint").textContent = service ? t("accounts.service_hint") : "";
  $("account-kind-hint").hidden = !service;
  $("account-username-field").hidden = !creating;
  $("account-role-field").hidden = service;
  $("account-role-hint").textContent = service ? "" : t(`accounts.role_hint_${role}`);
  $("account-responder-field").hidden = role !== "caregiver" && role !== "clinic";
  $("account-kin-field").hidden = role !== "family";
  paintResponderChoices();
  $("account-password-field").hidden = !creating || service;
  $("account-grants-field").hidden = !service;
  $("scope-role-hint").textContent = role === "caregiver" ? t("accounts.scope_caregiver") : "";
  $("account-submit").textContent = t(creating ? "accounts.create" : "accounts.save");
  paintResponder();
}

/** The responders offered for the account: clinics for a clinic's desk, caregivers and volunteers otherwise. */
function paintResponderChoices() {
  if (!page.responders) return;
  const clinic = kind() !== "service" && $("account-role").value === "clinic";
  const fitting = [...page.responders.values()].filter((r) => (r.kind === "clinic") === clinic);
  $("account-responders").replaceChildren(...fitting.map((r) => el("option", {
    value: r.responder_id, label: `${r.name} · ${placeWords(r.community || "", true)}`,
  })));
}

function paintResponder() {
  const id = $("account-responder").value.trim();
  const known = page.responders && page.responders.get(id);
  if (known && page.editing === null && !$("account-name").value.trim()) $("account-name").value = known.name;
  if (known && known.community && page.editing === null && !chosenScopes().length) {
    // a new caregiver's account is kept by the admins of their community unless the admin picks otherwise
    const box = $("scope-picker").querySelector(`input[data-scope="${CSS.escape(known.community)}"]`);
    if (box) {
      box.checked = true;
      settlePicker();
    }
  }
  $("account-responder-name").textContent = id && page.responders
    ? page.responders.has(id) ? responderWords(id) : t("accounts.responder_unknown") : "";
}

/** A family member's account is bound to one contact of one elder (a kin id, ``kin:ELDER:PHONE``), and only to
 * a contact marked as answering on the phone page; the elder's record lists them. */
const kinId = (elderId, phone) => {
  let digits = String(phone).replace(/\D/g, "");
  if (digits.startsWith("86") && digits.length === 13) digits = digits.slice(2);
  return `kin:${elderId}:${digits}`;
};

async function findContacts(selected) {
  const elderId = $("account-elder").value.trim();
  const choice = $("account-contact");
  choice.replaceChildren();
  $("account-contact-hint").textContent = "";
  if (!elderId) return;
  let elder;
  try {
    elder = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}`);
  } catch (error) {
    $("account-contact-hint").textContent = error instanceof ApiError && error.status === 404
      ? t("accounts.elder_unknown") : refusal(error);
    return;
  }
  const contacts = elder.contacts || [];
  choice.replaceChildren(...contacts.map((c) => el("option", {
    value: kinId(elder.elder_id, c.phone), disabled: !c.app,
    textContent: `${c.name} · ${c.relation || "—"} · ${c.phone}${c.app ? "" : ` · ${t("accounts.contact_no_app")}`}`,
  })));
  const usable = contacts.filter((c) => c.app).map((c) => kinId(elder.elder_id, c.phone));
  choice.value = usable.includes(selected) ? selected : usable[0] || "";
  $("account-contact-hint").textContent = t(contacts.length ? (usable.length ? "accounts.contact_hint" : "accounts.contact_none_app")
    : "accounts.contact_none", { elder: elder.name });
  nameFromContact();
  if (elder.community && page.editing === null && !chosenScopes().length) {
    const box = $("scope-picker").querySelector(`input[data-scope="${CSS.escape(elder.community)}"]`);
    if (box) { // kept by the admins of the elder's community unless the admin picks otherwise
      box.checked = true;
      settlePicker();
    }
  }
}

function nameFromContact() {
  const option = $("account-contact").selectedOptions[0];
  if (option && page.editing === null && !$("account-name").value.trim()) {
    $("account-name").value = option.textContent.split(" · ")[0];
  }
}

async function openEditor(account) {
  page.editing = account;
  const form = $("account-form");
  form.reset();
  $("account-error").textContent = "";
  const service = account ? account.role === "service" : false;
  document.querySelector(`input[name="account-kind"][value="${service ? "service" : "person"}"]`).checked = true;
  $("account-title").textContent = account
    ? t("accounts.edit_title", { who: whoWords(account) })
    : t("accounts.new_title");
  $("account-name").value = account ? account.name || "" : "";
  $("account-role").value = account && !service ? account.role : "operator";
  $("account-responder").value = account ? account.responder_id || "" : "";
  const kin = account && account.role === "family" ? String(account.responder_id || "").split(":") : [];
  $("account-elder").value = kin.length === 3 ? kin[1] : "";
  $("account-contact").replaceChildren();
  $("account-contact-hint").textContent = "";
  $("account-password").value = account ? "" : makePassword();
  for (const box of form.querySelectorAll('input[name="grant"]')) {
    box.checked = Boolean(account && (account.grants || []).includes(box.value));
  }
  $("scope-picker").replaceChildren(el("p", { className: "muted" }, t("accounts.loading")));
  showFields();
  $("account-dialog").showModal();
  (account ? $("account-name") : $("account-username")).focus();
  try {
    const [tree] = await Promise.all([loadTree(), loadResponders()]);
    if (page.editing !== account || !$("account-dialog").open) return;
    buildPicker(tree, account ? account.scopes || [] : []);
    paintResponder();
    if (kin.length === 3) await findContacts(account.responder_id);
  } catch (error) {
    $("scope-picker").replaceChildren();
    $("account-error").textContent = refusal(error);
  }
}

/** The form as the API's body, or a catalogue key of what is missing (and the field to go to). */
function accountBody() {
  const creating = page.editing === null;
  const service = kind() === "service";
  const role = service ? "service" : $("account-role").value;
  const body = { name: $("account-name").value.trim(), role };
  if (creating) {
    body.username = $("account-username").value.trim();
    if (!USERNAME.test(body.username)) return { missing: "accounts.need_username", field: "account-username" };
    if (!service) {
      body.password = $("account-password").value;
      if (body.password.length < MIN_PASSWORD) return { missing: "me.too_short", field: "account-password" };
    }
  }
  if (creating && !service && !body.name) return { missing: "accounts.need_name", field: "account-name" };
  body.responder_id = null;
  if (role === "caregiver" || role === "clinic") {
    body.responder_id = $("account-responder").value.trim();
    if (!body.responder_id) return { missing: "accounts.need_responder", field: "account-responder" };
  }
  if (role === "family") {
    body.responder_id = $("account-contact").value;
    if (!body.responder_id) {
      return { missing: "accounts.need_contact", field: $("account-elder").value.trim() ? "account-contact" : "account-elder" };
    }
  }
  body.scopes = chosenScopes();
  if (!body.scopes.length) return { missing: "accounts.need_scope", field: "scope-picker" };
  if (service) {
    body.grants = [...document.querySelectorAll('input[name="grant"]:checked')].map((b) => b.value);
    if (!body.grants.length) return { missing: "accounts.need_grant", field: "account-grants-field" };
  }
  return { body };
}

const sameList = (a, b) => JSON.stringify([...(a || [])].sort()) === JSON.stringify([...(b || [])].sort());

/** What an edit changes, and only that: an admin may rename themself, not change their own role or scopes. */
function changesOf(account, body) {
  const changes = {};
  if ((body.name || "") !== (account.name || "")) changes.name = body.name || "";
  if (body.role !== account.role) changes.role = body.role;
  if (!sameList(body.scopes, account.scopes)) changes.scopes = body.scopes;
  if (body.grants && !sameList(body.grants, account.grants)) changes.grants = body.grants;
  if ((body.responder_id || null) !== (account.responder_id || null)) changes.responder_id = body.responder_id;
  return changes;
}

async function submitAccount(event) {
  event.preventDefault();
  const { body, missing, field } = accountBody();
  if (missing) {
    $("account-error").textContent = t(missing, { n: MIN_PASSWORD });
    const target = $(field);
    const focusable = target.matches("input, select") ? target : target.querySelector("input:not(:disabled)");
    if (focusable) focusable.focus();
    return;
  }
  $("account-submit").disabled = true;
  $("account-error").textContent = "";
  const editing = page.editing;
  try {
    if (editing) {
      const changes = changesOf(editing, body);
      if (Object.keys(changes).length) {
        await session.api("PATCH", `/api/accounts/${encodeURIComponent(editing.username)}`, changes);
        notice(t("accounts.saved", { who: whoWords(editing) }));
      }
    } else {
      await session.api("POST", "/api/accounts", body);
      notice(t(body.role === "service" ? "accounts.created_service" : "accounts.created",
        { who: body.username, password: body.password || "" }));
    }
    $("account-dialog").close();
    await load();
    if (!editing && body.role === "service") {
      const created = page.accounts.find((a) => a.username === body.username);
      if (created) openKeys(created); // a service account is no use without a key: issue one now
    }
  } catch (error) {
    $("account-error").textContent = refusal(error);
    if (error instanceof ApiError && error.field) {
      const target = { username: "account-username", name: "account-name", password: "account-password",
        responder_id: body.role === "family" ? "account-elder" : "account-responder" }[error.field];
      if (target) $(target).focus();
    }
  } finally {
    $("account-submit").disabled = false;
  }
}

// -- password reset ----------------------------------------------------------------------------------------

function openReset(account) {
  page.editing = account;
  $("reset-title").textContent = t("accounts.reset_title", { who: account.name || account.username });
  $("reset-password").value = makePassword();
  $("reset-error").textContent = "";
  $("reset-dialog").showModal();
  $("reset-password").select();
}

async function submitReset(event) {
  event.preventDefault();
  const account = page.editing;
  const password = $("reset-password").value;
  if (password.length < MIN_PASSWORD) {
    $("reset-error").textContent = t("me.too_short", { n: MIN_PASSWORD });
    $("reset-password").focus();
    return;
  }
  $("reset-submit").disabled = true;
  try {
    await session.api("POST", `/api/accounts/${encodeURIComponent(account.username)}/password`, { password });
    $("reset-dialog").close();
    notice(t("accounts.reset_done", { who: account.name || account.username, password }));
    await load();
  } catch (error) {
    $("reset-error").textContent = refusal(error);
  } finally {
    $("reset-submit").disabled = false;
  }
}

// -- service keys ------------------------------------------------------------------------------------------

async function openKeys(account) {
  page.keysFor = account;
  $("keys-title").textContent = t("accounts.keys_title", { who: account.name || account.username });
  $("key-issued").hidden = true;
  $("key-value").value = "";
  $("key-copied").textContent = "";
  $("key-label").value = "";
  $("keys-error").textContent = "";
  $("keys-body").replaceChildren();
  $("keys-dialog").showModal();
  $("key-label").focus();
  await loadKeys();
}

async function loadKeys() {
  const account = page.keysFor;
  try {
    const answer = await session.api("GET", `/api/accounts/${encodeURIComponent(account.username)}/keys`);
    const keys = (answer.keys || []).sort((a, b) => Boolean(a.revoked_at) - Boolean(b.revoked_at)
      || epochOf(b.created_at) - epochOf(a.created_at));
    $("keys-body").replaceChildren(...keys.map(keyRow));
    $("keys-empty").hidden = keys.length > 0;
    $("keys").hidden = keys.length === 0;
  } catch (error) {
    $("keys-error").textContent = refusal(error);
  }
}

function keyRow(key) {
  const used = epochOf(key.last_used_at);
  const revoked = epochOf(key.revoked_at);
  return el("tr", { dataset: { keyId: key.key_id }, className: revoked ? "revoked" : null },
    el("td", {}, el("strong", {}, key.label || "—"), el("span", { className: "key-id muted" }, key.key_id)),
    el("td", {}, t("accounts.key_issued_at", { time: fmtDateTime(epochOf(key.created_at)) }),
      el("span", { className: "muted key-used" }, used ? t("accounts.key_used_at", { time: fmtDateTime(used) })
        : t("accounts.key_never_used"))),
    el("td", { className: "key-action" }, revoked
      ? el("span", { className: "state-tag disabled" }, t("accounts.key_revoked_at", { time: fmtDateTime(revoked) }))
      : el("button", { type: "button", className: "quiet-danger", dataset: { revoke: key.key_id, label: key.label } },
        t("accounts.revoke"))));
}

async function issueKey(event) {
  event.preventDefault();
  const account = page.keysFor;
  const keyLabel = $("key-label").value.trim();
  if (!keyLabel) {
    $("keys-error").textContent = t("accounts.need_key_label");
    $("key-label").focus();
    return;
  }
  $("key-submit").disabled = true;
  $("keys-error").textContent = "";
  try {
    const issued = await session.api("POST", `/api/accounts/${encodeURIComponent(account.username)}/keys`,
      { label: keyLabel });
    $("key-value").value = issued.key;
    $("key-copied").textContent = "";
    $("key-issued").hidden = false;
    $("key-label").value = "";
    $("key-value").select();
    await loadKeys();
  } catch (error) {
    $("keys-error").textContent = refusal(error);
  } finally {
    $("key-submit").disabled = false;
  }
}

async function copyKey() {
  const value = $("key-value").value;
  try {
    await navigator.clipboard.writeText(value);
  } catch (_) {
    // no clipboard API (a plain-HTTP page): the selection and the browser's own copy
    $("key-value").select();
    document.execCommand("copy");
  }
  $("key-copied").textContent = t("accounts.copied");
}

async function revokeKey(event) {
  const button = event.target.closest("button[data-revoke]");
  if (!button) return;
  const account = page.keysFor;
  const keyId = button.dataset.revoke;
  const keyLabel = button.dataset.label;
  const sure = await ask({ // over the keys' dialog
    title: t("accounts.revoke_title", { label: keyLabel }),
    text: t("accounts.revoke_text"),
    yes: t("accounts.revoke"),
  });
  if (!sure) return;
  try {
    await session.api("DELETE", `/api/accounts/${encodeURIComponent(account.username)}/keys/${encodeURIComponent(keyId)}`);
  } catch (error) {
    $("keys-error").textContent = refusal(error);
  }
  await loadKeys();
}

// -- session and wiring ------------------------------------------------------------------------------------

/** Everything written with t() again, in the language just chosen (markup with data-i18n is done by i18n.js). */
function relabel() {
  menu.relabel();
  if (!session.current) return;
  render();
  const account = page.editing;
  if ($("account-dialog").open) {
    $("account-title").textContent = account ? t("accounts.edit_title", { who: whoWords(account) }) : t("accounts.new_title");
    if (page.tree && $("scope-picker").querySelector("input[data-scope]")) buildPicker(page.tree, chosenScopes());
    showFields();
  }
  if ($("reset-dialog").open) $("reset-title").textContent = t("accounts.reset_title", { who: account.name || account.username });
  if ($("keys-dialog").open && page.keysFor) {
    $("keys-title").textContent = t("accounts.keys_title", { who: page.keysFor.name || page.keysFor.username });
    loadKeys();
  }
}

function start() {
  $("login-view").hidden = true;
  $("accounts-view").hidden = false;
  menu.show();
  const admin = session.current.role === "admin";
  $("accounts-denied").hidden = admin;
  $("accounts-panel").hidden = !admin;
  if (admin) load();
}

function showLogin(reasonKey) {
  menu.hide();
  page.accounts = [];
  page.tree = null;
  page.responders = null;
  for (const id of ["account-dialog", "reset-dialog", "keys-dialog", "confirm-dialog"]) {
    if ($(id).open) $(id).close();
  }
  $("key-value").value = "";
  $("accounts-body").replaceChildren();
  notice("");
  $("accounts-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(relabel);
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  for (const id of ["filter-text", "filter-role", "filter-state"]) $(id).addEventListener("input", render);
  $("accounts-body").addEventListener("click", rowAction);
  $("account-new").addEventListener("click", () => {
    notice("");
    openEditor(null);
  });
  for (const radio of document.querySelectorAll('input[name="account-kind"]')) radio.addEventListener("change", showFields);
  $("account-role").addEventListener("change", showFields);
  $("account-responder").addEventListener("input", paintResponder);
  $("account-elder-find").addEventListener("click", () => findContacts(""));
  $("account-elder").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { // find, not submit the whole form
      event.preventDefault();
      findContacts("");
    }
  });
  $("account-contact").addEventListener("change", nameFromContact);
  $("account-password-make").addEventListener("click", () => {
    $("account-password").value = makePassword();
  });
  $("scope-picker").addEventListener("change", settlePicker);
  $("account-form").addEventListener("submit", submitAccount);
  $("account-cancel").addEventListener("click", () => $("account-dialog").close());
  $("reset-form").addEventListener("submit", submitReset);
  $("reset-make").addEventListener("click", () => {
    $("reset-password").value = makePassword();
  });
  $("reset-cancel").addEventListener("click", () => $("reset-dialog").close());
  $("key-form").addEventListener("submit", issueKey);
  $("key-copy").addEventListener("click", copyKey);
  $("keys-body").addEventListener("click", revokeKey);
  $("keys-close").addEventListener("click", () => $("keys-dialog").close());
  $("keys-dialog").addEventListener("close", () => {
    $("key-value").value = ""; // the new key leaves the page with its dialog
    $("key-issued").hidden = true;
    page.keysFor = null;
  });
  if (session.current) start();
  else showLogin(null);
}

init();
