// Anxin duty page (值班与交接班): who is on duty for a part of the network and since when, the shift's log, the
// live summary of the desk (open incidents, open service orders, follow-ups due, the shift's alarms and calls),
// the handover with the operator's words, the next operator's acknowledgment, and the past shifts.
//
// Rules
//   1. What it shows comes from GET /api/duty (the scope's latest shift and the live summary) and
//      GET /api/duty/history; the /ws/console feed says when something of the desk changed (re-read at most
//      every REFRESH_MS) and a slow timer covers the ages.
//   2. The sheet is one shift: the current one, or a past one picked from the history. A handed-over shift
//      shows the summary it was handed over with, never today's desk; printing prints the sheet alone.
//   3. Staff only (operators, supervisors, admins), as the API admits them; a scope comes from the person's
//      own scopes (a choice when they hold several).
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, serverNow, throttle } from "./common.js";
import { ConsoleFeed, paintConnection } from "./feed.js";
import {
  bindLanguageSelect, currentLanguage, fmtDateTime, fmtDuration, label, onLanguageChange, preferredLanguage,
  setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu, placeWords } from "./me.js";

const REFRESH_MS = 500;
const SLOW_REFRESH_MS = 30_000;
const RELEVANT = /^(incident|call|service|follow_up|duty)\./;

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: () => render() });
let duty = null; // GET /api/duty
let shifts = []; // GET /api/duty/history
let picked = null; // a past shift shown on the sheet (rule 2), or null: the current one
let scope = null; // the scope asked about (null: the person's first)
let items = {}; // the service catalogue by item id, for the names of ordered items
let connection = { state: "offline", info: {} };

const feed = new ConsoleFeed({
  token: () => session.token,
  onSnapshot: () => refresh(),
  onEntry: (entry) => {
    if (RELEVANT.test(entry.kind)) refreshSoon();
  },
  onState: (state, info) => {
    connection = { state, info };
    showConnection();
  },
  onRefused: () => session.api("GET", "/api/me").catch(() => {}),
});

async function refresh() {
  if (!session.current) return;
  try {
    const query = scope ? `?scope=${encodeURIComponent(scope)}` : "";
    const days = $("history-days").value;
    const [now, past] = await Promise.all([
      session.api("GET", `/api/duty${query}`), session.api("GET", `/api/duty/history?days=${days}`),
    ]);
    if (!session.current) return;
    duty = now;
    shifts = past.shifts;
    if (picked) picked = shifts.find((s) => s.shift_id === picked.shift_id) || null;
    $("duty-error").textContent = "";
    render();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) $("duty-error").textContent = errorText(error);
  }
}
const refreshSoon = throttle(refresh, REFRESH_MS);

async function loadItems() {
  try {
    const answer = await session.api("GET", "/api/services");
    items = Object.fromEntries(answer.services.map((item) => [item.item_id, item]));
  } catch (_) {
    items = {}; // the ids show instead
  }
}

/** Sends one action; the answer is the scope's duty as it now stands. */
async function act(path, body, button) {
  button.disabled = true;
  $("duty-error").textContent = "";
  try {
    duty = await session.api("POST", path, { scope: duty.scope, ...body });
    picked = null;
    render();
    refreshSoon(); // the history too
    return true;
  } catch (error) {
    $("duty-error").textContent = errorText(error);
    return false;
  } finally {
    button.disabled = false;
  }
}

// -- painting -----------------------------------------------------------------------------------------

const me = () => (session.current ? `${session.current.role}:${session.current.username}` : "");
const who = (actor, name) => name || (actor ? actor.slice(actor.indexOf(":") + 1) : "—");
const scopeName = (path) => (path === "*" ? t("scope.all") : placeWords(path));
const itemName = (id) => {
  const item = items[id];
  if (!item) return id;
  return currentLanguage() === "zh-CN" ? item.name_zh : item.name_en;
};

function render() {
  if (!duty || !session.current) return;
  renderScopes();
  renderStatus();
  renderSheet(picked || duty.shift);
  renderHistory();
  $("duty-updated").textContent = t("duty.updated", { time: fmtDateTime(serverNow()) });
}

function renderScopes() {
  const mine = duty.scopes;
  $("duty-scope-field").hidden = mine.length < 2;
  const select = $("duty-scope");
  select.replaceChildren(...mine.map((path) => el("option", { value: path, selected: path === duty.scope },
    scopeName(path))));
}

function renderStatus() {
  const shift = duty.shift;
  const onDuty = shift && shift.state === "on_duty";
  const waiting = shift && shift.state === "handed_over";
  const status = $("duty-status");
  status.dataset.state = onDuty ? "on_duty" : waiting ? "handed_over" : "none";
  const where = scopeName(duty.scope);
  if (onDuty) {
    $("duty-who").textContent = t("duty.on_duty_now", {
      scope: where, name: who(shift.operator, shift.operator_name), kind: label("duty.kind", shift.kind),
      since: fmtDateTime(shift.started_at), hours: fmtDuration(serverNow() - shift.started_at),
    });
  } else if (waiting) {
    $("duty-who").textContent = t("duty.waiting_now", {
      scope: where, name: who(shift.handed_over_by, shift.handed_over_by_name), at: fmtDateTime(shift.handed_over_at),
    });
  } else {
    $("duty-who").textContent = t("duty.nobody_now", { scope: where });
  }
  const mine = onDuty && shift.operator === me();
  const forOthers = onDuty && !mine && SUPERVISOR_ROLES.has(session.current.role);
  $("start-form").hidden = Boolean(shift && shift.state !== "taken_over");
  $("handover-form").hidden = !(mine || forOthers);
  $("duty-handover").textContent = t(forOthers ? "duty.handover_for" : "duty.handover");
  $("takeover-form").hidden = !waiting;
  $("log-form").hidden = !onDuty || Boolean(picked);
}

const fact = (key, value) => (value ? [el("dt", {}, t(key)), el("dd", {}, value)] : []);

/** The sheet of one shift (rule 2): who, when, the words, the summary and the log. */
function renderSheet(shift) {
  const current = !picked;
  $("sheet-back").hidden = current;
  const handed = shift && shift.summary;
  if (!shift) $("sheet-title").textContent = t("duty.sheet_none", { scope: scopeName(duty.scope) });
  else if (handed) $("sheet-title").textContent = t("duty.sheet_handover", { scope: scopeName(shift.scope) });
  else $("sheet-title").textContent = t("duty.sheet_shift", { scope: scopeName(shift.scope) });
  $("sheet-facts").replaceChildren(...(shift ? [
    ...fact("duty.operator", `${who(shift.operator, shift.operator_name)} · ${label("duty.kind", shift.kind)}`),
    ...fact("duty.started_at", fmtDateTime(shift.started_at)),
    ...fact("duty.handed_over", shift.handed_over_at
      && t("duty.by_at", { name: who(shift.handed_over_by, shift.handed_over_by_name), at: fmtDateTime(shift.handed_over_at) })),
    ...fact("duty.words", shift.words),
    ...fact("duty.acknowledged", handed && (shift.acknowledged
      ? t("duty.by_at", { name: who(shift.taken_over_by, shift.taken_over_by_name), at: fmtDateTime(shift.taken_over_at) })
      : t("duty.not_acknowledged"))),
    ...fact("duty.disputed", shift.take_over_words),
  ] : []));
  const summary = handed ? shift.summary : current ? duty.summary : null;
  renderSummary(summary, Boolean(handed));
  const lines = shift ? shift.log : [];
  $("log-count").textContent = `(${lines.length})`;
  $("sheet-log").replaceChildren(...(lines.length ? lines.map((line) => el("li", {},
    el("time", { className: "log-at" }, fmtDateTime(line.at)), " ",
    el("span", { className: "log-who muted" }, who(line.actor, line.actor_name)), " ",
    el("span", { className: "log-text" }, line.text))) : [el("li", { className: "empty" }, t("duty.log_empty"))]));
}

function renderSummary(summary, handed) {
  const lists = ["sheet-incidents", "sheet-orders", "sheet-follow-ups"];
  if (!summary) {
    $("summary-title").textContent = "";
    $("sheet-counts").replaceChildren();
    for (const id of lists) $(id).replaceChildren();
    return;
  }
  $("summary-title").textContent = t(handed ? "duty.summary_handed" : "duty.summary_live", {
    since: fmtDateTime(summary.since), until: fmtDateTime(summary.until),
  });
  const count = (key, n, alarm = false) => el("div", { className: alarm && n ? "duty-count alarm" : "duty-count" },
    el("span", { className: "duty-count-value" }, String(n)), el("span", { className: "duty-count-label" }, t(key)));
  $("sheet-counts").replaceChildren(
    count("duty.count_open_incidents", summary.open_incidents, true),
    count("duty.count_open_orders", summary.open_orders),
    count("duty.count_follow_ups", summary.follow_ups_due),
    count("duty.count_alarms", summary.alarms),
    count("duty.count_calls", summary.calls),
  );
  const more = (shown, total) => (total > shown ? [el("li", { className: "muted" }, t("duty.more", { n: total - shown }))] : []);
  const none = (list) => (list.length ? [] : [el("li", { className: "empty" }, t("duty.none"))]);
  const age = (line) => (handed ? line.age_s : serverNow() - line.opened_at);
  $("incidents-count").textContent = `(${summary.open_incidents})`;
  $("sheet-incidents").replaceChildren(...summary.incidents.map((i) => el("li", { dataset: { incidentId: i.incident_id } },
    el("a", { href: `/console#incident=${encodeURIComponent(i.incident_id)}` }, i.incident_id), " ",
    label("alarm", i.alarm_type), " · ", label("state", i.state), " · ",
    t("duty.age", { age: fmtDuration(age(i)) }), i.drill ? el("span", { className: "tag" }, t("duty.drill")) : null)),
  ...none(summary.incidents), ...more(summary.incidents.length, summary.open_incidents));
  $("orders-count").textContent = `(${summary.open_orders})`;
  $("sheet-orders").replaceChildren(...summary.orders.map((o) => el("li", { dataset: { orderId: o.order_id } },
    o.order_id, " ", itemName(o.item_id), " · ", label("duty.order_state", o.state), " · ", fmtDateTime(o.start))),
  ...none(summary.orders), ...more(summary.orders.length, summary.open_orders));
  $("follow-ups-count").textContent = `(${summary.follow_ups_due})`;
  $("sheet-follow-ups").replaceChildren(...summary.follow_ups.map((f) => el("li", { dataset: { followUpId: f.follow_up_id } },
    f.follow_up_id, " ", label("duty.follow_up_kind", f.kind), " ", f.subject_id, " · ",
    t("duty.due", { at: fmtDateTime(f.due) }))),
  ...none(summary.follow_ups), ...more(summary.follow_ups.length, summary.follow_ups_due));
}

function renderHistory() {
  $("history-count").textContent = `(${shifts.length})`;
  $("history-empty").hidden = shifts.length > 0;
  $("history-list").replaceChildren(...shifts.map((s) => {
    const handed = s.state !== "on_duty";
    const ack = s.acknowledged
      ? t("duty.acknowledged_by", { name: who(s.taken_over_by, s.taken_over_by_name) })
      : handed ? t("duty.not_acknowledged") : t("duty.state.on_duty");
    return el("li", { className: handed && !s.acknowledged ? "shift unacknowledged" : "shift", dataset: { shiftId: s.shift_id } },
      el("button", { type: "button", className: "shift-open", onclick: () => pick(s) },
        el("strong", {}, `${fmtDateTime(s.started_at)} ${label("duty.kind", s.kind)}`), " ",
        scopeName(s.scope), " · ", who(s.operator, s.operator_name)),
      el("span", { className: "shift-ack" }, ack, s.disputed ? el("span", { className: "tag disputed" }, t("duty.disputed_tag")) : null));
  }));
}

function pick(shift) {
  picked = shift;
  render();
  $("duty-sheet").scrollIntoView({ block: "start" });
}

function fillKinds() {
  for (const id of ["start-kind", "takeover-kind"]) {
    const select = $(id);
    const chosen = select.value;
    select.replaceChildren(
      el("option", { value: "" }, t("duty.kind_auto")),
      el("option", { value: "day" }, t("duty.kind.day")),
      el("option", { value: "night" }, t("duty.kind.night")),
    );
    select.value = chosen;
  }
}

function showConnection() {
  paintConnection($("conn-status"), connection, Boolean(session.current));
}

// -- the forms ----------------------------------------------------------------------------------------

function bindForms() {
  $("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("/api/duty/start", { kind: $("start-kind").value || null }, $("duty-start"));
  });
  $("log-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("log-text").value.trim();
    if (!text) return;
    if (await act("/api/duty/log", { text }, $("log-add"))) $("log-text").value = "";
  });
  $("handover-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await act("/api/duty/handover", { words: $("handover-words").value }, $("duty-handover"))) {
      $("handover-words").value = "";
    }
  });
  $("takeover-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { words: $("takeover-words").value, kind: $("takeover-kind").value || null };
    if (await act("/api/duty/take-over", body, $("duty-take-over"))) $("takeover-words").value = "";
  });
  $("duty-scope").addEventListener("change", () => {
    scope = $("duty-scope").value;
    picked = null;
    refresh();
  });
  $("history-days").addEventListener("change", () => refresh());
  $("sheet-back").addEventListener("click", () => {
    picked = null;
    render();
  });
  $("sheet-print").addEventListener("click", () => window.print());
}

// -- the session --------------------------------------------------------------------------------------

function start() {
  $("login-view").hidden = true;
  $("duty-view").hidden = false;
  menu.show();
  feed.start();
  loadItems().then(render);
  refresh();
}

function showLogin(reasonKey) {
  feed.stop();
  duty = null;
  shifts = [];
  picked = null;
  scope = null;
  $("duty-view").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  connection = { state: "offline", info: {} };
  showConnection();
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  fillKinds();
  onLanguageChange(() => {
    fillKinds();
    menu.relabel();
    showConnection();
    render();
  });
  bindStaffLogin(session, start);
  bindForms();
  session.onEnd = showLogin;
  setInterval(() => {
    if (session.expired()) session.end("login.expired");
    else render();
  }, SLOW_REFRESH_MS / 3);
  setInterval(refresh, SLOW_REFRESH_MS);
  if (session.current) start();
  else showLogin(null);
}

init();
