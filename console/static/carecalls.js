// Anxin care calls (关怀电话): the day's list of elders living alone, empty-nest or aged to call, and the home
// visits proposed after calls nobody answered.
//
// The list comes from GET /api/care-calls?date= (today by default): the calls due (retries whose time came
// first, then the others, then retries still waiting with their time), and the elders reached that day. One
// dialog records an attempt (POST /api/care-calls/{elder_id}): reached, with how the elder is (well / unwell /
// needs help) and a short note, or not reached (the server says when to try again, or that a home visit is now
// proposed). Proposed visits come from GET /api/care-visits and are settled with a note of what was found.
//
// Rules
//   1. The server decides who is due, when a retry falls and when a visit is proposed; the page shows it.
//   2. Every refusal is shown from its code, in the operator's language; data is never written as HTML.
//   3. The list is read again every minute (a retry's time comes) and after every answer.
"use strict";

import { $, STAFF_SESSION, Session, el, loadConfig, serverNow } from "./common.js";
import {
  bindLanguageSelect, currentLanguage, fmtDateTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone,
  t,
} from "./i18n.js";
import { forgetTelephony, phoneLink as dialLink, watchTelephony } from "./dial.js";
import { bindStaffLogin } from "./login.js";
import { bindAccountMenu, placeWords, refusal } from "./me.js";

const REFRESH_MS = 60_000;
/** Why an elder is called, in words: living alone, empty nest, or the deployment's age (care_call_age). */
function reasonWords(reason) {
  if (reason === "aged") return t("care.reason_aged", { age: (page.day && page.day.aged_from) || 80 });
  return label("risk", reason);
}

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session);
const page = {
  day: null, // the list as GET /api/care-calls answered
  visits: [],
  calling: null, // {line, reached} of the call dialog
  settling: null, // the visit in the settle dialog
  timer: 0,
};

let centreZone = "Asia/Shanghai";
const clocks = new Map(); // language -> its HH:MM format in the centre's time zone

/** A time of day as HH:MM in the centre's time zone: when a retry falls ("17:48再拨"). */
function fmtTime(epoch) {
  if (!epoch) return "—";
  const language = currentLanguage();
  if (!clocks.has(language)) {
    clocks.set(language, new Intl.DateTimeFormat(language, {
      timeZone: centreZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }));
  }
  return clocks.get(language).format(new Date(epoch * 1000));
}

const cellLabel = (key) => `${t(key)}${t("list.colon")}`;

function notice(text) {
  $("care-notice").textContent = text;
  $("care-notice").hidden = !text;
}

// -- reading -----------------------------------------------------------------------------------------------

/** The centre's today as YYYY-MM-DD, on the server's clock (the date input's value for "today"). */
function centreToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: centreZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(serverNow() * 1000));
}

async function load() {
  const input = $("care-date");
  const today = centreToday();
  if (input.dataset.today !== today) { // past midnight: a page left on "today" follows it to the new day
    if (!input.value || input.value === input.dataset.today) input.value = today;
    input.dataset.today = today;
  }
  const date = input.value || "today";
  try {
    const [day, visits] = await Promise.all([
      session.api("GET", `/api/care-calls?date=${encodeURIComponent(date)}`),
      session.api("GET", "/api/care-visits"),
    ]);
    page.day = day;
    page.visits = visits.visits || [];
    if (!$("care-date").value) $("care-date").value = day.date;
    $("care-error").textContent = "";
  } catch (error) {
    $("care-error").textContent = refusal(error);
  }
  render();
}

function render() {
  const day = page.day || { calls: [], done: [], date: "" };
  const today = day.date && $("care-date").dataset.today === day.date;
  $("care-heading").textContent = today || !day.date ? t("care.heading_today") : t("care.heading_day", { date: day.date });
  $("care-count").textContent = day.due_total > day.calls.length
    ? t("care.count_of", { n: day.calls.length, total: day.due_total })
    : t("care.count", { n: day.calls.length });
  $("care-body").replaceChildren(...day.calls.map(callRow));
  $("care-empty").hidden = day.calls.length > 0;
  $("care-calls").hidden = day.calls.length === 0;
  $("visits-count").textContent = t("care.count", { n: page.visits.length });
  $("visits-body").replaceChildren(...page.visits.map(visitRow));
  $("visits-empty").hidden = page.visits.length > 0;
  $("visits-hint").hidden = page.visits.length === 0;
  $("care-visits").hidden = page.visits.length === 0;
  $("done-count").textContent = day.done_total > day.done.length
    ? t("care.count_of", { n: day.done.length, total: day.done_total })
    : t("care.count", { n: day.done.length });
  $("done-list").replaceChildren(...day.done.map(doneItem));
  $("done-empty").hidden = day.done.length > 0;
}

const phoneLink = (phone, elderId) => (phone ? dialLink(phone, { className: "care-tel", elderId })
  : el("span", { className: "muted" }, t("care.no_phone")));

const reasonTags = (reasons) => reasons.map((r) => el("span", { className: `tag care-reason ${r}` }, reasonWords(r)));

function lastCall(line) {
  if (!line.last_call_at) return el("span", { className: "muted" }, t("care.never_called"));
  const outcome = line.last_reached
    ? t("care.last_reached", { time: fmtDateTime(line.last_call_at), wellbeing: label("wellbeing", line.last_wellbeing) })
    : t("care.last_missed", { time: fmtDateTime(line.last_call_at) });
  return [
    el("span", { className: line.last_reached ? "" : "care-missed" }, outcome),
    line.last_note ? el("span", { className: "muted care-note" }, line.last_note) : null,
  ];
}

function statusWords(line) {
  if (line.retry_at && !line.ready) return el("span", { className: "state-tag care-wait" }, t("care.retry_at", { time: fmtTime(line.retry_at) }));
  if (line.retry_at) return el("span", { className: "state-tag care-retry" }, t("care.retry_now"));
  const overdue = page.day && line.next_due < page.day.date;
  return el("span", { className: `state-tag ${overdue ? "care-overdue" : "care-due"}` },
    overdue ? t("care.overdue_since", { date: line.next_due }) : t("care.due"));
}

function callRow(line) {
  const button = (reached, key, className) => el("button", {
    type: "button", className, dataset: { action: reached ? "reached" : "missed", elder: line.elder_id },
  }, t(key));
  return el("tr", { dataset: { elderId: line.elder_id, state: line.state, ready: String(line.ready) } },
    el("td", { className: "care-who" }, el("strong", {}, line.elder_name),
      el("span", { className: "muted care-place" }, placeWords(line.community, true))),
    el("td", { className: "care-phone", dataset: { label: cellLabel("care.phone") } }, phoneLink(line.phone, line.elder_id)),
    el("td", { className: "care-why", dataset: { label: cellLabel("care.why") } }, reasonTags(line.reasons)),
    el("td", { className: "care-last", dataset: { label: cellLabel("care.last_call") } }, lastCall(line)),
    el("td", { className: "care-attempts", dataset: { label: cellLabel("care.attempts") } },
      line.attempts ? t("care.attempts_n", { n: line.attempts }) : "—"),
    el("td", { className: "care-status", dataset: { label: cellLabel("care.status") } }, statusWords(line)),
    el("td", { className: "care-actions" }, button(true, "care.reached", "primary"), button(false, "care.missed", "")));
}

function visitRow(visit) {
  return el("tr", { dataset: { visitId: visit.visit_id, elderId: visit.elder_id } },
    el("td", { className: "care-who" }, el("strong", {}, visit.elder_name || visit.elder_id),
      visit.drill ? el("span", { className: "tag" }, t("flag.drill")) : null,
      el("span", { className: "muted care-place" }, t("care.visit_why", { n: visit.attempts }))),
    el("td", { className: "care-phone", dataset: { label: cellLabel("care.phone") } }, phoneLink(visit.phone, visit.elder_id)),
    el("td", { className: "care-address", dataset: { label: cellLabel("care.address") } }, visit.address || "—"),
    el("td", { dataset: { label: cellLabel("care.proposed_at") } }, fmtDateTime(visit.proposed_at)),
    el("td", { className: "care-actions" },
      el("button", { type: "button", dataset: { action: "settle", visit: visit.visit_id } }, t("care.settle"))));
}

function doneItem(line) {
  return el("li", { dataset: { elderId: line.elder_id } },
    el("strong", {}, line.elder_name), " ",
    el("span", {}, t("care.last_reached", { time: fmtTime(line.last_call_at), wellbeing: label("wellbeing", line.last_wellbeing) })),
    line.last_note ? el("span", { className: "muted care-note" }, line.last_note) : null);
}

// -- recording ---------------------------------------------------------------------------------------------

function openCall(line, reached) {
  page.calling = { line, reached };
  $("call-form").reset();
  $("call-error").textContent = "";
  $("call-wellbeing").hidden = !reached;
  $("call-help-hint").hidden = true;
  paintCallTitle();
  $("call-phone").textContent = line.phone || t("care.no_phone");
  $("call-dialog").showModal();
}

function paintCallTitle() {
  const { line, reached } = page.calling;
  $("call-title").textContent = t(reached ? "care.reached_title" : "care.missed_title", { name: line.elder_name });
  $("call-submit").textContent = t(reached ? "care.record_reached" : "care.record_missed");
}

async function submitCall(event) {
  event.preventDefault();
  const { line, reached } = page.calling;
  const picked = document.querySelector('input[name="wellbeing"]:checked');
  if (reached && !picked) {
    $("call-error").textContent = t("error.wellbeing_required");
    return;
  }
  const body = { reached, note: $("call-note").value.trim() };
  if (reached) body.wellbeing = picked.value;
  $("call-submit").disabled = true;
  try {
    const answer = await session.api("POST", `/api/care-calls/${encodeURIComponent(line.elder_id)}`, body);
    $("call-dialog").close();
    const call = answer.call || {};
    if (answer.visit) notice(t("care.visit_proposed_done", { name: line.elder_name, n: answer.visit.attempts }));
    else if (!reached) notice(t("care.missed_done", { name: line.elder_name, time: fmtTime(call.retry_at) }));
    else notice(t("care.reached_done", { name: line.elder_name }));
    await load();
  } catch (error) {
    $("call-error").textContent = refusal(error);
  } finally {
    $("call-submit").disabled = false;
  }
}

function openSettle(visit) {
  page.settling = visit;
  $("settle-form").reset();
  $("settle-error").textContent = "";
  $("settle-title").textContent = t("care.settle_title", { name: visit.elder_name || visit.elder_id });
  $("settle-dialog").showModal();
}

async function submitSettle(event) {
  event.preventDefault();
  const visit = page.settling;
  const note = $("settle-note").value.trim();
  if (!note) {
    $("settle-error").textContent = t("error.note_required");
    return;
  }
  $("settle-submit").disabled = true;
  try {
    await session.api("POST", `/api/care-visits/${encodeURIComponent(visit.visit_id)}/settle`, { note });
    $("settle-dialog").close();
    notice(t("care.settled_done", { name: visit.elder_name || visit.elder_id }));
    await load();
  } catch (error) {
    $("settle-error").textContent = refusal(error);
  } finally {
    $("settle-submit").disabled = false;
  }
}

function rowAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  if (button.dataset.action === "settle") {
    const visit = page.visits.find((v) => v.visit_id === button.dataset.visit);
    if (visit) openSettle(visit);
    return;
  }
  const line = page.day && page.day.calls.find((c) => c.elder_id === button.dataset.elder);
  if (line) openCall(line, button.dataset.action === "reached");
}

// -- session and wiring ------------------------------------------------------------------------------------

function relabel() {
  menu.relabel();
  if (!session.current) return;
  render();
  if (page.calling) paintCallTitle();
  if (page.settling) {
    $("settle-title").textContent = t("care.settle_title", { name: page.settling.elder_name || page.settling.elder_id });
  }
}

function start() {
  $("login-view").hidden = true;
  $("care-view").hidden = false;
  menu.show();
  watchTelephony(session);
  load();
  clearInterval(page.timer);
  page.timer = setInterval(load, REFRESH_MS);
}

function showLogin(reasonKey) {
  forgetTelephony();
  menu.hide();
  clearInterval(page.timer);
  page.day = null;
  page.visits = [];
  for (const id of ["call-dialog", "settle-dialog"]) {
    if ($(id).open) $(id).close();
  }
  $("care-body").replaceChildren();
  $("visits-body").replaceChildren();
  $("done-list").replaceChildren();
  notice("");
  $("care-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  centreZone = config.timezone;
  bindLanguageSelect($("lang-select"));
  onLanguageChange(relabel);
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  $("care-date").addEventListener("change", () => {
    notice("");
    load();
  });
  $("care-refresh").addEventListener("click", load);
  $("care-body").addEventListener("click", rowAction);
  $("visits-body").addEventListener("click", rowAction);
  $("call-form").addEventListener("submit", submitCall);
  $("call-cancel").addEventListener("click", () => $("call-dialog").close());
  $("call-wellbeing").addEventListener("change", () => {
    const picked = document.querySelector('input[name="wellbeing"]:checked');
    $("call-help-hint").hidden = !(picked && picked.value === "needs_help");
  });
  $("settle-form").addEventListener("submit", submitSettle);
  $("settle-cancel").addEventListener("click", () => $("settle-dialog").close());
  if (session.current) start();
  else showLogin(null);
}

init();
