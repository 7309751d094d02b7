// Anxin service desk (/services): the service orders in the reader's part of the network, the follow-ups
// (回访) due today and overdue (or tomorrow's, or every open one, to call ahead), and for supervisors the complaints and the caregivers' evaluations.
//
// How it stays current
//   The lists come from GET /api/service-orders, /api/follow-ups?due=today, /api/complaints and
//   /api/evaluations. The console's stream (/ws/console, feed.js) carries the service.*, vouchers.* and
//   follow_up.* entries in the reader's reach: each one has the lists read again (at most every REFRESH_MS).
//   A slow timer covers the turn of the day (today's orders first, today's follow-ups).
//
// What an operator does here
//   A new order (orderdialog.js, shared with the console's calls); per order the actions its state allows:
//   schedule, reschedule, assign a caregiver, check in / check out / nobody home on the caregiver's behalf,
//   confirm, cancel with a reason. A follow-up call is recorded: reached or not, satisfaction 1-5 (required
//   when reached), a complaint in the elder's words, a note.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, serverNow, throttle } from "./common.js";
import { forgetTelephony, phoneLink, watchTelephony } from "./dial.js";
import { ConsoleFeed, paintConnection } from "./feed.js";
import {
  bindLanguageSelect, fmtDateTime, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
  translate,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu } from "./me.js";
import { orderDialog, windowFields } from "./orderdialog.js";
import { itemName, yuan, zoned } from "./servicewords.js";

const REFRESH_MS = 500;
const SLOW_REFRESH_MS = 60_000;
const ORDER_LIMIT = 500;
/** The states of 待处理: still to do, and delivered ones waiting for their confirmation. */
const TO_DO = ["requested", "scheduled", "assigned", "started", "delivered"];
const RELEVANT = /^(service\.|vouchers\.|follow_up\.)/;

/** What may be done to an order in each state (dispatch.machines ORDER_TRANSITIONS; staff may do them all). */
const ACTIONS = {
  requested: ["schedule", "cancel"],
  scheduled: ["assign", "reschedule", "cancel"],
  assigned: ["start", "no_show", "assign", "reschedule", "cancel"],
  started: ["deliver", "no_show", "cancel"],
  delivered: ["confirm"],
};

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: () => showFor() });
const desk = {
  config: null,
  services: [], // the catalogue
  orders: [],
  followUps: [],
  complaints: [],
  evaluations: [],
  responders: [],
  live: false,
  updated: null,
};
let connection = { state: "offline", info: {} };
let scrolledTo = null; // the #order=... the list was last scrolled to

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
  onRefused: () => session.api("GET", "/api/me").catch(() => {}),
});

const supervisor = () => Boolean(session.current && SUPERVISOR_ROLES.has(session.current.role));
const item = (id) => desk.services.find((i) => i.item_id === id) || null;
const today = () => zoned(serverNow(), desk.config.timezone).date;
const dayOf = (epoch) => zoned(epoch, desk.config.timezone).date;

// -- reading --------------------------------------------------------------------------------------------

async function refresh() {
  if (!session.current || !desk.live) return;
  try {
    const state = $("orders-state").value;
    // 待处理 asks for each state still to do (a long history of finished orders never crowds them out)
    const states = state === "open" ? TO_DO : [state];
    const asks = [
      Promise.all(states.map((one) => session.api("GET",
        `/api/service-orders?limit=${ORDER_LIMIT}${one ? `&state=${one}` : ""}`))),
      session.api("GET", `/api/follow-ups${followUpsDue()}`),
    ];
    if (supervisor()) asks.push(session.api("GET", "/api/complaints"), session.api("GET", "/api/evaluations"));
    const [orders, followUps, complaints, evaluations] = await Promise.all(asks);
    if (!session.current || !desk.live) return;
    desk.orders = orders.flatMap((answer) => answer.orders);
    desk.followUps = followUps.follow_ups;
    desk.complaints = complaints ? complaints.complaints : [];
    desk.evaluations = evaluations ? evaluations.evaluations : [];
    desk.updated = serverNow();
    $("orders-error").textContent = "";
    render();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) $("orders-error").textContent = errorText(error);
  }
}
const refreshSoon = throttle(refresh, REFRESH_MS);

/** The follow-ups asked for: due by the end of today (overdue ones with them), of tomorrow, or all still open. */
function followUpsDue() {
  const due = $("followups-due").value;
  if (due === "today") return "?due=today";
  if (due === "tomorrow") return `?due=${zoned(serverNow() + 86_400, desk.config.timezone).date}`;
  return "";
}

// -- the orders -----------------------------------------------------------------------------------------

/** Today's first (by start), then the open ones to come, then the rest newest first. */
function ordered(orders) {
  const day = today();
  const rank = (o) => (dayOf(o.start) === day ? 0 : o.open && o.start > serverNow() ? 1 : 2);
  return [...orders].sort((a, b) => rank(a) - rank(b) || (rank(a) === 2 ? b.start - a.start : a.start - b.start));
}

function shown() {
  const state = $("orders-state").value;
  const words = $("orders-elder").value.trim().toLowerCase();
  return ordered(desk.orders.filter((o) => (state !== "open" || TO_DO.includes(o.state))
    && (!words || `${o.elder_name || ""} ${o.elder_id} ${o.address || ""}`.toLowerCase().includes(words))));
}

function windowText(order) {
  const day = dayOf(order.start);
  const date = day === today() ? t("order.today") : day.slice(5);
  const zone = desk.config.timezone;
  return t("order.window", { date, from: zoned(order.start, zone).time, to: zoned(order.end, zone).time });
}

function orderCard(order) {
  const what = item(order.item_id);
  const chosen = location.hash === `#order=${encodeURIComponent(order.order_id)}`;
  return el("li", {
    className: `order state-${order.state}${chosen ? " chosen" : ""}${dayOf(order.start) === today() ? " today" : ""}`,
    dataset: { orderId: order.order_id, state: order.state },
  },
  el("div", { className: "order-head" },
    el("span", { className: `chip order-state state-${order.state}` }, label("orderstate", order.state)),
    el("strong", { className: "order-item" }, itemName(what) || order.item_id),
    el("span", { className: "order-window" }, windowText(order)),
    el("span", { className: "order-id muted" }, order.order_id)),
  el("div", { className: "order-body" },
    el("span", { className: "order-elder" }, order.elder_name || order.elder_id),
    el("span", { className: "muted" }, order.address || ""),
    order.place ? el("span", { className: "order-place" }, t("order.place_is", { place: order.place })) : null),
  el("div", { className: "order-facts muted" },
    el("span", { className: "order-price" }, t("order.priced", { mode: label("entitlement", order.mode), price: yuan(order.price_fen) })),
    el("span", {}, order.responder_name ? t("order.caregiver_is", { name: order.responder_name }) : t("order.nobody")),
    el("span", {}, label("ordersource", order.source)),
    order.started_at ? el("span", {}, t("order.started_at", { time: fmtDateTime(order.started_at) })) : null,
    order.delivered_at ? el("span", {}, t("order.delivered_at", { time: fmtDateTime(order.delivered_at) })) : null),
  order.note ? el("p", { className: "order-note" }, t("order.note_is", { note: order.note })) : null,
  order.reason ? el("p", { className: "order-note" }, t("order.reason_is", { reason: order.reason })) : null,
  el("div", { className: "order-actions" }, ...(ACTIONS[order.state] || []).map((action) => el("button", {
    type: "button", dataset: { action }, onclick: () => act(order, action),
  }, t(order.state === "assigned" && action === "assign" ? "orderaction.reassign" : `orderaction.${action}`)))));
}

function renderOrders() {
  const list = shown();
  $("orders").replaceChildren(...list.map(orderCard));
  $("orders-empty").hidden = list.length > 0;
  $("orders-count").textContent = list.length ? `(${list.length})` : "";
  $("orders-updated").textContent = desk.updated ? t("desk.updated", { time: fmtTime(desk.updated) }) : "";
  const chosen = document.querySelector("#orders li.chosen");
  if (chosen && scrolledTo !== location.hash) {
    scrolledTo = location.hash; // once per order asked for (#order=...), not at every refresh
    chosen.scrollIntoView({ block: "center" });
  }
}

// -- acting on an order -------------------------------------------------------------------------------------

let actWindow = null;

/** The dialog of one action: the window (schedule, reschedule), the caregiver (assign), a reason or note. */
async function act(order, action) {
  if (!actWindow) {
    actWindow = windowFields("act");
    $("act-window").replaceChildren(actWindow.node);
    translate(actWindow.node);
  }
  const text = { cancel: "order.reason", reschedule: "order.reason_optional", deliver: "order.done_note", no_show: "order.note" }[action];
  $("act-title").textContent = t(`orderaction.${order.state === "assigned" && action === "assign" ? "reassign" : action}`);
  $("act-what").textContent = t("order.what", {
    item: itemName(item(order.item_id)) || order.item_id, elder: order.elder_name || order.elder_id, window: windowText(order),
  });
  $("act-window").hidden = !["schedule", "reschedule"].includes(action);
  $("act-assign").hidden = action !== "assign";
  $("act-text-part").hidden = !text;
  $("act-text-label").textContent = text ? t(text) : "";
  $("act-text").value = "";
  $("act-error").textContent = "";
  $("act-submit").textContent = t(`orderaction.${action}`);
  actWindow.set(order.start, order.end, desk.config.timezone);
  if (action === "assign") await paintResponders(order);
  const dialog = $("act-dialog");
  const form = $("act-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {};
    if (["schedule", "reschedule"].includes(action)) {
      const span = actWindow.value();
      if (span.error) {
        $("act-error").textContent = t(span.error);
        return;
      }
      Object.assign(body, { start: span.start, end: span.end });
    }
    const words = $("act-text").value.trim();
    if (action === "cancel") {
      if (!words) {
        $("act-error").textContent = t("order.need_reason");
        $("act-text").focus();
        return;
      }
      body.reason = words;
    }
    if (action === "reschedule") body.reason = words;
    if (action === "deliver" || action === "no_show") body.note = words;
    if (action === "assign") {
      if (!$("act-responder").value) {
        $("act-error").textContent = t("order.need_caregiver");
        return;
      }
      body.responder_id = $("act-responder").value;
    }
    $("act-submit").disabled = true;
    try {
      await session.api("POST", `/api/service-orders/${encodeURIComponent(order.order_id)}/${action}`, body);
      dialog.close();
      refresh();
    } catch (error) {
      $("act-error").textContent = errorText(error);
    } finally {
      $("act-submit").disabled = false;
    }
  };
  $("act-back").onclick = () => dialog.close();
  dialog.showModal();
  (action === "assign" ? $("act-responder") : text ? $("act-text") : $("act-submit")).focus();
}

/** The caregivers on duty with the item's skill first; those off duty follow, marked (whether one may take a
 * visit while off duty is the server's rule: it says so when it refuses); those without the skill cannot go. */
async function paintResponders(order) {
  try {
    desk.responders = (await session.api("GET", "/api/responders")).responders;
  } catch (error) {
    $("act-error").textContent = errorText(error);
  }
  const skill = (item(order.item_id) || {}).skill || null;
  const people = desk.responders.filter((r) => r.kind !== "clinic");
  const able = (r) => !skill || r.skills.includes(skill);
  const rank = (r) => (able(r) ? (r.on_duty ? 0 : 1) : 2);
  people.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name, "zh-CN"));
  const why = (r) => (!able(r) ? t("order.lacks_skill", { skill: label("skill", skill) })
    : !r.on_duty ? t("order.off_duty") : r.available ? "" : t("order.busy"));
  $("act-responder").replaceChildren(
    el("option", { value: "" }, t("order.choose_caregiver")),
    ...people.map((r) => el("option", { value: r.responder_id, disabled: !able(r) },
      `${r.name} · ${label("kind", r.kind)}${why(r) ? ` · ${why(r)}` : ""}`)));
  if (order.responder_id) $("act-responder").value = "";
}

// -- follow-ups ---------------------------------------------------------------------------------------------

function followUpItem(f) {
  const overdue = dayOf(f.due) < today();
  const subject = f.kind === "service" ? desk.orders.find((o) => o.order_id === f.subject_id) : null;
  const day = dayOf(f.due);
  const when = overdue ? t("followup.overdue") : day === today() ? t("followup.due_today") : t("followup.due_later");
  return el("li", {
    className: `followup${overdue ? " overdue" : ""}`, dataset: { followUpId: f.follow_up_id, kind: f.kind },
  },
  el("div", { className: "order-head" },
    el("span", { className: `chip${overdue ? " late" : ""}` }, when),
    el("strong", {}, f.elder_name || f.elder_id),
    f.phone ? phoneLink(f.phone, { elderId: f.elder_id }) : null,
    el("span", { className: "muted" }, t("followup.due", { time: fmtDateTime(f.due) }))),
  el("div", { className: "order-facts muted" },
    el("span", {}, t(`followup.kind_${f.kind}`, {
      id: f.subject_id, item: subject ? itemName(item(subject.item_id)) : "",
    })),
    f.attempts ? el("span", {}, t("followup.attempts", { n: f.attempts })) : null),
  el("div", { className: "order-actions" },
    el("button", { type: "button", className: "primary followup-record", onclick: () => recordFollowUp(f) },
      t("followup.record"))));
}

function renderFollowUps() {
  const open = desk.followUps.filter((f) => f.open);
  $("followups").replaceChildren(...open.map(followUpItem));
  $("followups-empty").hidden = open.length > 0;
  $("followups-count").textContent = open.length ? `(${open.length})` : "";
}

function stars(value) {
  $("followup-stars").replaceChildren(...[1, 2, 3, 4, 5].map((n) => el("button", {
    type: "button", className: "star", role: "radio", "aria-checked": String(value === n),
    dataset: { n: String(n) }, title: t(`followup.score_${n}`),
    onclick: () => {
      stars(n);
      $("followup-error").textContent = "";
    },
  }, `${n} ${t(`followup.score_${n}`)}`)));
  $("followup-stars").dataset.value = value ? String(value) : "";
}

function recordFollowUp(f) {
  const dialog = $("followup-dialog");
  $("followup-who").textContent = t("followup.who", { name: f.elder_name || f.elder_id, phone: f.phone || "—" });
  $("followup-form").reset();
  $("followup-error").textContent = "";
  stars(null);
  const reached = () => $("followup-form").querySelector("input[name=reached]:checked").value === "yes";
  const paint = () => { $("followup-answers").disabled = !reached(); };
  for (const radio of $("followup-form").querySelectorAll("input[name=reached]")) radio.onchange = paint;
  paint();
  $("followup-form").onsubmit = async (event) => {
    event.preventDefault();
    const satisfaction = Number($("followup-stars").dataset.value) || null;
    const body = { reached: reached(), note: $("followup-note").value.trim() };
    if (body.reached) {
      if (!satisfaction) {
        $("followup-error").textContent = t("error.satisfaction_required");
        return;
      }
      body.satisfaction = satisfaction;
      body.complaint = $("followup-complaint").value.trim();
    }
    $("followup-submit").disabled = true;
    try {
      await session.api("POST", `/api/follow-ups/${encodeURIComponent(f.follow_up_id)}`, body);
      dialog.close();
      refresh();
    } catch (error) {
      $("followup-error").textContent = errorText(error);
    } finally {
      $("followup-submit").disabled = false;
    }
  };
  $("followup-back").onclick = () => dialog.close();
  dialog.showModal();
}

// -- the supervisors' part ----------------------------------------------------------------------------------

/** A supervisor's word on what was done about a complaint (POST /api/complaints/{id}/settle), once. */
function settleComplaint(c) {
  const dialog = $("complaint-dialog");
  $("complaint-form").reset();
  $("complaint-error").textContent = "";
  $("complaint-what").textContent = t("complaint.what", { name: c.elder_name || c.elder_id, text: c.text });
  $("complaint-form").onsubmit = async (event) => {
    event.preventDefault();
    const resolution = $("complaint-resolution").value.trim();
    if (!resolution) {
      $("complaint-error").textContent = t("error.resolution_required");
      return;
    }
    $("complaint-submit").disabled = true;
    try {
      await session.api("POST", `/api/complaints/${encodeURIComponent(c.complaint_id)}/settle`, { resolution });
      dialog.close();
      refresh();
    } catch (error) {
      $("complaint-error").textContent = errorText(error);
    } finally {
      $("complaint-submit").disabled = false;
    }
  };
  $("complaint-back").onclick = () => dialog.close();
  dialog.showModal();
}

function renderSupervision() {
  const allowed = supervisor();
  $("complaints-panel").hidden = !allowed;
  $("evaluations-panel").hidden = !allowed;
  if (!allowed) return;
  $("complaints").replaceChildren(...desk.complaints.map((c) => el("li", {
    className: "complaint", dataset: { complaintId: c.complaint_id },
  },
  el("div", { className: "order-head" },
    el("strong", {}, c.elder_name || c.elder_id),
    el("span", { className: "muted" }, fmtDateTime(c.raised_at)),
    c.satisfaction ? el("span", { className: "chip" }, t("complaint.satisfaction", { n: c.satisfaction })) : null),
  el("p", { className: "complaint-text" }, c.text),
  el("div", { className: "order-facts muted" },
    el("span", {}, t(`followup.kind_${c.kind}`, { id: c.subject_id, item: "" })),
    c.responder_names.length ? el("span", {}, t("complaint.caregivers", { names: c.responder_names.join(t("list.and")) })) : null),
  c.open
    ? el("div", { className: "order-actions" },
      el("button", { type: "button", className: "complaint-settle", onclick: () => settleComplaint(c) }, t("complaint.settle")))
    : el("p", { className: "complaint-resolution muted" },
      t("complaint.settled", { when: fmtDateTime(c.settled_at), text: c.resolution })))));
  const open = desk.complaints.filter((c) => c.open).length;
  $("complaints-empty").hidden = desk.complaints.length > 0;
  $("complaints-count").textContent = desk.complaints.length ? t("complaint.count", { open, n: desk.complaints.length }) : "";
  $("evaluations-body").replaceChildren(...desk.evaluations.map((e) => el("tr", { dataset: { responderId: e.responder_id } },
    el("td", {}, e.name),
    el("td", {}, e.mean.toFixed(2)),
    el("td", {}, String(e.count)))));
  $("evaluations-empty").hidden = desk.evaluations.length > 0;
  $("evaluations").hidden = desk.evaluations.length === 0;
}

// -- the page -----------------------------------------------------------------------------------------------

function render() {
  if (!session.current || !desk.config) return;
  renderOrders();
  renderFollowUps();
  renderSupervision();
}

function showConnection() {
  paintConnection($("conn-status"), connection, Boolean(session.current));
}

/** The catalogue, read once per login (it changes only with a restart): names and units of the items. */
async function loadServices() {
  try {
    desk.services = (await session.api("GET", "/api/services")).services;
    render();
  } catch (_) {
    // a 401 shows the login; anything else: the orders show their item ids until the next login
  }
}

function start() {
  if (!desk.services.length) loadServices();
  $("login-view").hidden = true;
  $("desk-view").hidden = false;
  $("new-order-button").hidden = false;
  menu.show();
  watchTelephony(session);
  if (!desk.live) {
    desk.live = true;
    feed.start();
  }
}

function showFor() {
  render();
}

function showLogin(reasonKey) {
  forgetTelephony();
  feed.stop();
  desk.live = false;
  Object.assign(desk, { orders: [], followUps: [], complaints: [], evaluations: [], responders: [], updated: null });
  for (const id of ["orders", "followups", "complaints", "evaluations-body"]) $(id).replaceChildren();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("desk-view").hidden = true;
  $("new-order-button").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  connection = { state: "offline", info: {} };
  showConnection();
}

async function newOrder() {
  try {
    const order = await orderDialog(session);
    if (order) {
      history.replaceState(null, "", `#order=${encodeURIComponent(order.order_id)}`);
      refresh();
    }
  } catch (error) {
    $("orders-error").textContent = errorText(error);
  }
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  desk.config = config;
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    showConnection();
    render();
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  $("new-order-button").addEventListener("click", newOrder);
  $("orders-state").addEventListener("change", refresh);
  $("followups-due").addEventListener("change", refresh);
  $("orders-elder").addEventListener("input", renderOrders);
  window.addEventListener("hashchange", renderOrders);
  setInterval(refresh, SLOW_REFRESH_MS);
  setInterval(() => { if (session.expired()) session.end("login.expired"); }, 1000);
  if (session.current) start();
  else showLogin(null);
}

init();
