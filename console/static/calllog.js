// Anxin call log (/calls, 通话记录): the hotline's calls of today or of the last seven days, newest first, one
// row per call, for the staff (operators, supervisors, admins). The console lists a call only while it is on
// someone's desk; here an operator finds "who called ten minutes ago" and calls them back, and a supervisor
// reads the calls behind the figures of the supervisor page's calls card.
//
// Theory of operation
//   The page reads GET /api/calls?limit=LIMIT when it starts, every REFRESH_MS while it is shown, and on the
//   refresh button. The server answers with the calls the reader may see (its reach), newest first, each a
//   dispatch.views.call_view. Everything else happens here, on what was read: the period (today, the last
//   seven days, as days of the centre's time zone), the direction, the outcome and the search box (digits of
//   the number, or a part of a name) filter the rows without asking the server again.
//
// Rules
//   1. One row per call: when it rang, the number with its 拨打 button (dial.js; an inbound call is called
//      back with its call id, rule 2 of dial.js), who it is (the elder's name, a link to their file; a family
//      contact; an unknown number), the operator's classification (or 待分类, 待回拨, a call still going), the
//      incident it opened (a link into the console), the record in words (callrecord.js: 呼入/呼出, 未接,
//      排队放弃, 接通, 转接 ...; said once there, not again beside the name) and what the operator wrote.
//   2. The counts say how many rows are shown of how many calls the period holds; when the server gave LIMIT
//      calls (the most it is asked for), the page says older ones may be missing rather than pretend.
//   3. A refresh keeps the filters and the search as they are; an answer to an earlier read that arrives
//      after a later one is dropped. A refused read says why (errorText) and keeps the rows it had.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, serverNow } from "./common.js";
import { callFacts } from "./callrecord.js";
import { dialButton, dialNumber, forgetTelephony, watchTelephony } from "./dial.js";
import {
  bindLanguageSelect, fmtDateTime, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { bindAccountMenu } from "./me.js";
import { zoned } from "./servicewords.js";

const LIMIT = 2000;
const REFRESH_MS = 15_000;
const WEEK_DAYS = 7;
const DAY_S = 86_400;
/** The outcomes the filter offers, concluded ones first (the keys of calloutcome.*). */
const OUTCOMES = ["answered", "transferred", "missed", "abandoned", "no_answer", "failed", "queued", "ringing", "talking"];

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session);
let config = null;
let calls = null; // the last answer's calls, newest first; null before the first answer
let readAt = 0;
let asked = 0;
let timer = 0;

async function load() {
  if (!session.current) return;
  const mine = ++asked;
  try {
    const answer = await session.api("GET", `/api/calls?limit=${LIMIT}`);
    if (mine !== asked) return;
    calls = answer.calls || [];
    readAt = serverNow();
    $("calllog-error").textContent = "";
  } catch (error) {
    if (mine !== asked) return;
    if (!(error instanceof ApiError && error.status === 401)) $("calllog-error").textContent = errorText(error);
  }
  render();
}

/** The first day (YYYY-MM-DD in the centre's zone) the period shows. */
function firstDay(period) {
  const back = period === "week" ? WEEK_DAYS - 1 : 0;
  return zoned(serverNow() - back * DAY_S, config.timezone).date;
}

const digitsOf = (text) => String(text || "").replace(/\D/g, "");

/** The names a call is known by: the elder's, the family contact's and their elder's. */
function namesOf(call) {
  const names = [call.elder_name];
  if (call.contact) names.push(call.contact.name, call.contact.elder_name);
  for (const offered of call.offered || []) names.push(offered.name);
  return names.filter(Boolean);
}

function matches(call, query) {
  if (!query) return true;
  const digits = digitsOf(query);
  if (digits && digitsOf(call.caller).includes(digits)) return true;
  const text = query.toLowerCase();
  return namesOf(call).some((name) => name.toLowerCase().includes(text)) || String(call.caller).includes(query);
}

function inPeriod() {
  const since = firstDay($("calllog-period").value);
  return (calls || []).filter((call) => zoned(call.started_at, config.timezone).date >= since);
}

function chosen(list) {
  const direction = $("calllog-direction").value;
  const outcome = $("calllog-outcome").value;
  const query = $("calllog-search").value.trim();
  return list.filter((call) => (!direction || (call.direction || "in") === direction)
    && (!outcome || call.outcome === outcome) && matches(call, query));
}

/** Who the call is, as a link to the elder's file when the registry knows whose number it is. */
function whoOf(call) {
  const elderLink = (elderId, text) => el("a", { className: "calllog-elder", href: `/elder?id=${encodeURIComponent(elderId)}` }, text);
  if (call.elder_id && call.elder_name) return elderLink(call.elder_id, call.elder_name);
  if (call.contact && call.contact.elder_id && call.contact.elder_name) {
    return elderLink(call.contact.elder_id, t("calls.contact_of", { elder: call.contact.elder_name }));
  }
  const offered = (call.offered || []).map((o) => o.name).join("、");
  if (offered) return el("span", { className: "calllog-who" }, offered);
  if (call.direction === "out") return null;
  return el("span", { className: "calllog-who muted" }, t("call.unknown_number"));
}

/** What the operator made of the call: their classification, a call back due, or "to classify" for an
 * inbound call answered and not yet classified; null when the record in words already says it all. */
function statusOf(call) {
  if (call.kind) return { text: label("callkind", call.kind), className: `calllog-kind kind-${call.kind}` };
  if (call.callback === "due") return { text: t("calls.callback_due"), className: "calllog-callback" };
  if (call.direction !== "out" && call.answered_at && call.state === "ended") {
    return { text: t("calls.unclassified"), className: "calllog-unclassified" };
  }
  if (call.state !== "ended") return { text: label("call", call.state), className: "calllog-state" };
  return null; // how it ended is in the record (callFacts: 未接, 排队放弃, 接通 ...)
}

function row(call) {
  const number = dialNumber(call.caller);
  const inbound = call.direction !== "out";
  const status = statusOf(call);
  const notes = [];
  if (call.text) notes.push(el("p", { className: "calllog-text" }, call.text));
  if (call.callback_outcome) {
    notes.push(el("p", { className: "calllog-text" }, t("calllog.called_back", { outcome: call.callback_outcome })));
  }
  const facts = callFacts(call);
  return el("li", {
    className: `calllog-call call-${call.state}`,
    dataset: { callId: call.call_id, direction: call.direction || "in", outcome: call.outcome || "", kind: call.kind || "" },
  },
  el("div", { className: "calllog-head" },
    el("time", { className: "calllog-time", title: fmtDateTime(call.started_at) }, fmtDateTime(call.started_at)),
    el("span", { className: "calllog-number" }, call.caller,
      number ? dialButton(number, { elderId: call.elder_id || null, callId: inbound ? call.call_id : null, incidentId: call.incident_id || null }) : null),
    whoOf(call),
    status ? el("span", { className: `chip ${status.className}` }, status.text) : null,
    call.drill ? el("span", { className: "chip calllog-drill" }, t("calllog.drill")) : null,
    call.incident_id ? el("a", {
      className: "calllog-incident", href: `/console#incident=${encodeURIComponent(call.incident_id)}`,
      title: t("calllog.open_incident"),
    }, t("calllog.incident", { id: call.incident_id })) : null),
  facts.length ? el("div", { className: "call-facts calllog-facts" }, ...facts) : null,
  ...notes);
}

function render() {
  const loaded = calls !== null;
  const period = loaded ? inPeriod() : [];
  const shown = chosen(period);
  $("calllog-list").replaceChildren(...shown.map(row));
  $("calllog-empty").hidden = !loaded || shown.length > 0;
  let count = loaded ? t("calllog.count", { shown: shown.length, total: period.length }) : "";
  if (loaded && calls.length >= LIMIT) count += ` ${t("calllog.capped", { n: LIMIT })}`;
  $("calllog-count").textContent = count;
  $("calllog-updated").textContent = loaded ? t("calllog.updated", { time: fmtTime(readAt) }) : "";
}

function fillOutcomes() {
  const current = $("calllog-outcome").value;
  $("calllog-outcome").replaceChildren(el("option", { value: "" }, t("calllog.all")),
    ...OUTCOMES.map((code) => el("option", { value: code }, label("calloutcome", code))));
  $("calllog-outcome").value = current;
}

function start() {
  $("login-view").hidden = true;
  $("calllog-view").hidden = false;
  menu.show();
  watchTelephony(session);
  load();
  clearInterval(timer);
  timer = setInterval(() => {
    if (document.visibilityState === "visible") load();
  }, REFRESH_MS);
}

function showLogin(reasonKey) {
  clearInterval(timer);
  calls = null;
  render();
  forgetTelephony();
  $("calllog-view").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  fillOutcomes();
  onLanguageChange(() => {
    menu.relabel();
    fillOutcomes();
    render();
  });
  for (const id of ["calllog-period", "calllog-direction", "calllog-outcome"]) $(id).addEventListener("change", render);
  $("calllog-search").addEventListener("input", render);
  $("calllog-refresh").addEventListener("click", load);
  $("calllog-filters").addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && session.current) load();
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  if (session.current) start();
  else showLogin(null);
}

init();
