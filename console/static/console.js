// Anxin operator console: login, the live queue, hotline calls (calls.js), incidents opened by hand
// (newincident.js), and the incident panel (detail.js) with the elder's record and the map (context.js).
//
// How it stays current
//   The page keeps one map incident_id -> IncidentView. The feed (feed.js) first delivers a snapshot, which
//   replaces the map, then journal entries. An entry naming an incident only marks that incident stale;
//   stale incidents are re-fetched from GET /api/incidents/{id}, at most once per animation frame and never
//   twice at the same time, so a burst of entries costs one request per incident. After a dropped
//   connection the feed resumes from the last sequence number and the server replays what was missed.
//
// Rules
//   1. The server decides. The buttons are those of the incident's `actions`; every refusal is shown in the
//      operator's language from its code.
//   2. Data is never written as HTML: every text goes through el() / textContent.
//   3. Clocks run on server time (common.js).
//   4. Every visible string comes from the catalogue (i18n.js); people show by name, never by id.
"use strict";

import {
  $, ApiError, STAFF_SESSION, Session, actorWords, el, groupText, loadConfig, perFrame, serverNow, throttle,
} from "./common.js";
import { createCalls, shortNumber } from "./calls.js";
import { createContext } from "./context.js";
import { createDetail } from "./detail.js";
import { forgetTelephony, watchTelephony } from "./dial.js";
import { isOpen } from "./dialogs.js";
import { ConsoleFeed } from "./feed.js";
import {
  bindLanguageSelect, fmtClock, fmtDuration, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";
import { bindQueueKeys } from "./keys.js";
import { bindStaffLogin } from "./login.js";
import { bindAccountMenu } from "./me.js";
import { createNewIncident } from "./newincident.js";
import { explain } from "./reasons.js";
import { beep, listenForUnlock } from "./sound.js";

const REFETCH_RETRY_MS = 2000;
const URGENT_PRIORITY = 2; // P1 and P2 alarms beep
const ACTIVE_ASSIGNMENT = new Set(["offered", "accepted", "en_route", "on_scene"]);
const RESPONDERS_EVERY_MS = 5000; // the responder list is re-read at most this often

const WORKING = new Set(["accepted", "en_route"]); // the caregiver said yes and is on the way: "途中"

// One column (a tablet in portrait, a phone; console.css has the same width): an open incident takes the
// screen instead of the queue, with a way back to it; the call pop-up stays above.
const ONE_COLUMN = window.matchMedia("(max-width: 1100px)");

/** The caregiver reported done and the operator has not decided yet (resolve, hand over, send again). */
const awaitingDecision = (v) => Boolean(v.proposal) && !v.assignments.some((a) => ACTIVE_ASSIGNMENT.has(a.state));

// The queue's filters: which open incidents each shows.
const FILTERS = {
  all: () => true,
  waiting: (v) => !v.acknowledged_at,
  decide: awaitingDecision,
  offered: (v) => v.assignments.some((a) => a.state === "offered"),
  en_route: (v) => v.assignments.some((a) => WORKING.has(a.state)),
  on_scene: (v) => v.state === "on_scene" && !awaitingDecision(v),
  manual: (v) => v.needs_manual,
  mine: (v) => Boolean(session.current) && v.acknowledged_by === `${session.current.role}:${session.current.username}`,
};

// The alarms a person raises (the call's classify bar, the new-incident form, 改类型): one list for the three.
const PERSON_ALARMS = ["fall", "medical", "sos", "fire", "inactivity", "call"];
for (const select of document.querySelectorAll("select[data-alarm-types]")) {
  select.append(...PERSON_ALARMS.map((type) => el("option", { value: type, dataset: { i18n: `alarm.${type}` } })));
}

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session); // the header's person: name, scope, password, log out

const app = {
  config: { answer_target_s: 60, position_stale_s: 1800, map_tiles: null },
  incidents: new Map(), // incident_id -> IncidentView
  responders: new Map(), // responder_id -> responder view (clinics too)
  calls: new Map(), // call_id -> call view (GET /api/calls/{id})
  selectedId: null, // the incident open in the panel
  cursorId: null, // the queue row the keyboard is on
  filter: "all", // the queue's filter (FILTERS)
  busy: false, // an action is in flight
  stale: new Set(),
  fetching: new Set(),
  staleAgain: new Set(),
  popCallId: null, // the call shown in the pop-up
};

const scheduleRender = perFrame(render);

const detail = createDetail({
  app, session, putIncident, render: scheduleRender, responderName, elderText, callerOf, awaitingDecision,
  searching: () => refreshResponders(), backlogPlace,
});
const context = createContext({ app, session, responderName, render: scheduleRender });
const calls = createCalls({
  app, session, render: scheduleRender, select, responderName, notice: (items) => detail.notice(items),
});
const newIncident = createNewIncident({ app, session, putIncident, select, notice: (text) => detail.notice(text) });

const feed = new ConsoleFeed({
  token: () => session.token,
  onSnapshot: snapshot,
  onEntry: applyEntry,
  onState: showConnection,
  onRefused: () => session.api("GET", "/api/incidents?open=true&limit=1").catch(() => {}),
});

// -- session -------------------------------------------------------------------------------------------

function showLogin(reasonKey) {
  forgetTelephony();
  feed.stop();
  for (const map of [app.incidents, app.responders]) map.clear();
  calls.clear();
  app.selectedId = null;
  app.cursorId = null;
  if ($("new-incident").open) $("new-incident").close();
  renderEmpty(); // nothing of the last session stays in the page, not even hidden
  $("console-view").hidden = true;
  menu.hide();
  $("new-incident-button").hidden = true;
  $("calls-jump").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  showConnection("offline", {});
  document.title = t("console.title");
}

function start() {
  $("login-view").hidden = true;
  $("console-view").hidden = false;
  $("new-incident-button").hidden = false;
  $("calls-jump").hidden = false;
  menu.show();
  watchTelephony(session);
  feed.start();
  render();
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
  calls.snapshot(message.calls || []);
  showConnection(connection.state, connection.info);
  loadUnclosed();
  // a snapshot holds at most so many of each list (most urgent first): the rest is paged in from the API
  const truncated = message.truncated || [];
  if (truncated.includes("responders")) refreshResponders();
  if (truncated.includes("incidents")) loadOpen();
  openFromHash();
  render();
}

function applyEntry(entry) {
  $("conn-status").dataset.seq = String(entry.seq);
  if (entry.incident_id) markStale(entry.incident_id);
  const p = entry.payload || {};
  if (entry.kind.startsWith("call.")) calls.entry(entry);
  else if (entry.kind === "incident.opened") {
    if (p.priority <= URGENT_PRIORITY && !p.technical) beep({ times: p.priority === 1 ? 3 : 2 });
  } else if (entry.kind === "registry.responder") refreshResponders();
  else updateResponder(entry.kind, p, entry.ts);
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

// The open incidents past the snapshot's bound (the snapshot brings the most urgent ones).
async function loadOpen() {
  try {
    const answer = await session.api("GET", "/api/incidents?open=true&limit=5000");
    for (const view of answer.incidents) {
      if (!app.incidents.has(view.incident_id)) app.incidents.set(view.incident_id, view);
    }
    scheduleRender();
  } catch (_) {
    // the snapshot's incidents stay
  }
}

// Resolved and cancelled incidents are not in the snapshot but still wait for "close"; a recent test call's is
// shown besides (see recentTest).
async function loadUnclosed() {
  try {
    const answer = await session.api("GET", "/api/incidents?limit=200");
    for (const view of answer.incidents) {
      const waits = view.state === "resolved" || view.state === "cancelled" || recentTest(view);
      if (waits && !app.incidents.has(view.incident_id)) {
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

/** A device's test call (registry page) closes at once: kept a while in the closing list, marked 测试, so the
 * operator sees the test alarm arrived. */
const TEST_SHOWN_S = 3600;
const recentTest = (view) => view.test && view.state === "closed" && serverNow() - view.updated_at < TEST_SHOWN_S;

function putIncident(view) {
  if (view.state === "closed" && !recentTest(view) && view.incident_id !== app.selectedId) {
    app.incidents.delete(view.incident_id);
  } else {
    app.incidents.set(view.incident_id, view);
  }
  scheduleRender();
}

// -- names ------------------------------------------------------------------------------------------------

function responderName(id) {
  const responder = app.responders.get(id);
  return responder ? responder.name : id;
}

const CALLER_NOTE = /^caller (\S+)/;

/** The number of a caller nobody knows: the incident's own (`caller`), else from the hotline call, or the note
 * of an incident opened by hand (views from an older server). */
function callerOf(view) {
  if (view.caller) return view.caller;
  if (view.elder_id) return null;
  const fromCall = calls.callerOf(view);
  if (fromCall) return fromCall;
  const first = view.notes.length ? CALLER_NOTE.exec(view.notes[0].text) : null;
  return first ? first[1] : null;
}

function elderText(view) {
  if (view.elder_name) return view.elder_name;
  if (view.group) return groupText(view);
  const caller = callerOf(view);
  return caller ? t("elder.unknown_caller", { caller }) : t("elder.unknown");
}

/** The queue's narrow column: the name, or the unknown caller's number cut short ("☎ 139…5678"). */
function elderShort(view) {
  if (view.elder_name) return view.elder_name;
  if (view.group) return groupText(view);
  const caller = callerOf(view);
  return caller ? t("elder.caller_short", { caller: shortNumber(caller) }) : t("elder.unknown");
}

/** Where: the elder's address, else how the incident was placed. */
function placeText(view) {
  if (view.address && (view.location === "home" || view.location === "reported" || !view.place)) return view.address;
  if (view.place && view.location === "map") return t("place.nearby", { place: view.place }); // a point, not the building
  return view.place || label("location", view.location);
}

// -- rendering ----------------------------------------------------------------------------------------------

function render() {
  if (!session.current) return;
  renderQueue();
  renderClosing();
  calls.render();
  detail.render(selected());
  context.render(selected());
  renderSummary();
  tick();
}

function renderEmpty() {
  renderQueue();
  renderClosing();
  calls.render();
  detail.render(null);
  context.render(null);
  $("responder-summary").textContent = "";
}

const selected = () => (app.selectedId ? app.incidents.get(app.selectedId) || null : null);
const byUrgency = (a, b) => a.priority - b.priority || a.opened_at - b.opened_at;
const openViews = () => [...app.incidents.values()].filter((v) => v.open).sort(byUrgency);
const shownViews = () => openViews().filter(FILTERS[app.filter]);

function assignmentText(view) {
  if (view.state === "escalated") {
    // handed over: the service, and still whoever was sent besides (on scene, on the way, declined) or that
    // nobody is coming and the operator must act
    const parts = [t("queue.escalated_to", { service: view.escalated_to || "—" })];
    const last = view.assignments.length ? view.assignments[view.assignments.length - 1] : null;
    const active = view.assignments.filter((a) => ACTIVE_ASSIGNMENT.has(a.state));
    for (const a of active.length ? active : last ? [last] : []) {
      parts.push(`${a.responder_name || responderName(a.responder_id)} ${label("assignment", a.state)}`);
    }
    if (view.needs_manual) parts.push(t("queue.needs_manual"));
    return parts.join(" · ");
  }
  if (awaitingDecision(view)) return t("queue.done_by", { who: actorWords(view.proposal.actor, view.proposal.actor_name) });
  const active = view.assignments.filter((a) => ACTIVE_ASSIGNMENT.has(a.state));
  if (active.length) {
    // an offer kept ringing past its time (nobody else to ask) says so: the operator may call them
    return active.map((a) => `${a.responder_name || responderName(a.responder_id)} · ${label("assignment", a.state)}`
      + (a.held && a.state === "offered" ? ` · ${t("assignment.held", { n: a.held })}` : ""))
      .join(t("list.separator"));
  }
  if (view.needs_manual && view.waiting) return t("queue.backlog", { n: backlogPlace(view) });
  return view.needs_manual ? t("queue.needs_manual") : "—";
}

/** Where a waiting incident stands in the backlog (1: the next free responder who may go is offered it; 0: it
 * is not waiting). */
function backlogPlace(view) {
  return openViews().filter((v) => v.needs_manual && v.waiting).indexOf(view) + 1;
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
    const place = backlogPlace(view); // moves as others leave the backlog
    if (!shown || shown.view !== view || shown.selected !== selectedNow || shown.cursor !== cursor
      || shown.caller !== caller || shown.place !== place) {
      row.className = rowClasses(view, selectedNow, cursor);
      Object.assign(row.dataset, { incidentId: view.incident_id, state: view.state, priority: view.priority });
      row.setAttribute("aria-selected", String(selectedNow));
      row.replaceChildren(...cells(view));
      painted.set(row, { view, selected: selectedNow, cursor, caller, place });
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
  if (view.test) classes.push("test-call");
  if (view.needs_manual) classes.push("needs-manual");
  if (view.supervisor_alerted) classes.push("alerted");
  if (view.acknowledged_at) classes.push("acknowledged");
  if (awaitingDecision(view)) classes.push("awaiting");
  return classes.join(" ");
}

// One line an incident: every cell is cut short with an ellipsis and carries its full text as a tooltip.
function cell(className, text, ...extra) {
  return el("td", { className, title: text }, text, ...extra);
}

/** The state as the queue names it: "待决定" after a caregiver's done, the caregiver's own step while one
 * is on the way ("已接单", "在途"; the 途中 filter shows exactly these), else the incident's state. */
function stateShort(view) {
  if (awaitingDecision(view)) return t("queue.awaiting_decision");
  const working = view.state === "assigned" ? view.assignments.find((a) => WORKING.has(a.state)) : null;
  return working ? label("assignment", working.state) : label("state_short", view.state);
}

/** What the caregiver said with their done, as a tooltip: the first words. */
function proposalWords(view) {
  const proposal = view.proposal;
  const who = actorWords(proposal.actor, proposal.actor_name);
  return proposal.text ? t("proposal.done_with", { who, text: proposal.text }) : t("proposal.done", { who });
}

function queueCells(view) {
  const where = placeText(view);
  const assigned = assignmentText(view);
  const awaiting = awaitingDecision(view);
  const elderCell = cell("col-elder", elderShort(view));
  elderCell.title = elderText(view);
  const assignedCell = cell("col-assignment", assigned);
  if (awaiting) assignedCell.title = proposalWords(view);
  return [
    el("td", { className: "col-clock" }, el("span", { className: "clock" })),
    el("td", { className: "col-priority", title: view.priority_reasons.map((r) => explain(r)).join("\n") },
      t("priority.short", { n: view.priority })),
    el("td", { className: "col-state", dataset: awaiting ? { words: proposalWords(view) } : {} },
      el("span", { className: "state-name" }, stateShort(view)), " ", el("span", { className: "state-clock" })),
    cell("col-type", label("alarm", view.alarm_type), view.drill ? el("span", { className: "tag" }, t("flag.drill")) : null,
      testTag(view)),
    elderCell,
    cell("col-address", where),
    assignedCell,
  ];
}

/** A device's test call (测试呼叫, from the registry page): marked, so nobody takes it for an alarm. */
function testTag(view) {
  return view.test ? el("span", { className: "tag tag-test" }, t("flag.test")) : null;
}

function closingCells(view) {
  const lastNote = view.notes.length ? view.notes[view.notes.length - 1].text : null;
  return [
    el("td", { className: "col-state" }, label("state", view.state)),
    el("td", { className: "col-type" }, label("alarm", view.alarm_type), testTag(view)),
    el("td", { className: "col-elder" }, elderText(view)),
    el("td", { className: "col-outcome" }, explain(view.outcome || lastNote, responderName) || "—"),
    el("td", { className: "col-time" }, fmtTime(view.updated_at)),
  ];
}

function renderQueue() {
  const open = openViews();
  const shown = open.filter(FILTERS[app.filter]);
  if (app.cursorId && !shown.some((v) => v.incident_id === app.cursorId)) app.cursorId = null;
  syncRows($("queue-body"), shown, queueCells);
  $("queue-empty").hidden = shown.length > 0;
  $("queue-empty").textContent = open.length ? t("queue.empty_filter") : t("queue.empty");
  $("queue-count").textContent = open.length ? `(${open.length})` : "";
  for (const button of $("queue-filters").querySelectorAll("button[data-filter]")) {
    const name = button.dataset.filter;
    const n = name === "all" ? open.length : open.filter(FILTERS[name]).length;
    button.querySelector(".n").textContent = n ? String(n) : "";
    button.setAttribute("aria-pressed", String(name === app.filter));
  }
  renderTitle(open);
}

// The window title counts what waits for someone: alarms nobody acknowledged, and calls ringing or answered
// and not classified yet ("(3·2☎) 安心 · 接警台"), so a call is not missed from another tab either.
function renderTitle(open) {
  const unanswered = open.filter((v) => !v.acknowledged_at).length;
  const waiting = calls.waitingCount();
  const counts = [unanswered ? String(unanswered) : null, waiting ? t("console.title_calls", { n: waiting }) : null]
    .filter(Boolean);
  document.title = counts.length ? `(${counts.join("·")}) ${t("console.title")}` : t("console.title");
}

function renderClosing() {
  const done = [...app.incidents.values()]
    .filter((v) => v.state === "resolved" || v.state === "cancelled" || recentTest(v))
    .sort((a, b) => b.updated_at - a.updated_at);
  syncRows($("closing-body"), done, closingCells);
  $("closing-count").textContent = done.length ? `(${done.length})` : "";
  $("closing-empty").hidden = done.length > 0;
}

function renderSummary() {
  const people = [...app.responders.values()].filter((r) => r.kind !== "clinic");
  const onDuty = people.filter((r) => r.on_duty).length;
  $("responder-summary").textContent = people.length
    ? t("console.on_duty", { n: onDuty, total: people.length }) : "";
}

// -- selection, clocks ------------------------------------------------------------------------------------------

function select(id) {
  if (id === app.selectedId) return;
  const previous = selected();
  if (previous && previous.state === "closed" && !recentTest(previous)) app.incidents.delete(previous.incident_id);
  const left = app.selectedId;
  app.selectedId = id;
  if (id && !app.incidents.has(id)) markStale(id); // just opened, or closed and gone from the page
  const view = id ? app.incidents.get(id) : null;
  if (view && view.open) app.cursorId = id;
  detail.reset();
  render();
  if (ONE_COLUMN.matches) {
    if (id) window.scrollTo(0, 0); // the panel took the screen: from its top
    else if (left) showRow(left); // back in the queue: where the operator left it
  }
}

/** Brings a queue row into view (after the panel gave the screen back to the queue). */
function showRow(id) {
  const row = [...$("queue-body").rows].find((r) => r.dataset.incidentId === id);
  if (!row) return;
  row.focus({ preventScroll: true });
  row.scrollIntoView({ block: "center" });
}

function openFromHash() {
  const match = /^#incident=(.+)$/.exec(location.hash);
  if (match && app.incidents.has(decodeURIComponent(match[1]))) select(decodeURIComponent(match[1]));
}

// The clock runs from the alarm for as long as the incident is open; until an operator acknowledges it, its
// colour changes at half the answer target (30 s by default) and at the target (60 s). Beside the state, the
// time in that state ("on scene 23 min").
function clockState(view) {
  const target = view.answer_deadline ? view.answer_deadline - view.opened_at : app.config.answer_target_s;
  const answered = view.acknowledged_at !== null && view.acknowledged_at !== undefined;
  const end = view.open ? serverNow() : view.closed_at || view.updated_at;
  const elapsed = end - view.opened_at;
  const waited = (answered ? view.acknowledged_at : serverNow()) - view.opened_at;
  let level = "ok";
  if (waited >= target) level = "late";
  else if (waited >= target / 2) level = "warn";
  return { elapsed, waited, answered, level };
}

function paintClock(node, row, view) {
  const { elapsed, waited, answered, level } = clockState(view);
  node.textContent = fmtClock(elapsed);
  node.title = answered
    ? t("clock.answered_in", { time: fmtClock(waited), by: view.acknowledged_by_name || "—" })
    : t("clock.waiting");
  for (const target of [node, row]) {
    if (!target) continue;
    for (const name of ["ok", "warn", "late"]) target.classList.toggle(`clock-${name}`, !answered && level === name);
    target.classList.toggle("clock-answered", answered);
    target.dataset.clock = answered ? "answered" : level;
  }
}

function paintStateClock(node, view) {
  const since = view.state_since || view.opened_at;
  node.textContent = fmtDuration(serverNow() - since);
  const words = node.parentElement.dataset.words;
  node.parentElement.title = words
    || t("queue.state_since", { state: label("state", view.state), time: fmtTime(since) });
}

function tick() {
  if (!session.current) return;
  if (session.expired()) {
    session.end("login.expired");
    return;
  }
  for (const row of $("queue-body").rows) {
    const view = app.incidents.get(row.dataset.incidentId);
    if (!view) continue;
    paintClock(row.querySelector(".clock"), row, view);
    paintStateClock(row.querySelector(".state-clock"), view);
  }
  const view = selected();
  const clock = $("detail-clock");
  if (view && clock) paintClock(clock, null, view);
  const stateClock = $("detail-state-clock");
  if (view && stateClock) stateClock.textContent = fmtDuration(serverNow() - (view.state_since || view.opened_at));
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
    calls.relabel();
    menu.relabel();
    showConnection(connection.state, connection.info);
    render();
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  for (const id of ["queue-body", "closing-body"]) $(id).addEventListener("click", rowClicked);
  $("detail-back").addEventListener("click", () => select(null));
  $("calls-jump").addEventListener("click", () => {
    if (!ONE_COLUMN.matches || !app.selectedId) return; // calls.js scrolls to the list
    select(null); // the list is under the queue, which an open incident hides on one column
    $("calls-panel").scrollIntoView({ block: "start" });
  });
  $("queue-filters").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-filter]");
    if (!button) return;
    app.filter = button.dataset.filter;
    render();
  });
  window.addEventListener("hashchange", openFromHash);
  bindQueueKeys({
    queue: () => shownViews().map((v) => v.incident_id),
    unanswered: (id) => Boolean(app.incidents.get(id) && !app.incidents.get(id).acknowledged_at),
    cursor: () => app.cursorId || app.selectedId,
    moveCursor,
    open: select,
    acknowledge: (id) => detail.acknowledge(id),
    dispatch: () => detail.act("dispatch"),
    search: () => detail.focusSearch(),
    newIncident: () => newIncident.open(),
    escape: () => (detail.formOpen() ? detail.closeForm() : select(null)),
    active: () => Boolean(session.current) && !isOpen(),
  });
  setInterval(tick, 500);
  if (session.current) start();
  else showLogin(null);
}

init();
