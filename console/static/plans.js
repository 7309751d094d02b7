// Anxin 五定 plans: standing plans of visits (fixed caregiver, time, place, item) and the visits they missed.
//
// Staff list the plans of their part of the network (GET /api/plans), make one (POST /api/plans: elder, item,
// caregiver, weekdays, local time, first and last day, place) and end one (POST /api/plans/{id}/end). A planned
// visit nobody checked in to is a task (GET /api/plan-tasks), settled here with an outcome and a note
// (POST /api/plan-tasks/{id}). The /ws/console feed says when plans or their orders changed (re-read at most
// every REFRESH_MS). The plans' orders themselves are ordinary service orders, handled on the service desk.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, serverNow, throttle } from "./common.js";
import { ConsoleFeed, paintConnection } from "./feed.js";
import {
  bindLanguageSelect, currentLanguage, fmtDateTime, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { bindAccountMenu } from "./me.js";

const REFRESH_MS = 500;
const SLOW_REFRESH_MS = 60_000;
const RELEVANT = /^(plan\.|service\.)/;
const STAFF_ROLES = new Set(["operator", "supervisor", "admin"]);
const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7];
const OUTCOMES = ["rescheduled", "cancelled", "elder_away", "visited", "other"];

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
let plans = [];
let tasks = [];
let items = new Map(); // item_id -> catalogue item
let caregivers = [];
let live = false;
let zone = "Asia/Shanghai";
let ending = null; // the plan the end dialog is about
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
  if (!session.current || !live) return;
  try {
    const filter = $("plans-filter").value;
    const query = filter ? `?active=${filter}` : "";
    const [planList, taskList] = await Promise.all([
      session.api("GET", `/api/plans${query}`), session.api("GET", "/api/plan-tasks"),
    ]);
    if (!session.current || !live) return;
    plans = planList.plans;
    tasks = taskList.tasks;
    $("plans-error").textContent = "";
    render();
  } catch (error) {
    if (live && !(error instanceof ApiError && error.status === 401)) $("plans-error").textContent = errorText(error);
  }
}
const refreshSoon = throttle(refresh, REFRESH_MS);

/** The menu and the caregivers, once per login (they change seldom). */
async function loadChoices() {
  const [services, responders] = await Promise.all([
    session.api("GET", "/api/services"), session.api("GET", "/api/responders"),
  ]);
  items = new Map(services.services.map((item) => [item.item_id, item]));
  caregivers = responders.responders.filter((r) => r.kind !== "clinic");
  fillChoices();
}

function itemName(itemId) {
  const item = items.get(itemId);
  if (!item) return itemId || "—";
  return currentLanguage() === "en" ? item.name_en : item.name_zh;
}

const weekdayWords = (days) =>
  days.length === 7 ? t("plans.every_day") : days.map((d) => label("weekday", d)).join(t("list.and"));

/** The weekdays checked in the dialog (Monday, Wednesday and Friday before anyone chose). */
function checkedDays() {
  const boxes = [...document.querySelectorAll('#plan-weekdays input[name="weekday"]')];
  return boxes.length ? boxes.filter((box) => box.checked).map((box) => Number(box.value)) : [1, 3, 5];
}

function fillChoices(days = checkedDays()) {
  const chosenItem = $("plan-item").value;
  $("plan-item").replaceChildren(...[...items.values()].map((item) => el("option", { value: item.item_id },
    t("plans.item_option", { name: itemName(item.item_id), minutes: item.minutes }))));
  if (chosenItem) $("plan-item").value = chosenItem;
  const chosen = $("plan-caregiver").value;
  $("plan-caregiver").replaceChildren(...caregivers.map((r) => el("option", { value: r.responder_id },
    `${r.name} · ${r.skills.map((s) => label("skill", s)).join(t("list.and"))}`)));
  if (chosen) $("plan-caregiver").value = chosen;
  $("plan-weekdays").replaceChildren(el("legend", {}, t("plans.weekdays")), ...WEEKDAYS.map((d) => el("label", {},
    el("input", { type: "checkbox", name: "weekday", value: String(d), checked: days.includes(d) }), " ",
    el("span", {}, label("weekday", d)))));
}

function render() {
  $("plans-body").replaceChildren(...plans.map((p) => el("tr", { dataset: { planId: p.plan_id } },
    el("td", {}, p.elder_name || p.elder_id),
    el("td", {}, itemName(p.item_id)),
    el("td", {}, p.responder_name || p.responder_id),
    el("td", {}, weekdayWords(p.weekdays), " ", t("plans.at_minutes", { at: p.at, minutes: p.minutes })),
    el("td", {}, p.last_day ? t("plans.from_to", { from: p.first_day, to: p.last_day })
      : t("plans.from", { from: p.first_day })),
    el("td", {}, p.place || t("plans.at_home")),
    el("td", {}, p.active ? t("plans.state_active") : t("plans.state_ended")),
    el("td", {}, p.state === "active"
      ? el("button", { type: "button", className: "danger plan-end", onclick: () => openEnd(p) }, t("plans.end"))
      : ""))));
  $("plans-count").textContent = plans.length ? `(${plans.length})` : "";
  $("plans-empty").hidden = plans.length > 0;
  $("plans").hidden = plans.length === 0;
  $("tasks-body").replaceChildren(...tasks.map(taskRow));
  $("tasks-count").textContent = tasks.length ? `(${tasks.length})` : "";
  $("tasks-empty").hidden = tasks.length > 0;
  $("tasks").hidden = tasks.length === 0;
}

function taskRow(task) {
  const outcome = el("select", { className: "task-outcome", "aria-label": t("plans.outcome") },
    ...OUTCOMES.map((o) => el("option", { value: o }, label("plan_outcome", o))));
  const note = el("input", { className: "task-note", maxLength: 2000, "aria-label": t("plans.note") });
  const error = el("span", { className: "error", role: "alert" });
  const settle = async (button) => {
    button.disabled = true;
    try {
      await session.api("POST", `/api/plan-tasks/${encodeURIComponent(task.task_id)}`,
        { outcome: outcome.value, note: note.value.trim() });
      notice("plans.settled", { elder: task.elder_name || task.elder_id });
      refresh();
    } catch (err) {
      error.textContent = errorText(err);
      button.disabled = false;
    }
  };
  return el("tr", { className: "plan-task", dataset: { taskId: task.task_id } },
    el("td", {}, t("plans.visit_window", { start: fmtDateTime(task.start), end: fmtTime(task.end) })),
    el("td", {}, task.elder_name || task.elder_id, task.phone ? el("div", { className: "muted" }, task.phone) : ""),
    el("td", {}, itemName(task.item_id)),
    el("td", {}, task.responder_name || "—"),
    el("td", {}, outcome),
    el("td", {}, note, error),
    el("td", {}, el("button", { type: "button", className: "primary task-settle",
      onclick: (event) => settle(event.currentTarget) }, t("plans.settle"))));
}

let said = null; // the notice shown: [key, params], said again in another language

function notice(key, params) {
  said = key ? [key, params] : null;
  $("plans-notice").textContent = key ? t(key, params) : "";
  $("plans-notice").hidden = !key;
}

// -- the local day in the centre's time zone ------------------------------------------------------------------

function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(serverNow() * 1000));
}

// -- making a plan ---------------------------------------------------------------------------------------------

let searchTimer = 0;
let found = new Map(); // elder_id -> elder, from the last search

function searchElders() {
  clearTimeout(searchTimer);
  const q = $("plan-elder").value.trim();
  const known = found.get(q);
  $("plan-elder-name").textContent = known ? `${known.name} · ${known.address || ""}` : "";
  if (known || q.length < 1) return;
  searchTimer = setTimeout(async () => {
    try {
      const answer = await session.api("GET", `/api/elders?q=${encodeURIComponent(q)}&limit=20`);
      found = new Map(answer.elders.map((e) => [e.elder_id, e]));
      $("plan-elders").replaceChildren(...answer.elders.map((e) => el("option", { value: e.elder_id },
        `${e.name} · ${e.phone || ""}`)));
    } catch (_) {
      // typed on: the next search tries again
    }
  }, 250);
}

function openNew() {
  $("plan-form").reset();
  $("plan-error").textContent = "";
  $("plan-elder-name").textContent = "";
  $("plan-first").value = today();
  fillChoices([1, 3, 5]);
  $("plan-dialog").showModal();
  $("plan-elder").focus();
}

async function submitPlan(event) {
  event.preventDefault();
  const weekdays = [...document.querySelectorAll('#plan-weekdays input[name="weekday"]:checked')]
    .map((box) => Number(box.value));
  const body = {
    elder_id: $("plan-elder").value.trim(),
    item_id: $("plan-item").value,
    responder_id: $("plan-caregiver").value,
    weekdays,
    at: $("plan-at").value,
    first_day: $("plan-first").value || null,
    last_day: $("plan-last").value || null,
    place: $("plan-place").value.trim(),
    note: $("plan-note").value.trim(),
  };
  if (!body.elder_id) {
    $("plan-error").textContent = t("plans.elder_required");
    return;
  }
  if (!weekdays.length) {
    $("plan-error").textContent = t("error.plan_weekdays");
    return;
  }
  $("plan-submit").disabled = true;
  try {
    const plan = await session.api("POST", "/api/plans", body);
    $("plan-dialog").close();
    notice("plans.created", { elder: plan.elder_name || plan.elder_id, n: plan.orders.length });
    refresh();
  } catch (error) {
    $("plan-error").textContent = errorText(error);
  } finally {
    $("plan-submit").disabled = false;
  }
}

// -- ending a plan --------------------------------------------------------------------------------------------

function openEnd(plan) {
  ending = plan;
  $("end-form").reset();
  $("end-error").textContent = "";
  $("end-title").textContent = t("plans.end_title", { elder: plan.elder_name || plan.elder_id, item: itemName(plan.item_id) });
  $("end-last").value = today();
  $("end-last").min = today();
  $("end-dialog").showModal();
}

async function submitEnd(event) {
  event.preventDefault();
  if (!ending) return;
  $("end-submit").disabled = true;
  try {
    await session.api("POST", `/api/plans/${encodeURIComponent(ending.plan_id)}/end`,
      { last_day: $("end-last").value || null, reason: $("end-reason").value.trim() });
    $("end-dialog").close();
    notice("plans.ended", { elder: ending.elder_name || ending.elder_id });
    ending = null;
    refresh();
  } catch (error) {
    $("end-error").textContent = errorText(error);
  } finally {
    $("end-submit").disabled = false;
  }
}

// -- the page -------------------------------------------------------------------------------------------------

function showConnection() {
  paintConnection($("conn-status"), connection, Boolean(session.current));
}

function start() {
  $("login-view").hidden = true;
  menu.show(); // paints the header, then showFor(role)
}

function showFor(role) {
  if (!session.current) return;
  const allowed = STAFF_ROLES.has(role);
  $("plans-view").hidden = !allowed;
  $("plans-denied").hidden = allowed;
  $("plans-denied-text").textContent = allowed ? "" : t("plans.denied", { role: label("role", role) });
  if (allowed && !live) {
    live = true;
    feed.start();
    loadChoices().then(refresh).catch((error) => {
      $("plans-error").textContent = errorText(error);
    });
  } else if (!allowed && live) {
    live = false;
    feed.stop();
    forget();
  }
}

/** Nothing read for the last person stays in the page. */
function forget() {
  plans = [];
  tasks = [];
  caregivers = [];
  found = new Map();
  $("plans-body").replaceChildren();
  $("tasks-body").replaceChildren();
  $("plan-elders").replaceChildren();
  notice(null);
}

function showLogin(reasonKey) {
  feed.stop();
  live = false;
  forget();
  $("plans-view").hidden = true;
  $("plans-denied").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  connection = { state: "offline", info: {} };
  showConnection();
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  zone = config.timezone;
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    showConnection();
    fillChoices();
    render();
    if (said) notice(...said);
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  $("plan-new").addEventListener("click", openNew);
  $("plan-form").addEventListener("submit", submitPlan);
  $("plan-cancel").addEventListener("click", () => $("plan-dialog").close());
  $("plan-elder").addEventListener("input", searchElders);
  $("end-form").addEventListener("submit", submitEnd);
  $("end-cancel").addEventListener("click", () => $("end-dialog").close());
  $("plans-filter").addEventListener("change", refresh);
  setInterval(refresh, SLOW_REFRESH_MS);
  setInterval(() => {
    if (session.expired()) session.end("login.expired");
  }, 1000);
  if (session.current) start();
  else showLogin(null);
}

init();
