// A clinic's desk (绿色通道): the referrals the centre's operators sent to this clinic, live.
//
// The page polls GET /api/clinic/referrals every few seconds (and at once when it comes back into view), as the
// phone page reads its service orders; an answer is one POST /api/clinic/referrals/{id}/{accept|decline|arrived|
// outcome} whose reply is the list as it now stands. A new referral beeps.
//
// Rules
//   1. The server decides what the clinic may see: before accepting, the alarm, its urgency, the age, how far, the
//      operator's note; after accepting, the name and the medical notes too. The page shows what it is given.
//   2. The buttons follow the referral's state (the server refuses any other move with a code, shown in words).
//   3. Data is never written as HTML; every visible string comes from the catalogues.
"use strict";

import { $, Session, el, errorText, loadConfig, serverNow } from "./common.js";
import {
  bindLanguageSelect, fmtDistance, fmtEta, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";
import { beep, listenForUnlock } from "./sound.js";

const POLL_MS = 4000;
const OUTCOMES = ["admitted", "treated_home", "transferred", "left", "died", "other"];
const session = new Session("anxin.clinic.session");
const page = { list: null, timer: 0, seen: new Set(), busy: false };

// -- reading -----------------------------------------------------------------------------------------------

async function load() {
  if (!session.current || page.busy) return;
  try {
    show(await session.api("GET", "/api/clinic/referrals"));
    $("conn").dataset.state = "online";
    $("clinic-error").textContent = "";
  } catch (error) {
    $("conn").dataset.state = "offline";
    if (session.current) $("clinic-error").textContent = errorText(error);
  }
}

function show(list) {
  const fresh = list.referrals.filter((r) => r.state === "referred" && !page.seen.has(r.referral_id));
  if (page.list !== null && fresh.length) beep({ times: 3 });
  for (const r of list.referrals) page.seen.add(r.referral_id);
  page.list = list;
  render();
}

function render() {
  const list = page.list || { referrals: [], clinic_name: "" };
  $("clinic-name").textContent = list.clinic_name || "";
  const open = list.referrals.filter((r) => r.open).length;
  $("open-count").textContent = t("clinic_page.open_count", { n: open });
  const focused = document.activeElement && document.activeElement.closest(".referral");
  const keep = focused ? focused.dataset.referralId : null;
  const typed = new Map([...document.querySelectorAll(".referral input, .referral select")]
    .map((input) => [`${input.closest(".referral").dataset.referralId}|${input.name}`, input.value]));
  $("referrals").replaceChildren(...list.referrals.map(card));
  for (const input of document.querySelectorAll(".referral input, .referral select")) {
    const key = `${input.closest(".referral").dataset.referralId}|${input.name}`;
    if (typed.has(key)) input.value = typed.get(key);
  }
  if (keep) {
    const again = document.querySelector(`.referral[data-referral-id="${CSS.escape(keep)}"] input`);
    if (again) again.focus();
  }
  $("referrals-empty").hidden = list.referrals.length > 0;
  tick();
}

function card(r) {
  const facts = [
    ["clinic_page.alarm", `${label("alarm", r.alarm_type)} · ${t("priority.short", { n: r.priority })}`],
    ["clinic_page.age", r.age === null ? "—" : t("clinic_page.age_value", { age: r.age })],
    ["clinic_page.distance", r.distance_m === null ? "—" : `${fmtDistance(r.distance_m)} · ${fmtEta(r.eta_s)}`],
    ["clinic_page.referred_at", fmtTime(r.referred_at)],
  ];
  if (r.details) {
    facts.unshift(["clinic_page.name", r.elder_name || "—"]);
    facts.push(["clinic_page.care_level", r.care_level === null ? "—" : String(r.care_level)]);
  }
  if (r.arrived_at) facts.push(["clinic_page.arrived_at", fmtTime(r.arrived_at)]);
  if (r.outcome) facts.push(["clinic_page.outcome", label("outcome", r.outcome)]);
  return el("li", { className: "referral", dataset: { referralId: r.referral_id, state: r.state } },
    el("h2", {}, r.details && r.elder_name ? r.elder_name : label("alarm", r.alarm_type), " ",
      el("span", { className: "state-tag" }, label("referral", r.state)),
      r.drill ? el("span", { className: "drill" }, ` ${t("flag.drill")}`) : null),
    el("dl", {}, ...facts.flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)])),
    r.note ? el("p", { className: "notes" }, t("clinic_page.operator_note", { note: r.note })) : null,
    r.details && r.medical_notes ? el("p", { className: "notes medical" },
      t("clinic_page.medical_notes", { notes: r.medical_notes })) : null,
    !r.details && r.state === "referred" ? el("p", { className: "muted" }, t("clinic_page.details_after")) : null,
    r.words && !r.open ? el("p", { className: "muted" }, r.words) : null,
    r.state === "referred" ? el("p", { className: "countdown", dataset: { deadline: String(r.deadline) } }) : null,
    buttons(r));
}

function buttons(r) {
  const act = (action, key, className, body = () => ({})) => el("button", {
    type: "button", className, dataset: { action }, onclick: () => answer(r, action, body()),
  }, t(key));
  const note = () => ({ note: (document.querySelector(`.referral[data-referral-id="${CSS.escape(r.referral_id)}"] input[name=note]`) || {}).value || "" });
  const noteInput = el("input", { name: "note", type: "text", maxLength: 1000, placeholder: t("clinic_page.note"),
    "aria-label": t("clinic_page.note") });
  if (r.state === "referred") {
    return el("div", { className: "buttons" }, noteInput, act("accept", "clinic_page.accept", "accept", note),
      act("decline", "clinic_page.decline", "decline", note));
  }
  if (r.state === "accepted") {
    return el("div", { className: "buttons" }, noteInput, act("arrived", "clinic_page.arrived", "primary", note));
  }
  if (r.state === "arrived") {
    const pick = el("select", { name: "outcome", "aria-label": t("clinic_page.outcome") },
      ...OUTCOMES.map((o) => el("option", { value: o }, label("outcome", o))));
    const outcome = () => ({ ...note(), outcome: document.querySelector(
      `.referral[data-referral-id="${CSS.escape(r.referral_id)}"] select[name=outcome]`).value });
    return el("div", { className: "buttons" }, pick, noteInput,
      act("outcome", "clinic_page.record_outcome", "primary", outcome));
  }
  return null;
}

async function answer(r, action, body) {
  if (page.busy) return;
  page.busy = true;
  $("clinic-error").textContent = "";
  try {
    const url = `/api/clinic/referrals/${encodeURIComponent(r.referral_id)}/${action}`;
    const list = await session.api("POST", url, body);
    page.busy = false;
    show(list);
  } catch (error) {
    $("clinic-error").textContent = errorText(error);
    page.busy = false;
    load();
  }
}

function tick() {
  for (const node of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = Math.max(0, Math.round(Number(node.dataset.deadline) - serverNow()));
    node.textContent = t("clinic_page.answer_within", { min: Math.floor(left / 60), s: String(left % 60).padStart(2, "0") });
  }
}

// -- login ---------------------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    const who = await session.login($("login-username").value.trim(), $("login-password").value);
    if (who.role !== "clinic") {
      session.end();
      $("login-error").textContent = t("clinic_page.not_clinic");
      return;
    }
    $("login-password").value = "";
    start();
  } catch (error) {
    $("login-error").textContent = errorText(error);
  } finally {
    $("login-submit").disabled = false;
  }
}

function start() {
  $("login-view").hidden = true;
  $("clinic-view").hidden = false;
  page.list = null;
  page.seen = new Set();
  load();
  clearInterval(page.timer);
  page.timer = setInterval(load, POLL_MS);
}

function showLogin(reasonKey) {
  clearInterval(page.timer);
  page.list = null;
  $("referrals").replaceChildren();
  $("clinic-name").textContent = "";
  $("clinic-view").hidden = true;
  $("login-view").hidden = false;
  $("conn").dataset.state = "offline";
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  listenForUnlock();
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(render);
  $("login-form").addEventListener("submit", login);
  $("login-submit").disabled = false;
  $("logout-button").addEventListener("click", () => session.logout());
  session.onEnd = showLogin;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") load();
  });
  setInterval(() => {
    tick();
    if (session.expired()) session.end("login.expired");
  }, 1000);
  if (session.current && session.current.role === "clinic") start();
  else showLogin(null);
}

init();
