// Anxin registry page (/registry): find an elder, enrol or edit them, bind, unbind and test-call their devices;
// supervisors deactivate (and reactivate) an elder who left the centre's care.
//
// The search is GET /api/elders?q= (also those who left, when asked); the record is GET /api/elders/{id} (a read
// on record), saved with PUT /api/elders/{id}. A new elder's save may answer 409 possible_duplicate with the
// elders it resembles: they are shown (each a link to their file, /elder?id=), and "not the same person" resends
// with ?confirm_distinct=true. Devices: PUT /api/devices/{id} binds, POST .../unbind unbinds, POST .../test opens
// a test window whose result is polled (GET .../test) until it passed or failed. Every word through i18n.
//
// Supervisors and admins merge one person registered twice (registrymerge.js), also from a refused save's
// matches; admins keep caregivers, volunteers and clinics on a second tab (registryresponders.js). The registry
// of the person's area is exported as the import's CSV (GET /api/registry/export/{kind}.csv: elders and devices
// for staff, responders for admins), fetched with the token and saved as a file.
"use strict";

import {
  $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, noteServerDate, readError, serverNow,
} from "./common.js";
import {
  bindLanguageSelect, fmtDateTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu } from "./me.js";
import { bindMerge } from "./registrymerge.js";
import { bindResponders } from "./registryresponders.js";

const STAFF_ROLES = new Set(["operator", "supervisor", "admin"]);
const RISK_FLAGS = ["living_alone", "empty_nest", "three_nos", "low_income", "disabled"];
const LIVES_WITH = ["alone", "spouse", "children", "relatives", "carer", "others"];
const ENTITLEMENTS = ["free", "low_cost", "paid"];
const KEYED_PROTOCOLS = new Set(["sia-dc09"]); // a key is asked for these only
const TEST_POLL_MS = 1000;
const SEARCH_DELAY_MS = 250;

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
const merge = bindMerge(session, { say: notice, opened: showElder });
const responders = bindResponders(session, notice);
let live = false;
let form = { next_elder_id: "", protocols: [], left_care_reasons: [], device_test_s: 900 };
let caregivers = [];
let found = [];
let record = null; // the elder being edited as the server last answered (null: a new elder)
let creating = false;
let opening = 0; // counts what the form was asked to show; only the latest is shown
let contacts = []; // the form's contacts, in calling order
let tests = new Map(); // device_id -> the last test as the server said
let polling = 0;
let said = null; // the notice shown: [key, params]
let tab = "elders"; // or "responders" (admins)
let duplicates = []; // the matches a refused save named

// -- finding --------------------------------------------------------------------------------------------------

let searchTimer = 0;

function search() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
}

async function runSearch() {
  const q = $("find").value.trim();
  if (!q) {
    found = [];
    renderFound();
    return;
  }
  const inactive = $("find-inactive").checked ? "&inactive=true" : "";
  try {
    const answer = await session.api("GET", `/api/elders?q=${encodeURIComponent(q)}&limit=20${inactive}`);
    if ($("find").value.trim() !== q) return; // typed on meanwhile
    found = answer.elders;
    $("find-error").textContent = "";
    renderFound();
  } catch (error) {
    $("find-error").textContent = errorText(error);
  }
}

function renderFound() {
  $("found-body").replaceChildren(...found.map((e) => el("tr", { className: "found-elder", dataset: { elderId: e.elder_id } },
    el("td", {}, el("a", { href: `/elder?id=${encodeURIComponent(e.elder_id)}` }, e.name)),
    el("td", {}, e.elder_id),
    el("td", {}, e.phone || "—"),
    el("td", {}, e.address || "—"),
    el("td", {}, statusTag(e.active !== false)),
    el("td", {}, el("button", { type: "button", className: "elder-edit", onclick: () => openElder(e.elder_id) },
      t("registry.edit"))))));
  const q = $("find").value.trim();
  $("found").hidden = found.length === 0;
  $("found-empty").hidden = !q || found.length > 0;
  $("found-empty").textContent = q ? t("registry.found_none", { q }) : "";
}

function statusTag(active) {
  return el("span", { className: active ? "tag" : "tag tag-inactive" },
    active ? t("registry.active") : t("registry.inactive"));
}

// -- the elder's form -----------------------------------------------------------------------------------------

function fillChoices() {
  const keep = (id, options) => {
    const chosen = $(id).value;
    $(id).replaceChildren(...options);
    // a choice made stays; none made yet (the first filling), the first option shows, never a blank select
    if (options.some((option) => option.value === chosen)) $(id).value = chosen;
  };
  keep("f-lives-with", [el("option", { value: "" }, "—"),
    ...LIVES_WITH.map((v) => el("option", { value: v }, label("lives_with", v)))]);
  keep("f-care-level", [el("option", { value: "" }, "—"),
    ...[0, 1, 2, 3, 4, 5].map((n) => el("option", { value: String(n) }, t("registry.care_level_n", { n })))]);
  keep("f-entitlement", [el("option", { value: "" }, "—"),
    ...ENTITLEMENTS.map((v) => el("option", { value: v }, label("entitlement", v)))]);
  keep("f-caregiver", [el("option", { value: "" }, t("registry.no_caregiver")),
    ...caregivers.map((r) => el("option", { value: r.responder_id }, r.name))]);
  keep("bind-protocol", form.protocols.map((p) => el("option", { value: p }, label("protocol", p))));
  keep("leave-reason", form.left_care_reasons.map((r) => el("option", { value: r }, label("left_care", r))));
  const checked = new Set([...document.querySelectorAll('#f-risk-flags input:checked')].map((box) => box.value));
  $("f-risk-flags").replaceChildren(el("legend", {}, t("registry.risk_flags")), ...RISK_FLAGS.map((f) =>
    el("label", {}, el("input", { type: "checkbox", name: "risk", value: f, checked: checked.has(f) }), " ",
      el("span", {}, label("risk", f)))));
  showKeyField();
}

async function loadChoices() {
  const [made, responders, tree] = await Promise.all([
    session.api("GET", "/api/registry/form"), session.api("GET", "/api/responders"),
    session.api("GET", "/api/communities"),
  ]);
  form = made;
  caregivers = responders.responders.filter((r) => r.kind !== "clinic");
  const paths = [];
  for (const [district, streets] of Object.entries(tree.tree)) {
    for (const [street, communities] of Object.entries(streets)) {
      for (const community of Object.keys(communities)) paths.push(`${district}/${street}/${community}`);
    }
  }
  $("communities").replaceChildren(...paths.map((p) => el("option", { value: p })));
  fillChoices();
}

/** The form shows what was asked for last: an elder read late does not cover a newer 新增 or choice. */
async function openElder(elderId) {
  const ticket = ++opening;
  try {
    const elder = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}`);
    if (ticket === opening) showElder(elder);
  } catch (error) {
    if (ticket === opening) $("find-error").textContent = errorText(error);
  }
}

async function openNew() {
  const ticket = ++opening;
  try {
    form = await session.api("GET", "/api/registry/form"); // a fresh proposal of a free id
  } catch (_) {
    // the form asks for an id all the same
  }
  if (ticket !== opening) return;
  record = null;
  creating = true;
  fillForm({ elder_id: form.next_elder_id, contacts: [], risk_flags: [], active: true, devices: [] });
  notice(null);
  $("f-name").focus();
}

function showElder(elder) {
  record = elder;
  creating = false;
  fillForm(elder);
}

function fillForm(elder) {
  $("elder-form").reset();
  $("elder-error").textContent = "";
  $("duplicates").hidden = true;
  $("elder-panel").hidden = false;
  const value = (v) => (v === null || v === undefined ? "" : String(v));
  $("f-elder-id").value = value(elder.elder_id);
  $("f-elder-id").readOnly = !creating;
  $("f-elder-id-hint").textContent = creating ? t("registry.elder_id_hint") : "";
  $("f-name").value = value(elder.name);
  $("f-phone").value = value(elder.phone);
  $("f-resident-id").value = value(elder.resident_id);
  $("f-birth-date").value = value(elder.birth_date);
  $("f-lives-with").value = value(elder.lives_with);
  $("f-address").value = value(elder.address);
  $("f-community").value = value(elder.community);
  $("f-lat").value = value(elder.lat);
  $("f-lon").value = value(elder.lon);
  $("f-care-level").value = value(elder.care_level);
  $("f-entitlement").value = value(elder.entitlement);
  const role = session.current && session.current.role;
  $("f-care-level").disabled = role !== "admin"; // the needs assessment sets it (/assess)
  $("f-entitlement").disabled = !SUPERVISOR_ROLES.has(role); // a supervisor's decision
  $("f-care-level").title = role !== "admin" ? t("registry.care_level_by_assessment") : "";
  $("f-caregiver").value = value(elder.caregiver_id);
  $("f-medical-notes").value = value(elder.medical_notes);
  $("f-access").value = value(elder.access);
  for (const box of document.querySelectorAll('#f-risk-flags input')) box.checked = (elder.risk_flags || []).includes(box.value);
  contacts = (elder.contacts || []).map((c) => ({ ...c }));
  renderContacts();
  checkResidentId();
  paintStatus();
  renderDevices();
  merge.forRecord(creating ? null : record, mayMerge());
}

const mayMerge = () => SUPERVISOR_ROLES.has(session.current && session.current.role);

function paintStatus() {
  const elder = record;
  $("elder-heading").textContent = creating ? t("registry.new_heading")
    : t("registry.edit_heading", { name: elder.name, id: elder.elder_id });
  $("elder-status").replaceWith(Object.assign(statusTag(creating || elder.active), { id: "elder-status" }));
  $("elder-file-link").hidden = creating;
  if (!creating) $("elder-file-link").href = `/elder?id=${encodeURIComponent(elder.elder_id)}`;
  const supervisor = SUPERVISOR_ROLES.has(session.current && session.current.role);
  $("leave-panel").hidden = creating || !supervisor;
  if (!creating) {
    $("leave-form").hidden = !elder.active;
    $("back-form").hidden = elder.active;
  }
  $("devices-panel").hidden = creating;
}

// -- contacts, in calling order -------------------------------------------------------------------------------

function renderContacts() {
  $("contacts").replaceChildren(...contacts.map((c, i) => {
    const input = (key, props) => el("input", { ...props, value: c[key] || "", className: `contact-${key}`,
      "aria-label": t(`registry.contact_${key}`), placeholder: t(`registry.contact_${key}`),
      oninput: (event) => { c[key] = event.target.value; } });
    const move = (by) => () => {
      const j = i + by;
      if (j < 0 || j >= contacts.length) return;
      [contacts[i], contacts[j]] = [contacts[j], contacts[i]];
      renderContacts();
    };
    return el("li", { className: "contact" },
      input("name", { maxLength: 64 }), input("phone", { type: "tel", maxLength: 25 }),
      input("relation", { maxLength: 32 }),
      el("label", { className: "contact-app-label" }, el("input", { type: "checkbox", className: "contact-app",
        checked: Boolean(c.app), onchange: (event) => { c.app = event.target.checked; } }), " ",
        el("span", {}, t("registry.contact_app"))),
      el("button", { type: "button", onclick: move(-1), disabled: i === 0, "aria-label": t("registry.up") }, "↑"),
      el("button", { type: "button", onclick: move(1), disabled: i === contacts.length - 1,
        "aria-label": t("registry.down") }, "↓"),
      el("button", { type: "button", className: "danger", onclick: () => { contacts.splice(i, 1); renderContacts(); } },
        t("registry.contact_remove")));
  }));
}

// -- the resident identity number, checked as typed (GB 11643-1999: ISO 7064 MOD 11-2) ------------------------

const FULL_WIDTH = /[０-９Ｘｘ]/g;

function residentIdState(text) {
  const typed = text.replace(FULL_WIDTH, (ch) => String.fromCharCode(ch.charCodeAt(0) - 0xfee0))
    .replace(/\s+/g, "").toUpperCase();
  if (!typed) return null;
  if (!/^\d{17}[\dX]$/.test(typed)) return typed.length < 18 ? "short" : "form";
  let sum = 0;
  for (let i = 0; i < 17; i += 1) sum += Number(typed[i]) * (2 ** (17 - i) % 11);
  return "10X98765432"[sum % 11] === typed[17] ? "ok" : "check";
}

function checkResidentId() {
  const state = residentIdState($("f-resident-id").value);
  const hint = $("f-resident-id-hint");
  hint.textContent = state ? t(`registry.resident_id_${state}`) : "";
  hint.className = state === "ok" ? "hint ok" : "hint bad";
  return state;
}

// -- saving ---------------------------------------------------------------------------------------------------

function number(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function body() {
  const text = (id) => $(id).value.trim();
  return {
    elder_id: text("f-elder-id"),
    name: text("f-name"),
    phone: text("f-phone") || null,
    address: text("f-address"),
    lat: number("f-lat"),
    lon: number("f-lon"),
    community: text("f-community"),
    birth_date: text("f-birth-date") || null,
    risk_flags: [...document.querySelectorAll('#f-risk-flags input:checked')].map((box) => box.value),
    care_level: number("f-care-level"),
    medical_notes: text("f-medical-notes"),
    contacts: contacts.filter((c) => (c.name || "").trim() || (c.phone || "").trim()).map((c) => ({
      name: (c.name || "").trim(), phone: (c.phone || "").trim(), relation: (c.relation || "").trim(),
      app: Boolean(c.app),
    })),
    caregiver_id: text("f-caregiver") || null,
    entitlement: text("f-entitlement") || null,
    access: text("f-access"),
    resident_id: text("f-resident-id") || null,
    lives_with: text("f-lives-with") || null,
    active: record ? record.active : true,
  };
}

async function save(event, { distinct = false } = {}) {
  if (event) event.preventDefault();
  const sent = body();
  const missing = ["elder_id", "name", "address", "community"].find((key) => !sent[key]);
  if (missing || sent.lat === null || sent.lon === null) {
    $("elder-error").textContent = t("registry.required", { field: t(`registry.${missing || "lat"}`) });
    return;
  }
  if (["short", "form", "check"].includes(checkResidentId())) {
    $("elder-error").textContent = t(`registry.resident_id_${checkResidentId()}`);
    return;
  }
  $("elder-save").disabled = true;
  $("duplicates").hidden = true;
  duplicates = [];
  try {
    const query = distinct ? "?confirm_distinct=true" : "";
    await session.api("PUT", `/api/elders/${encodeURIComponent(sent.elder_id)}${query}`, sent);
    const words = creating ? "registry.created" : "registry.saved";
    await openElder(sent.elder_id);
    notice(words, { name: sent.name, id: sent.elder_id });
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.code === "possible_duplicate") {
      showDuplicates(error.params.matches || [], Number(error.params.hidden) || 0);
    } else {
      $("elder-error").textContent = errorText(error);
    }
  } finally {
    $("elder-save").disabled = false;
  }
}

/** The registry's elders this one resembles (the registryio check): each a link to their file, and why; to
 * open in the form, and for supervisors to merge with what was typed. */
function showDuplicates(matches, hidden = 0) {
  duplicates = matches;
  const elsewhere = hidden ? [el("li", { className: "duplicate elsewhere" }, t("registry.duplicates_elsewhere", { n: hidden }))] : [];
  $("duplicates-list").replaceChildren(...elsewhere, ...matches.map((m) => el("li", { className: "duplicate", dataset: { elderId: m.elder_id } },
    el("a", { href: `/elder?id=${encodeURIComponent(m.elder_id)}`, target: "_blank", rel: "opener" },
      `${m.name || m.elder_id} · ${m.elder_id}`),
    m.reasons && m.reasons.length ? `${t("list.colon")}${m.reasons.map((r) => label("registry.dup", r)).join(t("list.and"))}` : "",
    " ",
    el("button", { type: "button", className: "duplicate-open", onclick: () => openElder(m.elder_id) },
      t("registry.duplicate_open")),
    mayMerge() ? el("button", { type: "button", className: "duplicate-merge",
      onclick: () => (creating ? merge.compare(m.elder_id, body(), { unsaved: true })
        : merge.compare(record.elder_id, m.elder_id)) },
    t("registry.duplicate_merge")) : null)));
  $("duplicates").hidden = false;
  $("elder-error").textContent = "";
}

// -- leaving care ----------------------------------------------------------------------------------------------

async function leave() {
  $("leave-error").textContent = "";
  if (!$("leave-reason").value) {
    $("leave-error").textContent = t("registry.leave_reason_needed");
    return;
  }
  const devices = (record.devices || []).map((d) => d.device_id);
  if (!window.confirm(t("registry.leave_confirm", { name: record.name, devices: devices.join("、") || "—" }))) return;
  try {
    const answer = await session.api("POST", `/api/elders/${encodeURIComponent(record.elder_id)}/deactivate`,
      { reason: $("leave-reason").value, words: $("leave-words").value.trim() });
    notice("registry.deactivated", { name: answer.name });
    showElder(answer);
  } catch (error) {
    $("leave-error").textContent = errorText(error);
  }
}

async function comeBack() {
  $("leave-error").textContent = "";
  try {
    const answer = await session.api("POST", `/api/elders/${encodeURIComponent(record.elder_id)}/reactivate`,
      { words: $("back-words").value.trim() });
    notice("registry.reactivated", { name: answer.name });
    showElder(answer);
  } catch (error) {
    $("leave-error").textContent = errorText(error);
  }
}

// -- devices ---------------------------------------------------------------------------------------------------

function renderDevices() {
  const devices = record ? record.devices || [] : [];
  for (const d of devices) if (d.test && !tests.has(d.device_id)) tests.set(d.device_id, d.test);
  $("devices-body").replaceChildren(...devices.map((d) => el("tr", { className: "device", dataset: { deviceId: d.device_id } },
    el("td", {}, d.device_id, d.keyed ? el("span", { className: "tag" }, t("registry.keyed")) : null),
    el("td", {}, label("protocol", d.protocol)),
    el("td", {}, d.status && d.status.last_seen ? fmtDateTime(d.status.last_seen) : t("registry.never_seen")),
    el("td", { className: "device-test" }, testWords(tests.get(d.device_id))),
    el("td", { className: "device-actions" },
      el("button", { type: "button", className: "primary device-test-call", disabled: !record.active,
        onclick: () => testCall(d.device_id) }, t("registry.test_call")),
      el("button", { type: "button", className: "danger device-unbind", onclick: () => unbind(d) },
        t("registry.unbind"))))));
  $("devices").hidden = devices.length === 0;
  $("devices-empty").hidden = devices.length > 0;
  $("bind-form").hidden = Boolean(record && !record.active);
}

/** Only the tests' cells, so the rows' buttons stay put while a countdown runs. */
function paintTests() {
  for (const row of document.querySelectorAll("#devices-body tr.device")) {
    row.querySelector(".device-test").replaceChildren(testWords(tests.get(row.dataset.deviceId)));
  }
}

function testWords(test) {
  if (!test) return "—";
  if (test.state === "running") {
    const left = Math.max(0, Math.round(test.until - serverNow()));
    return el("span", { className: "test-running" },
      t("registry.test_running", { m: Math.floor(left / 60), s: String(left % 60).padStart(2, "0") }));
  }
  if (test.state === "passed") {
    return el("span", { className: "test-passed" }, t("registry.test_passed",
      { alarm: label("alarm", test.alarm_type), incident: test.incident_id, time: fmtDateTime(test.ended_at) }));
  }
  return el("span", { className: "test-failed" }, t(`registry.test_failed_${test.reason === "unbound" ? "unbound" : "silent"}`));
}

async function testCall(deviceId) {
  $("devices-error").textContent = "";
  try {
    tests.set(deviceId, await session.api("POST", `/api/devices/${encodeURIComponent(deviceId)}/test`));
    renderDevices();
    poll();
  } catch (error) {
    $("devices-error").textContent = errorText(error);
  }
}

/** Polls the running tests until each passed or failed; repaints the countdown meanwhile. */
function poll() {
  clearTimeout(polling);
  const running = [...tests.values()].filter((test) => test.state === "running");
  if (!running.length || !live) return;
  polling = setTimeout(async () => {
    await Promise.all(running.map(async (test) => {
      try {
        tests.set(test.device_id, await session.api("GET", `/api/devices/${encodeURIComponent(test.device_id)}/test`));
      } catch (_) {
        // the next round asks again
      }
    }));
    paintTests();
    poll();
  }, TEST_POLL_MS);
}

async function unbind(device) {
  $("devices-error").textContent = "";
  if (!window.confirm(t("registry.unbind_confirm", { device: device.device_id }))) return;
  try {
    await session.api("POST", `/api/devices/${encodeURIComponent(device.device_id)}/unbind`, { reason: "" });
    await openElder(record.elder_id);
    notice("registry.unbound", { device: device.device_id });
  } catch (error) {
    $("devices-error").textContent = errorText(error);
  }
}

function showKeyField() {
  $("bind-key").hidden = !KEYED_PROTOCOLS.has($("bind-protocol").value);
}

async function bind(event) {
  event.preventDefault();
  $("devices-error").textContent = "";
  const deviceId = $("bind-device-id").value.trim();
  if (!deviceId) {
    $("devices-error").textContent = t("registry.required", { field: t("registry.device_id") });
    return;
  }
  const protocol = $("bind-protocol").value;
  const key = KEYED_PROTOCOLS.has(protocol) ? $("bind-key").value.replace(/\s+/g, "") : "";
  try {
    await session.api("PUT", `/api/devices/${encodeURIComponent(deviceId)}`,
      { device_id: deviceId, protocol, elder_id: record.elder_id, aes_key: key || null });
    $("bind-form").reset();
    showKeyField();
    const name = record.name;
    await openElder(record.elder_id);
    notice("registry.bound", { device: deviceId, name });
  } catch (error) {
    $("devices-error").textContent = errorText(error);
  }
}

// -- placing by the address --------------------------------------------------------------------------------------

async function locate() {
  const q = $("f-address").value.trim();
  $("f-locate-hint").textContent = "";
  if (!q) return;
  try {
    const answer = await session.api("GET", `/api/places?q=${encodeURIComponent(q)}`);
    const place = answer.places[0];
    if (!place) {
      $("f-locate-hint").textContent = t("registry.locate_none");
      return;
    }
    $("f-lat").value = place.lat.toFixed(6);
    $("f-lon").value = place.lon.toFixed(6);
    $("f-locate-hint").textContent = t("registry.located", { place: place.label });
  } catch (error) {
    $("f-locate-hint").textContent = errorText(error);
  }
}

// -- the CSV export ----------------------------------------------------------------------------------------------

/** The import's CSV of the person's area as the server writes it (its BOM, never a device's key), saved as a
 * file; the export is a read on record. */
async function download(kind) {
  if (!session.current) return;
  $("export-error").textContent = "";
  try {
    const response = await fetch(`/api/registry/export/${kind}.csv`,
      { headers: { Authorization: `Bearer ${session.token}`, Accept: "text/csv" } });
    noteServerDate(response);
    if (!response.ok) throw await readError(response);
    const blob = await response.blob();
    const link = $("export-download");
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    link.href = URL.createObjectURL(blob);
    link.download = name ? name[1] : `${kind}.csv`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    $("export-error").textContent = errorText(error);
  }
}

// -- the tabs ----------------------------------------------------------------------------------------------------

function showTab(name) {
  const admin = session.current && session.current.role === "admin";
  tab = name === "responders" && admin ? "responders" : "elders";
  $("elders-tab").hidden = tab !== "elders";
  $("responders-tab").hidden = tab !== "responders";
  $("tab-elders").setAttribute("aria-pressed", String(tab === "elders"));
  $("tab-responders").setAttribute("aria-pressed", String(tab === "responders"));
  if (tab === "responders") responders.show();
}

// -- the page --------------------------------------------------------------------------------------------------

function notice(key, params) {
  said = key ? [key, params] : null;
  $("registry-notice").textContent = key ? t(key, params) : "";
  $("registry-notice").hidden = !key;
  // said at the top of the page: brought into view, whoever pressed a button at the bottom of a long form
  if (key) $("registry-notice").scrollIntoView({ block: "nearest" });
}

function start() {
  $("login-view").hidden = true;
  menu.show();
}

function showFor(role) {
  if (!session.current) return;
  const allowed = STAFF_ROLES.has(role);
  $("registry-view").hidden = !allowed;
  $("registry-denied").hidden = allowed;
  $("registry-denied-text").textContent = allowed ? "" : t("registry.denied", { role: label("role", role) });
  // responders and clinics are the admins' (PUT /api/responders/{id}), and so is their export
  $("tab-responders").hidden = role !== "admin";
  $("export-responders").hidden = role !== "admin";
  // a file of everyone's medical notes and door codes: supervisors and admins (GET /api/registry/export/...)
  $("export-elders").hidden = $("export-devices").hidden = !SUPERVISOR_ROLES.has(role);
  if (tab === "responders" && role !== "admin") showTab("elders");
  if (allowed && !live) {
    live = true;
    loadChoices().catch((error) => {
      $("find-error").textContent = errorText(error);
    });
  } else if (!allowed && live) {
    live = false;
    forget();
  }
  if (record) paintStatus();
}

/** Nothing read for the last person stays in the page. */
function forget() {
  found = [];
  record = null;
  contacts = [];
  tests = new Map();
  clearTimeout(polling);
  $("find").value = "";
  $("found-body").replaceChildren();
  $("devices-body").replaceChildren();
  $("elder-panel").hidden = true;
  $("devices-panel").hidden = true;
  duplicates = [];
  merge.forRecord(null, false);
  responders.forget();
  showTab("elders");
  notice(null);
}

function showLogin(reasonKey) {
  live = false;
  forget();
  $("registry-view").hidden = true;
  $("registry-denied").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    fillChoices();
    renderFound();
    renderContacts();
    checkResidentId();
    if (record || creating) {
      paintStatus();
      renderDevices();
    }
    if (duplicates.length && !$("duplicates").hidden) showDuplicates(duplicates);
    merge.relabel();
    responders.relabel();
    if (said) notice(...said);
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  $("find").addEventListener("input", search);
  $("find-inactive").addEventListener("change", search);
  $("new-elder").addEventListener("click", openNew);
  $("elder-form").addEventListener("submit", save);
  $("save-distinct").addEventListener("click", () => save(null, { distinct: true }));
  $("elder-close").addEventListener("click", () => {
    $("elder-panel").hidden = true;
    $("devices-panel").hidden = true;
    record = null;
    creating = false;
    merge.forRecord(null, false);
  });
  $("f-resident-id").addEventListener("input", checkResidentId);
  $("f-locate").addEventListener("click", locate);
  $("contact-add").addEventListener("click", () => {
    contacts.push({ name: "", phone: "", relation: "", app: false });
    renderContacts();
  });
  $("leave-submit").addEventListener("click", leave);
  $("back-submit").addEventListener("click", comeBack);
  $("bind-form").addEventListener("submit", bind);
  $("bind-protocol").addEventListener("change", showKeyField);
  $("tab-elders").addEventListener("click", () => showTab("elders"));
  $("tab-responders").addEventListener("click", () => showTab("responders"));
  for (const kind of ["elders", "devices", "responders"]) $(`export-${kind}`).addEventListener("click", () => download(kind));
  setInterval(() => {
    if (session.expired()) session.end("login.expired");
    if ([...tests.values()].some((test) => test.state === "running")) paintTests(); // the countdown
  }, 1000);
  if (session.current) start();
  else showLogin(null);
}

init();
