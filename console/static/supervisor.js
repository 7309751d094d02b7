// Anxin supervisor view: today's answer times, the open load, who is on duty, and the alarms nobody
// acknowledged in time. The figures come from GET /api/kpis and GET /api/escalations; the /ws/console feed
// says when they changed (re-read at most every REFRESH_MS), and a slow timer covers the turn of the day.
//
// Beside the alarm figures, the hotline's calls of the day (f.calls_today of GET /api/kpis): offered, answered
// within the target (and the share of those offered), the median and 90th percentile time to answer, abandoned
// in the queue, missed, transferred, and the operators' outbound calls. A server without the figures hides the card.
//
// The view is for supervisors and admins (SUPERVISOR_ROLES, as the API admits them). Anyone else who opens it
// is told so, with the way to the console, and the page reads nothing: no figures, no live feed.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, groupText, loadConfig, serverNow, throttle } from "./common.js";
import { ConsoleFeed, paintConnection } from "./feed.js";
import {
  bindLanguageSelect, fmtClock, fmtDuration, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu } from "./me.js";
import { beep, listenForUnlock } from "./sound.js";

const REFRESH_MS = 400;
const SLOW_REFRESH_MS = 30_000;
const RELEVANT = /^(incident|offer|assignment|responder\.duty|devices\.|call\.)/;

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
let figures = null;
let waiting = [];
let known = new Set(); // escalations already seen (a new one beeps)
let unknownAlerts = []; // alarms from unregistered devices, one alert per interval (GET /api/escalations)
let knownUnknown = new Set(); // urgent ones already seen, by the start of their interval
let primed = false; // the first answer after a login only fills `known`
let connection = { state: "offline", info: {} };
let live = false; // the feed runs (only for a role the view is for)

const feed = new ConsoleFeed({
  token: () => session.token,
  onSnapshot: () => refresh(),
  onEntry: (entry) => {
    $("conn-status").dataset.seq = String(entry.seq);
    if (RELEVANT.test(entry.kind)) refreshSoon();
  },
  onState: (state, info) => {
    connection = { state, info };
    showConnection();
  },
  onRefused: () => session.api("GET", "/api/kpis").catch(() => {}),
});

async function refresh() {
  if (!session.current || !live) return;
  try {
    const [kpis, escalations] = await Promise.all([
      session.api("GET", "/api/kpis"), session.api("GET", "/api/escalations"),
    ]);
    if (!session.current || !live) return; // logged out, or shown the door, meanwhile
    figures = kpis;
    waiting = escalations.incidents;
    unknownAlerts = escalations.unknown_devices || [];
    const fresh = unknownAlerts.some((a) => a.urgent && !knownUnknown.has(a.since));
    if (primed && (waiting.some((i) => !known.has(i.incident_id)) || fresh)) beep({ times: 2, hz: 740 });
    known = new Set(waiting.map((i) => i.incident_id));
    knownUnknown = new Set(unknownAlerts.filter((a) => a.urgent).map((a) => a.since));
    primed = true;
    $("kpi-updated").textContent = t("kpi.updated", { time: fmtTime(serverNow()) });
    render();
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) await roleChanged();
    if (live && !(error instanceof ApiError && error.status === 401)) $("kpi-updated").textContent = errorText(error);
  }
}

/** Refused: an admin may have changed the person's role since the login. Reads who they are now (the header's
 * paint then shows the view their role allows). */
async function roleChanged() {
  try {
    session.remember(await session.api("GET", "/api/me"));
    menu.relabel();
  } catch (_) {
    // a 401 has ended the session; anything else: the next refresh tries again
  }
}
const refreshSoon = throttle(refresh, REFRESH_MS);

function percent(part, whole) {
  return whole ? t("kpi.percent", { n: Math.round((100 * part) / whole) }) : "—";
}

function render() {
  if (!figures) return;
  const f = figures;
  $("kpi-answered-60").textContent = String(f.answered_within_60s);
  $("kpi-answered-60-sub").textContent = t("kpi.of_alarms", { n: f.alarms_today, pct: percent(f.answered_within_60s, f.alarms_today) });
  $("kpi-answered-180").textContent = String(f.answered_within_180s);
  $("kpi-answered-180-sub").textContent = t("kpi.of_alarms", { n: f.alarms_today, pct: percent(f.answered_within_180s, f.alarms_today) });
  $("kpi-open").textContent = String(f.open_incidents);
  $("kpi-open-sub").textContent = t("kpi.open_detail", { urgent: f.open_urgent, manual: f.needs_manual });
  $("kpi-on-duty").textContent = String(f.responders_on_duty);
  $("kpi-on-duty-sub").textContent = t("kpi.busy", { n: f.responders_busy });
  $("kpi-escalations").textContent = String(f.escalations_waiting);
  $("kpi-escalations-sub").textContent = f.answer_median_s === null
    ? t("kpi.no_median") : t("kpi.median", { s: f.answer_median_s });
  document.querySelector('.kpi[data-kpi="escalations"]').classList.toggle("alarm", f.escalations_waiting > 0);
  $("escalations-body").replaceChildren(...waiting.map((i) => el("tr", {
    className: `incident prio-${i.priority}`, dataset: { incidentId: i.incident_id },
  },
  el("td", {}, el("span", { className: "clock clock-late", dataset: { opened: i.opened_at } })),
  el("td", { className: "col-priority" }, t("priority.short", { n: i.priority })),
  el("td", {}, label("alarm", i.alarm_type)),
  el("td", {}, i.elder_name || groupText(i)
    || (i.caller ? t("elder.unknown_caller", { caller: i.caller }) : t("elder.unknown"))),
  el("td", {}, i.address || i.place || "—"),
  el("td", {}, i.community ? i.community.split("/").pop() : "—"),
  el("td", {}, label("state", i.state)),
  el("td", {}, el("a", { href: `/console#incident=${encodeURIComponent(i.incident_id)}` }, t("escalations.open"))))));
  renderCalls(f.calls_today);
  renderUnknown();
  $("escalations-count").textContent = waiting.length ? `(${waiting.length})` : "";
  $("escalations-empty").hidden = waiting.length > 0;
  $("escalations").hidden = waiting.length === 0;
  tick();
}

const seconds = (value) => (value === null || value === undefined ? "—" : fmtDuration(value));

/** The calls card: hidden until the server reports calls_today. */
function renderCalls(calls) {
  $("calls-card").hidden = !calls;
  if (!calls) return;
  const put = (name, value, sub) => {
    $(`kpi-calls-${name}`).textContent = value;
    $(`kpi-calls-${name}-sub`).textContent = sub || "";
  };
  put("offered", String(calls.offered), t("kpi.calls_answered_sub", { n: calls.answered }));
  $("kpi-calls-within-label").textContent = t("kpi.calls_within", { s: Math.round(calls.target_s) });
  put("within", String(calls.answered_within_target),
    t("kpi.calls_share", { pct: percent(calls.answered_within_target, calls.offered) }));
  put("answer_time", seconds(calls.answer_median_s), t("kpi.calls_p90", { s: seconds(calls.answer_p90_s) }));
  put("abandoned", String(calls.abandoned), t("kpi.calls_abandoned_sub"));
  put("missed", String(calls.missed), t("kpi.calls_missed_sub"));
  put("transferred", String(calls.transferred), t("kpi.calls_transferred_sub"));
  put("outbound", String(calls.outbound), t("kpi.calls_outbound_sub"));
  // callers who gave up or were never answered: someone should call them back
  document.querySelector('.kpi[data-kpi="calls_abandoned"]').classList.toggle("alarm", calls.abandoned > 0);
  document.querySelector('.kpi[data-kpi="calls_missed"]').classList.toggle("alarm", calls.missed > 0);
}

/** Alarms from devices nobody registered: which types how often, which accounts (a sample), over which interval.
 * No incident is opened for them; a supervisor decides (register the device, call the centre that owns it). */
function renderUnknown() {
  $("unknown-panel").hidden = unknownAlerts.length === 0;
  $("unknown-count").textContent = unknownAlerts.length ? `(${unknownAlerts.length})` : "";
  $("unknown-list").replaceChildren(...unknownAlerts.map((a) => {
    const types = Object.entries(a.alarm_types).map(([type, n]) => `${label("alarm", type)} × ${n}`).join("、");
    const devices = a.devices.slice(0, 8).join(", ") + (a.devices.length > 8 ? " …" : "");
    return el("li", { className: a.urgent ? "unknown urgent" : "unknown" },
      el("strong", {}, t("unknown.alarms", { n: a.alarms })), " ", types,
      el("div", { className: "muted" }, t(a.closed ? "unknown.between" : "unknown.since", {
        from: fmtTime(a.since), to: a.until ? fmtTime(a.until) : "",
      }), " · ", t("unknown.devices", { n: a.distinct + a.more }), devices ? ` · ${devices}` : ""));
  }));
}

function tick() {
  for (const clock of document.querySelectorAll("#escalations-body .clock")) {
    clock.textContent = fmtClock(serverNow() - Number(clock.dataset.opened));
  }
  if (session.expired()) session.end("login.expired");
}

function showConnection() {
  paintConnection($("conn-status"), connection, Boolean(session.current));
}

function start() {
  $("login-view").hidden = true;
  menu.show(); // paints the header, then showFor(role)
}

/** The figures for a supervisor or an admin; for anyone else a plain word that this view is not theirs. */
function showFor(role) {
  if (!session.current) return;
  const allowed = SUPERVISOR_ROLES.has(role);
  $("supervisor-view").hidden = !allowed;
  $("supervisor-denied").hidden = allowed;
  $("conn-status").hidden = !allowed;
  $("supervisor-denied-text").textContent = allowed ? "" : t("supervisor.denied", { role: label("role", role) });
  if (allowed && !live) {
    live = true;
    feed.start();
  } else if (!allowed && live) {
    live = false;
    feed.stop();
    forget();
  }
}

/** Nothing read for the last person stays in the page. */
function forget() {
  figures = null;
  waiting = [];
  known = new Set();
  primed = false;
  $("escalations-body").replaceChildren();
  $("calls-card").hidden = true;
  for (const node of document.querySelectorAll(".kpi-value, .kpi-sub, #kpi-updated")) node.textContent = "";
}

function showLogin(reasonKey) {
  feed.stop();
  live = false;
  forget();
  $("supervisor-view").hidden = true;
  $("supervisor-denied").hidden = true;
  $("conn-status").hidden = false;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  connection = { state: "offline", info: {} };
  showConnection();
}

async function init() {
  listenForUnlock();
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    showConnection();
    render();
    if (figures) $("kpi-updated").textContent = t("kpi.updated", { time: fmtTime(serverNow()) });
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  setInterval(tick, 1000);
  setInterval(refresh, SLOW_REFRESH_MS);
  if (session.current) start();
  else showLogin(null);
}

init();
