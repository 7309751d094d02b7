// Anxin operator console: login, the live queue, hotline calls, and the incident panel (detail.js) with the
// elder's record and the map (context.js).
//
// How it stays current
//   The page keeps one map incident_id -> IncidentView. The feed (feed.js) first delivers a snapshot, which
//   replaces the map, then journal entries. An entry naming an incident only marks that incident stale;
//   stale incidents are re-fetched from GET /api/incidents/{id}, at most once per animation frame and never
//   twice at the same time, so a burst of entries costs one request per incident. After a dropped
//   connection the feed resumes from the last sequence number and the server replays what was missed.
//
// Rules
//   1. The server decides. Buttons are greyed out only where the incident state table makes the action
//      impossible; every refusal is shown with the server's detail.
//   2. Data is never written as HTML: every text goes through el() / textContent.
//   3. Clocks run on server time (common.js).
//   4. Every visible string comes from the catalogue (i18n.js).
"use strict";

import { $, ApiError, Session, el, errorText, loadConfig, perFrame, serverNow, throttle } from "./common.js";
import { createContext } from "./context.js";
import { createDetail } from "./detail.js";
import { ConsoleFeed } from "./feed.js";
import {
  bindLanguageSelect, fmtClock, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindQueueKeys } from "./keys.js";
import { bindStaffLogin } from "./login.js";
import { explain } from "./reasons.js";
import { renderNoRecord, renderRecord } from "./record.js";
import { beep, listenForUnlock } from "./sound.js";

const REFETCH_RETRY_MS = 2000;
const CALL_KEEP_S = 60; // an ended call stays in the panel this long
const URGENT_PRIORITY = 2; // P1 and P2 alarms beep
const ACTIVE_ASSIGNMENT = new Set(["offered", "accepted", "en_route", "on_scene"]);
const RESPONDERS_EVERY_MS = 5000; // the responder list is re-read at most this often

const session = new Session("anxin.console.session");

const app = {
  config: { answer_target_s: 60, position_stale_s: 1800, map_tiles: null },
  incidents: new Map(), // incident_id -> IncidentView
  responders: new Map(), // responder_id -> responder view (clinics too)
  calls: new Map(), // call_id -> {call_id, caller, line, elder_id, state, started, ended}
  selectedId: null, // the incident open in the panel
  cursorId: null, // the queue row the keyboard is on
  busy: false, // an action is in flight
  stale: new Set(),
  fetching: new Set(),
  staleAgain: new Set(),
  popCallId: null, // the call shown in the pop-up
};

const scheduleRender = perFrame(render);

const detail = createDetail({
  app, session, putIncident, render: scheduleRender, responderName, elderText,
  searching: () => refreshResponders(),
});
const context = createContext({ app, session, responderName, render: scheduleRender });

const feed = new ConsoleFeed({
  token: () => session.token,
  onSnapshot: snapshot,
  onEntry: applyEntry,
  onState: showConnection,
  onRefused: () => session.api("GET", "/api/incidents?open=true&limit=1").catch(() => {}),
});

// -- session -------------------------------------------------------------------------------------------

function showLogin(reasonKey) {
  feed.stop();
  for (const map of [app.incidents, app.calls, app.responders]) map.clear();
  app.selectedId = null;
  app.cursorId = null;
  app.popCallId = null;
  renderEmpty(); // nothing of the last session stays in the page, not even hidden
  $("console-view").hidden = true;
  $("logout-button").hidden = true;
  $("login-view").hidden = false;
  $("user-info").textContent = "";
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  showConnection("offline", {});
  document.title = t("console.title");
}

function start() {
  $("login-view").hidden = true;
  $("console-view").hidden = false;
  $("logout-button").hidden = false;
  showUser();
  feed.start();
  render();
}

function showUser() {
  const who = session.current;
  $("user-info").textContent = who ? t("console.user", { name: who.username, role: label("role", who.role) }) : "";
}

// -- the feed --------------------------------------------------------------------------------------------

let connection = { state: "offline", info: {} };

function showConnection(state, info) {
  connection = { state, info };
  const status = $("conn-status");
  status.dataset.state = state;
  if (feed.lastSeq !== null) status.dataset.seq = String(feed.lastSeq);
  if (state === "online") status.textContent = t("conn.online");
  else if (state === "connecting") status.textContent = t("conn.connecting");
  else if (!session.current) status.textContent = t("conn.offline");
  else {
    const key = info.lagging ? "conn.lagging_retry" : "conn.lost_retry";
    status.textContent = t(key, { s: ((info.delayMs || 0) / 1000).toFixed(1) });
  }
  status.title = feed.lastSeq === null ? "" : t("conn.last_seq", { seq: feed.lastSeq });
}

function snapshot(message) {
  app.incidents = new Map(message.incidents.map((view) => [view.incident_id, view]));
  app.responders = new Map((message.responders || []).map((r) => [r.responder_id, r]));
  app.calls = new Map((message.calls || []).map((c) => [c.call_id, {
    call_id: c.call_id, caller: c.caller, line: c.line, elder_id: c.elder_id, elder_name: c.elder_name,
    state: c.state, started: c.started_at, ended: null,
  }]));
  const ringing = [...app.calls.values()].find((c) => c.state === "ringing");
  if (ringing) popCall(ringing);
  showConnection(connection.state, connection.info);
  loadUnclosed();
  openFromHash();
  render();
}

function applyEntry(entry) {
  $("conn-status").dataset.seq = String(entry.seq);
  if (entry.incident_id) markStale(entry.incident_id);
  const p = entry.payload || {};
  switch (entry.kind) {
    case "incident.opened":
      if (p.priority <= URGENT_PRIORITY && !p.technical) beep({ times: p.priority === 1 ? 3 : 2 });
      break;
    case "call.ringing": {
      const call = {
        call_id: p.call_id, caller: p.caller, line: p.line, elder_id: p.elder_id,
        state: "ringing", started: entry.ts, ended: null,
      };
      app.calls.set(p.call_id, call);
      popCall(call);
      beep({ times: 1, hz: 660 });
      break;
    }
    case "call.answered":
    case "call.ended": {
      const call = app.calls.get(p.call_id);
      if (call) {
        call.state = entry.kind === "call.answered" ? "answered" : "ended";
        if (call.state === "ended") call.ended = entry.ts;
      }
      break;
    }
    case "registry.responder":
      refreshResponders();
      break;
    default:
      updateResponder(entry.kind, p, entry.ts);
  }
  scheduleRender();
}

// The full list (GET /api/responders): after a registry change, and when an operator starts searching it
// (the server knows whose position went stale).
const refreshResponders = throttle(async () => {
  try {
    const answer = await session.api("GET", "/api/responders");
    app.responders = new Map(answer.responders.map((r) => [r.responder_id, r]));
    scheduleRender();
  } catch (_) {
    // the snapshot's list stays
  }
}, RESPONDERS_EVERY_MS);

/** Keeps the responders' duty, position and claim in step with the entries that change them. */
function updateResponder(kind, p, ts) {
  const responder = p.responder_id ? app.responders.get(p.responder_id) : null;
  if (!responder) return;
  if (kind === "responder.duty") responder.on_duty = Boolean(p.on);
  if ((kind === "responder.duty" || kind === "responder.position") && p.lat !== undefined && p.lat !== null) {
    Object.assign(responder, { lat: p.lat, lon: p.lon, pos_at: ts });
  }
  if (kind === "offer.made") responder.assignment_id = p.assignment_id;
  const released = ["offer.declined", "offer.expired", "offer.withdrawn"].includes(kind)
    || (kind === "assignment.status" && p.status === "done");
  if (released && responder.assignment_id === p.assignment_id) responder.assignment_id = null;
  const fresh = responder.pos_at !== null && serverNow() - responder.pos_at < app.config.position_stale_s;
  responder.available = responder.on_duty && !responder.assignment_id && fresh;
}

// Resolved and cancelled incidents are not in the snapshot but still wait for "close".
async function loadUnclosed() {
  try {
    const answer = await session.api("GET", "/api/incidents?limit=200");
    for (const view of answer.incidents) {
      if ((view.state === "resolved" || view.state === "cancelled") && !app.incidents.has(view.incident_id)) {
        app.incidents.set(view.incident_id, view);
      }
    }
    scheduleRender();
  } catch (_) {
    // not essential
  }
}

// -- re-fetching stale incidents ---------------------------------------------------------------------------

function markStale(id) {
  app.stale.add(id);
  scheduleFetch();
}

const scheduleFetch = perFrame(() => {
  for (const id of app.stale) {
    app.stale.delete(id);
    if (app.fetching.has(id)) app.staleAgain.add(id);
    else fetchIncident(id);
  }
});

async function fetchIncident(id) {
  app.fetching.add(id);
  try {
    putIncident(await session.api("GET", `/api/incidents/${encodeURIComponent(id)}`));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      app.incidents.delete(id);
      scheduleRender();
    } else if (session.current && !(error instanceof ApiError && error.status === 401)) {
      setTimeout(() => session.current && markStale(id), REFETCH_RETRY_MS);
    }
  } finally {
    app.fetching.delete(id);
    if (app.staleAgain.delete(id)) markStale(id);
  }
}

function putIncident(view) {
  if (view.state === "closed" && view.incident_id !== app.selectedId) app.incidents.delete(view.incident_id);
  else app.incidents.set(view.incident_id, view);
  scheduleRender();
}

// -- names ------------------------------------------------------------------------------------------------

function responderName(id) {
  const responder = app.responders.get(id);
  return responder ? responder.name : id;
}

function callerOf(view) {
  const call = view.call_id ? app.calls.get(view.call_id) : null;
  return call ? call.caller : null;
}

function elderText(view) {
  if (view.elder_name) return view.elder_name;
  const caller = callerOf(view);
  return caller ? t("elder.unknown_caller", { caller }) : t("elder.unknown");
}

// -- rendering ----------------------------------------------------------------------------------------------

function render() {
  if (!session.current) return;
  renderQueue();
  renderClosing();
  renderCalls();
  renderCallPop();
  detail.render(selected());
  context.render(selected());
  renderSummary();
  tick();
}

function renderEmpty() {
  renderQueue();
  renderClosing();
  renderCalls();
  renderCallPop();
  detail.render(null);
  context.render(null);
  $("responder-summary").textContent = "";
}

const selected = () => (app.selectedId ? app.incidents.get(app.selectedId) || null : null);
const byUrgency = (a, b) => a.priority - b.priority || a.opened_at - b.opened_at;
const openViews = () => [...app.incidents.values()].filter((v) => v.open).sort(byUrgency);

function assignmentText(view) {
  if (view.state === "escalated") return t("queue.escalated_to", { service: view.escalated_to || "—" });
  const active = view.assignments.filter((a) => ACTIVE_ASSIGNMENT.has(a.state));
  if (active.length) {
    return active.map((a) => `${a.responder_name || a.responder_id} · ${label("assignment", a.state)}`)
      .join(t("list.separator"));
  }
  return view.needs_manual ? t("queue.needs_manual") : "—";
}

// Keeps a table body in step with a list of incidents, one row per incident, reusing each row: a row is
// refilled only when its incident view (or the selection, the cursor, the language) changed.
let painted = new WeakMap(); // row -> what it shows
function syncRows(tbody, views, cells) {
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.incidentId, row]));
  views.forEach((view, index) => {
    let row = existing.get(view.incident_id);
    existing.delete(view.incident_id);
    if (!row) row = el("tr", { tabIndex: -1 });
    const selectedNow = view.incident_id === app.selectedId;
    const cursor = view.incident_id === app.cursorId;
    const shown = painted.get(row);
    const caller = callerOf(view);
    if (!shown || shown.view !== view || shown.selected !== selectedNow || shown.cursor !== cursor
      || shown.caller !== caller) {
      row.className = rowClasses(view, selectedNow, cursor);
      Object.assign(row.dataset, { incidentId: view.incident_id, state: view.state, priority: view.priority });
      row.setAttribute("aria-selected", String(selectedNow));
      row.replaceChildren(...cells(view));
      painted.set(row, { view, selected: selectedNow, cursor, caller });
    }
    if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
  });
  for (const row of existing.values()) row.remove();
}

function rowClasses(view, selectedNow, cursor) {
  const classes = ["incident", `prio-${view.priority}`];
  if (selectedNow) classes.push("selected");
  if (cursor) classes.push("cursor");
  if (view.drill) classes.push("drill");
  if (view.needs_manual) classes.push("needs-manual");
  if (view.supervisor_alerted) classes.push("alerted");
  if (view.acknowledged_at) classes.push("acknowledged");
  return classes.join(" ");
}

function queueCells(view) {
  return [
    el("td", { className: "col-clock" }, el("span", { className: "clock" })),
    el("td", { className: "col-priority", title: view.priority_reasons.map((r) => explain(r)).join("\n") },
      t("priority.short", { n: view.priority })),
    el("td", { className: "col-state" }, label("state", view.state)),
    el("td", { className: "col-type" },
      label("alarm", view.alarm_type), view.drill ? el("span", { className: "tag" }, t("flag.drill")) : null),
    el("td", { className: "col-elder" }, elderText(view)),
    el("td", { className: "col-address", title: view.address || "" }, view.address || label("location", view.location)),
    el("td", { className: "col-community", title: view.community || "" },
      view.community ? view.community.split("/").pop() : "—"),
    el("td", { className: "col-assignment" }, assignmentText(view)),
  ];
}

function closingCells(view) {
  const lastNote = view.notes.length ? view.notes[view.notes.length - 1].text : null;
  return [
    el("td", { className: "col-state" }, label("state", view.state)),
    el("td", { className: "col-type" }, label("alarm", view.alarm_type)),
    el("td", { className: "col-elder" }, elderText(view)),
    el("td", { className: "col-outcome" }, explain(view.outcome || lastNote, responderName) || "—"),
    el("td", { className: "col-time" }, fmtTime(view.updated_at)),
  ];
}

function renderQueue() {
  const open = openViews();
  if (app.cursorId && !open.some((v) => v.incident_id === app.cursorId)) app.cursorId = null;
  syncRows($("queue-body"), open, queueCells);
  $("queue-empty").hidden = open.length > 0;
  $("queue-count").textContent = open.length ? `(${open.length})` : "";
  const unanswered = open.filter((v) => !v.acknowledged_at).length;
  document.title = unanswered ? `(${unanswered}) ${t("console.title")}` : t("console.title");
}

function renderClosing() {
  const done = [...app.incidents.values()]
    .filter((v) => v.state === "resolved" || v.state === "cancelled")
    .sort((a, b) => b.updated_at - a.updated_at);
  syncRows($("closing-body"), done, closingCells);
  $("closing-count").textContent = done.length ? `(${done.length})` : "";
  $("closing-empty").hidden = done.length > 0;
}

function incidentOfCall(call) {
  return [...app.incidents.values()].find((v) => v.call_id === call.call_id) || null;
}

function renderCalls() {
  const now = serverNow();
  for (const [id, call] of app.calls) {
    if (call.ended && now - call.ended > CALL_KEEP_S) app.calls.delete(id);
  }
  const calls = [...app.calls.values()].sort((a, b) => b.started - a.started);
  $("calls").replaceChildren(...calls.map((call) => {
    const incident = incidentOfCall(call);
    const name = call.elder_name || (incident && incident.elder_name);
    const who = call.elder_id ? name || call.elder_id : t("call.unknown_number");
    const classes = ["call", `call-${call.state}`];
    if (!call.elder_id) classes.push("call-unknown");
    return el("li", {
      className: classes.join(" "),
      dataset: { callId: call.call_id, state: call.state, incidentId: incident ? incident.incident_id : "" },
    },
    el("span", { className: "call-caller" }, call.caller),
    el("span", { className: "call-who" }, who),
    el("span", { className: "call-line" }, t("call.line", { line: call.line || "—" })),
    el("span", { className: "call-state" }, label("call", call.state)),
    el("span", { className: "call-time" }, fmtTime(call.started)));
  }));
  $("calls-empty").hidden = calls.length > 0;
}

function renderSummary() {
  const people = [...app.responders.values()].filter((r) => r.kind !== "clinic");
  const onDuty = people.filter((r) => r.on_duty).length;
  $("responder-summary").textContent = people.length
    ? t("console.on_duty", { n: onDuty, total: people.length }) : "";
}

// -- the hotline pop-up --------------------------------------------------------------------------------------

let popRecord = null; // {callId, record} of the caller shown

async function popCall(call) {
  app.popCallId = call.call_id;
  popRecord = null;
  renderCallPop();
  if (!call.elder_id) return;
  try {
    const record = await session.api("GET", `/api/elders/${encodeURIComponent(call.elder_id)}`);
    call.elder_name = record.name;
    if (app.popCallId === call.call_id) popRecord = { callId: call.call_id, record };
    scheduleRender();
  } catch (error) {
    if (app.popCallId === call.call_id) renderNoRecord($("call-pop-record"), errorText(error));
  }
}

function renderCallPop() {
  const call = app.popCallId ? app.calls.get(app.popCallId) : null;
  const pop = $("call-pop");
  pop.hidden = !call;
  if (!call) {
    for (const id of ["call-pop-caller", "call-pop-state", "call-pop-record"]) $(id).replaceChildren();
    $("call-pop-record").dataset.shown = "";
    return;
  }
  pop.dataset.callId = call.call_id;
  pop.dataset.state = call.state;
  $("call-pop-caller").textContent = call.caller;
  $("call-pop-state").textContent = label("call", call.state);
  const incident = incidentOfCall(call);
  $("call-pop-open").hidden = !incident;
  $("call-pop-open").dataset.incidentId = incident ? incident.incident_id : "";
  const box = $("call-pop-record");
  if (!call.elder_id) renderNoRecord(box, t("call.unknown_number"));
  else if (popRecord && popRecord.callId === call.call_id) {
    if (box.dataset.shown !== call.call_id) {
      renderRecord(box, popRecord.record, { compact: true, responderName });
      box.dataset.shown = call.call_id;
    }
  } else renderNoRecord(box, t("record.loading"));
}

function dismissCall() {
  app.popCallId = null;
  popRecord = null;
  renderCallPop();
}

// -- selection, clocks ------------------------------------------------------------------------------------------

function select(id) {
  if (id === app.selectedId) return;
  const previous = selected();
  if (previous && previous.state === "closed") app.incidents.delete(previous.incident_id);
  app.selectedId = id;
  const view = id ? app.incidents.get(id) : null;
  if (view && view.open) app.cursorId = id;
  detail.reset();
  render();
}

function openFromHash() {
  const match = /^#incident=(.+)$/.exec(location.hash);
  if (match && app.incidents.has(decodeURIComponent(match[1]))) select(decodeURIComponent(match[1]));
}

// The answer clock runs from the alarm until an operator acknowledges it, against the answer target; the
// colour changes at half the target (30 s by default) and at the target (60 s).
function clockState(view) {
  const target = view.answer_deadline ? view.answer_deadline - view.opened_at : app.config.answer_target_s;
  const answered = view.acknowledged_at !== null && view.acknowledged_at !== undefined;
  const elapsed = (answered ? view.acknowledged_at : serverNow()) - view.opened_at;
  let level = "ok";
  if (elapsed >= target) level = "late";
  else if (elapsed >= target / 2) level = "warn";
  return { elapsed, answered, level };
}

function paintClock(node, row, view) {
  const { elapsed, answered, level } = clockState(view);
  node.textContent = answered ? `✓ ${fmtClock(elapsed)}` : fmtClock(elapsed);
  node.title = answered ? t("clock.answered") : t("clock.waiting");
  for (const target of [node, row]) {
    if (!target) continue;
    for (const name of ["ok", "warn", "late"]) target.classList.toggle(`clock-${name}`, !answered && level === name);
    target.classList.toggle("clock-answered", answered);
    target.dataset.clock = answered ? "answered" : level;
  }
}

function tick() {
  if (!session.current) return;
  if (session.expired()) {
    session.end("login.expired");
    return;
  }
  for (const row of $("queue-body").rows) {
    const view = app.incidents.get(row.dataset.incidentId);
    if (view) paintClock(row.querySelector(".clock"), row, view);
  }
  const view = selected();
  const clock = $("detail-clock");
  if (view && clock) paintClock(clock, null, view);
}

// -- wiring ----------------------------------------------------------------------------------------------------

function moveCursor(id) {
  app.cursorId = id;
  renderQueue();
  const row = [...$("queue-body").rows].find((r) => r.dataset.incidentId === id);
  if (row) {
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
}

function rowClicked(event) {
  const row = event.target.closest("tr[data-incident-id]");
  if (row) select(row.dataset.incidentId);
}

async function init() {
  listenForUnlock();
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  app.config = { ...app.config, ...config };
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    painted = new WeakMap();
    detail.relabel();
    context.reset();
    $("call-pop-record").dataset.shown = "";
    showUser();
    showConnection(connection.state, connection.info);
    render();
  });
  bindStaffLogin(session, start);
  $("logout-button").addEventListener("click", () => session.end());
  session.onEnd = showLogin;
  for (const id of ["queue-body", "closing-body"]) $(id).addEventListener("click", rowClicked);
  $("calls").addEventListener("click", (event) => {
    const item = event.target.closest("li[data-incident-id]");
    if (item && item.dataset.incidentId) select(item.dataset.incidentId);
  });
  $("call-pop-open").addEventListener("click", (event) => select(event.target.dataset.incidentId));
  $("call-pop-dismiss").addEventListener("click", dismissCall);
  window.addEventListener("hashchange", openFromHash);
  bindQueueKeys({
    queue: () => openViews().map((v) => v.incident_id),
    unanswered: (id) => Boolean(app.incidents.get(id) && !app.incidents.get(id).acknowledged_at),
    cursor: () => app.cursorId || app.selectedId,
    moveCursor,
    open: select,
    acknowledge: (id) => detail.acknowledge(id),
    dispatch: () => detail.act("dispatch"),
    search: () => detail.focusSearch(),
    escape: () => (detail.formOpen() ? detail.closeForm() : select(null)),
    active: () => Boolean(session.current),
  });
  setInterval(tick, 500);
  if (session.current) start();
  else showLogin(null);
}

init();
