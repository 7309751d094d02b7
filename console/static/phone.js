// Anxin caregiver phone page (/m): on and off duty, the position from the phone's GPS, the offer with a
// sound, a vibration and a countdown, one big button to accept and one to decline, then the job: the
// address and key notes (sent by the server only once accepted), how to get in, what the caller and the
// operator said (the notes shared with the caregiver, pushed again whenever one is added), one tap to call
// the elder or the centre, a navigation link and en route / on scene / done with a short note.
//
// The service orders assigned to the caregiver (today's first) are listed while no offer or job holds the
// screen (alarms first): elder, address, how to get in, item and time window; 到达签到 checks in at the door
// (POST start with the phone's position), 服务完成签退 checks out with a note of what was done (POST deliver),
// 无人在家 says nobody was home (POST no_show). The list is read over HTTP after every (re)connect, when the
// server says an order of theirs changed ({"type": "orders"}), when the page comes back to the screen and
// every ORDERS_EVERY_MS.
//
// The connection (/ws/caregiver) drops on a bicycle. Every (re)connect starts with a "hello" that carries
// the current offer or job, so the page rebuilds itself from it and never loses an offer; the back-off is
// short because an offer has a deadline.
"use strict";

import { $, ApiError, Session, actorWords, codeText, distanceM, el, errorText, loadConfig, serverNow } from "./common.js";
import {
  bindLanguageSelect, fmtDistance, fmtEta, fmtTime, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";
import { explain } from "./reasons.js";
import { itemName, zoned } from "./servicewords.js";
import { beep, listenForUnlock, unlockAudio, vibrate } from "./sound.js";

const BACKOFF_FIRST_MS = 300;
const BACKOFF_MAX_MS = 3000;
const RING_EVERY_MS = 5000;
const POSITION_EVERY_MS = 30_000;
const POSITION_MOVE_M = 25;
// a mainland mobile (13763042274) or a landline with its area code (0596-1234567), in a free text
const PHONE_NUMBER = /((?:\+?86[- ]?)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8})/;
const NEXT = { accepted: ["en_route", "on_scene"], en_route: ["on_scene"], on_scene: ["done"] };
const ORDERS_EVERY_MS = 60_000;
const ORDER_STATES = ["assigned", "started"]; // what the caregiver still has to do

const session = new Session("anxin.phone.session");

const phone = {
  socket: null,
  opened: false,
  backoffMs: BACKOFF_FIRST_MS,
  timer: 0,
  me: null, // the responder view from hello
  offer: null,
  job: null,
  position: null, // {lat, lon, accuracy, at}
  sent: null, // the last position sent {lat, lon, at}
  geoError: null,
  nextId: 1,
  pending: new Map(), // command id -> what it was for
  ringTimer: 0,
  message: null, // [key, params] of the last notice
  orders: [], // the service orders assigned to me, still to do
  services: [], // the catalogue (item names)
  timeZone: "Asia/Shanghai",
  asking: null, // the order whose 无人在家 waits for a second tap
  ordersBusy: false,
};

// A family member (role "family") answers only their own elder's alarms, when no caregiver is free: no duty, no
// position, no service orders; the offer says whom it is about and where, the buttons say 我去 / 去不了.
const isFamily = () => Boolean(session.current && session.current.role === "family");

// -- the connection --------------------------------------------------------------------------------------

function connect() {
  if (!session.current) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws/caregiver?token=${encodeURIComponent(session.token)}`);
  phone.socket = socket;
  phone.opened = false;
  showConnection("connecting");
  socket.onopen = () => {
    phone.opened = true;
    phone.backoffMs = BACKOFF_FIRST_MS;
    showConnection("online");
  };
  socket.onmessage = (event) => {
    if (socket !== phone.socket) return;
    try {
      receive(JSON.parse(event.data));
    } catch (_) {
      // not JSON: nothing to do with it
    }
  };
  socket.onclose = () => {
    if (socket !== phone.socket) return;
    phone.socket = null;
    if (!session.current) return;
    if (session.expired()) {
      session.end("login.expired");
      return;
    }
    showConnection("offline");
    clearTimeout(phone.timer);
    phone.timer = setTimeout(connect, phone.backoffMs);
    phone.backoffMs = Math.min(phone.backoffMs * 2, BACKOFF_MAX_MS);
  };
}

function send(message, purpose) {
  if (!phone.socket || phone.socket.readyState !== WebSocket.OPEN) {
    showError(t("phone.not_connected"));
    return false;
  }
  const id = phone.nextId++;
  phone.pending.set(id, purpose || message.type);
  phone.socket.send(JSON.stringify({ ...message, id }));
  return true;
}

function receive(message) {
  switch (message.type) {
    case "orders":
      loadOrders();
      break;
    case "hello":
      loadOrders();
      phone.me = message.responder;
      if (message.offer || message.job) forgetClosed();
      setOffer(message.offer);
      setJob(message.job);
      sendPosition(true);
      break;
    case "offer":
      phone.message = null; // a new offer: what was said before is about something else
      setOffer(message);
      break;
    case "job":
      forgetClosed();
      setOffer(null);
      if (message.state === "done") {
        setJob(null);
        notice("phone.job_finished");
      } else setJob(message);
      break;
    case "offer_closed":
      if (phone.offer && phone.offer.assignment_id === message.assignment_id) setOffer(null);
      if (phone.job && phone.job.assignment_id === message.assignment_id) phone.job = null;
      // a family member is told a caregiver took it, not "a colleague"
      if (message.reason === "taken" && isFamily()) notice("phone.family_closed_taken");
      else if (message.reason !== "declined") notice(`phone.closed_${message.reason}`);
      break;
    case "ok":
      settled(message.ref, null);
      break;
    case "error":
      settled(message.ref, codeText(message.code, message.params, message.detail, 409));
      break;
    default:
      break;
  }
  render();
}

// A notice that an offer closed ("expired, given to someone else") is about the last offer: a job makes
// it stale (and a new offer any notice).
const CLOSED_NOTICES = new Set(["phone.closed_expired", "phone.closed_withdrawn"]);

function forgetClosed() {
  if (phone.message && CLOSED_NOTICES.has(phone.message[0])) phone.message = null;
}

// A new shared note (the operator's "fell in the bathroom", the caller's words) buzzes once.
function setJob(job) {
  const before = phone.job && job && phone.job.assignment_id === job.assignment_id ? (phone.job.notes || []).length : null;
  phone.job = job || null;
  if (before !== null && (job.notes || []).length > before) {
    beep({ times: 1, hz: 880 });
    vibrate([200]);
  }
}

function settled(ref, refusal) {
  const purpose = phone.pending.get(ref);
  phone.pending.delete(ref);
  if (refusal) {
    showError(t("phone.refused", { detail: refusal }));
    return;
  }
  if (purpose === "duty-on" || purpose === "duty-off") {
    if (phone.me) phone.me.on_duty = purpose === "duty-on";
    notice(purpose === "duty-on" ? "phone.now_on_duty" : "phone.now_off_duty");
  } else if (purpose === "decline") notice("phone.declined");
  render();
}

// -- the offer -----------------------------------------------------------------------------------------------

function setOffer(offer) {
  // new, or the same offer kept ringing past its time (nobody else to ask): ring at once
  const fresh = offer && (!phone.offer || phone.offer.assignment_id !== offer.assignment_id
    || phone.offer.expires_at !== offer.expires_at);
  phone.offer = offer || null;
  clearInterval(phone.ringTimer);
  if (!offer) return;
  if (fresh) ring();
  phone.ringTimer = setInterval(ring, RING_EVERY_MS);
}

function ring() {
  if (!phone.offer || secondsLeft() <= 0) {
    clearInterval(phone.ringTimer);
    return;
  }
  beep({ times: 3, hz: 988 });
  vibrate([400, 150, 400, 150, 400]);
}

const secondsLeft = () => (phone.offer ? phone.offer.expires_at - serverNow() : 0);

function reply(accept, reason = "") {
  if (!phone.offer) return;
  unlockAudio();
  const message = { type: accept ? "accept" : "decline", assignment_id: phone.offer.assignment_id };
  if (!accept && reason) message.reason = reason;
  send(message, accept ? "accept" : "decline");
  askDecline(false);
}

// 拒绝 asks once, with a few quick reasons (optional, one at most), sent as the decline's reason.
function askDecline(open) {
  unlockAudio();
  $("decline-confirm").hidden = !open;
  $("decline-button").hidden = open;
  for (const button of document.querySelectorAll("#decline-confirm .decline-reason")) {
    button.setAttribute("aria-pressed", "false");
  }
}

function declineReason() {
  const chosen = document.querySelector('#decline-confirm .decline-reason[aria-pressed="true"]');
  return chosen ? chosen.textContent.trim() : "";
}

/** A text with the phone numbers in it as tel: links (text nodes and links, never markup). */
function withPhoneLinks(text) {
  return String(text).split(PHONE_NUMBER).map((part, index) => (index % 2
    ? el("a", { className: "tel", href: `tel:${part.replace(/[^0-9+]/g, "")}` }, part) : part));
}

function report(status) {
  if (!phone.job) return;
  const note = $("status-note").value.trim();
  if (send({ type: "status", assignment_id: phone.job.assignment_id, status, note }, `status-${status}`)) {
    $("status-note").value = "";
  }
}

// -- service orders ------------------------------------------------------------------------------------------

async function loadOrders() {
  if (!session.current || isFamily()) return;
  try {
    if (!phone.services.length) phone.services = (await session.api("GET", "/api/services")).services;
    const answers = await Promise.all(ORDER_STATES.map((state) => session.api("GET",
      `/api/service-orders?state=${state}&limit=200`)));
    const today = zoned(serverNow(), phone.timeZone).date;
    const rank = (o) => (zoned(o.start, phone.timeZone).date === today ? 0 : 1);
    phone.orders = answers.flatMap((answer) => answer.orders).sort((a, b) => rank(a) - rank(b) || a.start - b.start);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showError(errorText(error));
  }
  render();
}

async function orderAction(order, action) {
  if (phone.ordersBusy) return;
  unlockAudio();
  const body = {};
  if (action !== "no_show" && phone.position) Object.assign(body, { lat: phone.position.lat, lon: phone.position.lon });
  const note = document.querySelector(`#orders-list li[data-order-id="${CSS.escape(order.order_id)}"] textarea`);
  if (action !== "start" && note) body.note = note.value.trim();
  phone.ordersBusy = true;
  phone.asking = null;
  $("phone-error").textContent = "";
  try {
    await session.api("POST", `/api/service-orders/${encodeURIComponent(order.order_id)}/${action}`, body);
    notice(`phone.order_${action}_done`);
  } catch (error) {
    showError(t("phone.refused", { detail: errorText(error) }));
  } finally {
    phone.ordersBusy = false;
  }
  await loadOrders();
}

function orderCard(order) {
  const item = phone.services.find((i) => i.item_id === order.item_id);
  const day = zoned(order.start, phone.timeZone).date;
  const today = zoned(serverNow(), phone.timeZone).date;
  const when = t("phone.order_window", {
    date: day === today ? t("order.today") : day.slice(5),
    from: zoned(order.start, phone.timeZone).time, to: zoned(order.end, phone.timeZone).time,
  });
  const started = order.state === "started";
  const asking = phone.asking === order.order_id;
  const button = (action, key, className) => el("button", {
    type: "button", className: `big ${className}`, dataset: { action }, disabled: phone.ordersBusy,
    onclick: () => orderAction(order, action),
  }, t(key));
  return el("li", { className: `card phone-order state-${order.state}`, dataset: { orderId: order.order_id, state: order.state } },
    el("p", { className: "headline" }, item ? itemName(item) : order.item_id),
    el("p", { className: "order-when" }, when, " · ", label("orderstate", order.state)),
    el("p", {}, el("strong", { className: "order-elder" }, order.elder_name || "—")),
    el("p", { className: "address" }, order.address || ""),
    order.place ? el("p", { className: "muted" }, t("order.place_is", { place: order.place })) : null,
    order.access ? el("p", { className: "access" }, ...withPhoneLinks(t("phone.access", { access: order.access }))) : null,
    order.phone ? el("a", { className: "big-link call-elder", href: `tel:${order.phone.replace(/[^0-9+]/g, "")}` },
      t("phone.call_elder", { phone: order.phone })) : null,
    started ? el("label", { className: "muted", htmlFor: `order-note-${order.order_id}` }, t("phone.order_note")) : null,
    started ? el("textarea", {
      id: `order-note-${order.order_id}`, rows: 2, maxLength: 2000, placeholder: t("phone.order_note_placeholder"),
    }) : null,
    started ? button("deliver", "phone.order_check_out", "primary") : button("start", "phone.order_check_in", ""),
    asking ? el("div", { className: "decline-confirm" },
      el("p", { className: "decline-ask" }, t("phone.order_no_show_ask")),
      el("div", { className: "decline-buttons" },
        button("no_show", "phone.order_no_show_yes", "decline"),
        el("button", { type: "button", className: "big", onclick: () => { phone.asking = null; render(); } },
          t("phone.decline_no"))))
      : el("button", {
        type: "button", className: "big decline", dataset: { action: "ask-no-show" }, disabled: phone.ordersBusy,
        onclick: () => { phone.asking = order.order_id; render(); },
      }, t("phone.order_no_show")));
}

// The cards are built again only when an order, the language or the busy state changed: a note being typed
// stays where it is while positions and pushes re-render the page.
function renderOrders(busy) {
  $("orders").hidden = busy || !phone.orders.length;
  $("orders-count").textContent = phone.orders.length ? `(${phone.orders.length})` : "";
  const key = JSON.stringify([phone.orders, phone.asking, phone.ordersBusy, document.documentElement.lang,
    phone.services.length]);
  if ($("orders-list").dataset.key === key) return;
  const typed = new Map([...document.querySelectorAll("#orders-list textarea")].map((n) => [n.id, n.value]));
  $("orders-list").dataset.key = key;
  $("orders-list").replaceChildren(...phone.orders.map(orderCard));
  for (const [id, value] of typed) if ($(id)) $(id).value = value;
}

// -- duty and position ---------------------------------------------------------------------------------------

function toggleDuty() {
  unlockAudio();
  const on = !(phone.me && phone.me.on_duty);
  const message = { type: "duty", on };
  if (on && phone.position) Object.assign(message, { lat: phone.position.lat, lon: phone.position.lon });
  if (send(message, on ? "duty-on" : "duty-off") && on && phone.position) {
    phone.sent = { lat: phone.position.lat, lon: phone.position.lon, at: Date.now() };
  }
}

function watchPosition() {
  if (isFamily()) return; // a family member's position is nobody's business
  if (!("geolocation" in navigator)) {
    phone.geoError = "phone.no_gps";
    render();
    return;
  }
  navigator.geolocation.watchPosition((where) => {
    phone.position = {
      lat: where.coords.latitude, lon: where.coords.longitude, accuracy: where.coords.accuracy, at: Date.now(),
    };
    phone.geoError = null;
    sendPosition(false);
    render();
  }, (error) => {
    phone.geoError = error.code === error.PERMISSION_DENIED ? "phone.gps_denied" : "phone.gps_unavailable";
    render();
  }, { enableHighAccuracy: true, maximumAge: 10_000, timeout: 30_000 });
}

/** Sends the position when on duty and it moved or got old; `always` after a reconnect. */
function sendPosition(always) {
  const here = phone.position;
  if (!here || !phone.me || !phone.me.on_duty) return;
  const last = phone.sent;
  const due = always || !last || Date.now() - last.at >= POSITION_EVERY_MS
    || distanceM(last.lat, last.lon, here.lat, here.lon) >= POSITION_MOVE_M;
  if (due && send({ type: "position", lat: here.lat, lon: here.lon }, "position")) {
    phone.sent = { lat: here.lat, lon: here.lon, at: Date.now() };
  }
}

// -- rendering ----------------------------------------------------------------------------------------------

function notice(key, params) {
  phone.message = [key, params];
  $("phone-error").textContent = "";
  render();
}

function showError(text) {
  $("phone-error").textContent = text;
}

function showConnection(state) {
  const status = $("conn");
  status.dataset.state = state;
  status.textContent = t(`conn.${state === "offline" && session.current ? "reconnecting" : state}`);
  renderDutyButton();
}

// The duty button waits for the server's hello: before it, a press could not be sent, and the phone would not
// know whether it was pressing "on" or "off".
function renderDutyButton() {
  const live = Boolean(phone.me && phone.socket && phone.socket.readyState === WebSocket.OPEN);
  $("duty-button").disabled = !live;
}

function render() {
  if (!session.current) return;
  const onDuty = Boolean(phone.me && phone.me.on_duty);
  $("me").textContent = phone.me ? phone.me.name : session.current.username;
  const duty = $("duty-button");
  duty.textContent = onDuty ? t("phone.go_off_duty") : t("phone.go_on_duty");
  duty.setAttribute("aria-pressed", String(onDuty));
  duty.classList.toggle("on", onDuty);
  renderDutyButton();
  $("position-state").textContent = positionText();
  const busy = Boolean(phone.offer || phone.job);
  const family = isFamily();
  $("idle").hidden = busy;
  $("duty-panel").hidden = busy || family; // answer the offer or finish the job first
  $("position-state").hidden = family;
  $("idle-text").textContent = family ? t("phone.family_waiting", { elder: (phone.me && phone.me.elder_name) || "" })
    : onDuty ? t("phone.waiting") : t("phone.off_duty_hint");
  for (const [id, key] of [["accept-button", "accept"], ["decline-button", "decline"], ["decline-yes", "decline_yes"]]) {
    $(id).textContent = t(family ? `phone.family_${key}` : `phone.${key}`);
  }
  $("decline-confirm").querySelector(".decline-ask").textContent = t(family ? "phone.family_decline_ask"
    : "phone.decline_ask");
  renderOffer();
  renderJob();
  renderOrders(busy);
  $("phone-message").textContent = phone.message ? t(phone.message[0], phone.message[1]) : "";
}

function positionText() {
  if (phone.geoError) return t(phone.geoError);
  if (!phone.position) return t("phone.gps_waiting");
  return t("phone.gps_ok", { m: Math.round(phone.position.accuracy || 0) });
}

// A card that is not shown is emptied: nothing stale (or personal, once a job is over) stays in the page.
function clear(...ids) {
  for (const id of ids) $(id).replaceChildren();
}

function renderOffer() {
  const offer = phone.offer;
  if (!offer || $("offer").dataset.assignmentId !== offer.assignment_id) askDecline(false);
  $("offer").hidden = !offer;
  if (!offer) {
    clear("offer-type", "offer-community", "offer-distance", "offer-eta", "offer-countdown");
    return;
  }
  $("offer").dataset.assignmentId = offer.assignment_id;
  $("offer-type").textContent = `${label("alarm", offer.alarm_type)} · ${t("priority.short", { n: offer.priority })}`;
  // where, roughly: the community of a registered elder; for a caller nobody knows, the place the operator
  // gave (when the offer carries it) or "未登记来电"
  $("offer-where-label").textContent = offer.community ? t("phone.community") : t("phone.where");
  $("offer-community").textContent = offer.community ? offer.community.split("/").slice(1).join(" ")
    : offer.place || t("phone.unregistered_call");
  $("offer-distance").textContent = fmtDistance(offer.distance_m);
  $("offer-eta").textContent = fmtEta(offer.eta_s);
  $("offer-title").textContent = offer.family ? t("phone.family_offer_title", { elder: offer.elder_name || "" })
    : t("phone.offer_title");
  if (offer.family) { // their own relative: the home they know, no distance (the centre does not know where they are)
    $("offer-where-label").textContent = t("phone.address");
    $("offer-community").textContent = offer.address || "";
  }
  for (const id of ["offer-distance", "offer-eta"]) {
    $(id).hidden = Boolean(offer.family);
    $(id).previousElementSibling.hidden = Boolean(offer.family);
  }
  tickOffer();
}

function tickOffer() {
  if (!phone.offer || $("offer").hidden) return;
  const left = secondsLeft();
  $("offer-countdown").textContent = left > 0 ? t("phone.countdown", { s: Math.ceil(left) }) : t("phone.expired");
  $("offer-countdown").classList.toggle("urgent", left <= 10);
  $("accept-button").disabled = left <= 0;
  $("decline-button").disabled = left <= 0;
  $("decline-yes").disabled = left <= 0;
}

function renderJob() {
  const job = phone.job;
  $("job").hidden = !job;
  if (!job) {
    clear("job-title", "job-name", "job-age", "job-address", "job-phone", "job-flags", "job-notes", "job-contacts",
      "job-words-list", "job-access", "job-place", "call-centre", "call-caller");
    for (const id of ["job-phone", "call-centre", "call-caller"]) $(id).removeAttribute("href");
    return;
  }
  $("job").dataset.assignmentId = job.assignment_id;
  $("job").dataset.state = job.state;
  $("job-title").textContent = `${label("alarm", job.alarm_type)} · ${label("assignment", job.state)}`;
  const elder = job.elder;
  $("job-name").textContent = elder ? elder.name : t("phone.unregistered_call");
  $("job-age").textContent = elder && elder.age !== null ? t("record.age", { n: elder.age }) : "";
  $("job-address").textContent = job.place && job.location === "map" ? t("place.nearby", { place: job.place })
    : job.place || (elder ? elder.address : "") || label("location", job.location || "unknown");
  const away = job.location && job.location !== "home";
  $("job-place").hidden = !away;
  $("job-place").textContent = away ? t("phone.place", { how: label("location", job.location) }) : "";
  const access = job.access || (elder && elder.access) || "";
  $("job-access").hidden = !access;
  $("job-access").replaceChildren(...(access ? withPhoneLinks(t("phone.access", { access })) : []));
  renderWords(job);
  // a caller nobody knows: one tap to call them back (the number the operator took the call from)
  $("call-caller").hidden = !job.caller;
  if (job.caller) {
    $("call-caller").textContent = t("phone.call_caller", { phone: job.caller });
    $("call-caller").href = `tel:${job.caller.replace(/[^0-9+]/g, "")}`;
  } else $("call-caller").removeAttribute("href");
  $("job-phone").hidden = !(elder && elder.phone);
  if (elder && elder.phone) {
    $("job-phone").textContent = t("phone.call_elder", { phone: elder.phone });
    $("job-phone").href = `tel:${elder.phone.replace(/[^0-9+]/g, "")}`;
  }
  $("call-centre").hidden = !job.centre_phone;
  if (job.centre_phone) {
    $("call-centre").textContent = t("phone.call_centre", { phone: job.centre_phone });
    $("call-centre").href = `tel:${job.centre_phone.replace(/[^0-9+]/g, "")}`;
  }
  const flags = elder ? elder.risk_flags : [];
  $("job-flags").hidden = !flags.length;
  $("job-flags").replaceChildren(...flags.map((flag) => el("span", { className: "chip" }, label("risk", flag))));
  $("job-notes").hidden = !(elder && elder.medical_notes);
  $("job-notes").textContent = elder && elder.medical_notes ? t("phone.notes", { notes: elder.medical_notes }) : "";
  const contacts = elder ? elder.contacts : [];
  $("job-contacts-title").hidden = !contacts.length;
  $("job-contacts").hidden = !contacts.length;
  $("job-contacts").replaceChildren(...contacts.map((c) => el("li", {},
    c.relation ? t("phone.contact", { name: c.name, relation: c.relation }) : c.name, " ",
    el("a", { className: "tel", href: `tel:${c.phone}` }, c.phone))));
  renderNavigation(job, elder);
  const allowed = NEXT[job.state] || [];
  for (const button of document.querySelectorAll("#job button[data-status]")) {
    button.disabled = !allowed.includes(button.dataset.status);
  }
}

// What the caller and the operator said, newest last, each with who said it and when.
function renderWords(job) {
  const notes = job.notes || [];
  $("job-words").hidden = !notes.length;
  $("job-words-list").replaceChildren(...notes.map((note) => el("li", {
    className: String(note.actor).startsWith("caregiver:") ? "word own" : "word",
  },
  el("span", { className: "word-who" }, `${actorWords(note.actor, note.actor_name)} ${fmtTime(note.ts)}`),
  el("span", { className: "word-text" }, explain(note.text)))));
}

// A geo: URI (RFC 5870) opens the phone's own map app; the AMap link works in any browser and takes the
// coordinates as WGS-84 (coordinate=wgs84), as they are stored.
function renderNavigation(job, elder) {
  const lat = typeof job.lat === "number" ? job.lat : elder && elder.lat;
  const lon = typeof job.lon === "number" ? job.lon : elder && elder.lon;
  const ok = typeof lat === "number" && typeof lon === "number";
  for (const id of ["nav-geo", "nav-map"]) $(id).hidden = !ok;
  if (!ok) return;
  const name = elder ? elder.address : job.place || "";
  $("nav-geo").href = `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(name)})`;
  const query = new URLSearchParams({
    position: `${lon},${lat}`, name, src: "anxin", coordinate: "wgs84", callnative: "1",
  });
  $("nav-map").href = `https://uri.amap.com/marker?${query}`;
}

// -- session -------------------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  unlockAudio();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    const who = await session.login($("login-username").value.trim(), $("login-password").value);
    if (who.role !== "caregiver" && who.role !== "family") {
      session.end();
      $("login-error").textContent = t("login.staff_use_console");
      return;
    }
    $("login-password").value = "";
    start();
  } catch (error) {
    $("login-error").textContent = error instanceof ApiError && error.status === 401
      ? t("login.wrong") : errorText(error);
  } finally {
    $("login-submit").disabled = false;
  }
}

function start() {
  $("login-view").hidden = true;
  $("phone-view").hidden = false;
  phone.backoffMs = BACKOFF_FIRST_MS;
  watchPosition();
  connect();
  render();
}

function showLogin(reasonKey) {
  clearTimeout(phone.timer);
  clearInterval(phone.ringTimer);
  if (phone.socket) phone.socket.close(1000, "logout");
  Object.assign(phone, { socket: null, me: null, offer: null, job: null, message: null, orders: [], asking: null });
  renderOffer(); // empties the cards: nothing of the last session stays in the page
  renderJob();
  renderOrders(true);
  $("phone-view").hidden = true;
  $("login-view").hidden = false;
  $("me").textContent = "";
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
  showConnection("offline");
}

async function init() {
  listenForUnlock();
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  phone.timeZone = config.timezone;
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    showConnection($("conn").dataset.state);
    render();
  });
  $("login-form").addEventListener("submit", login);
  $("login-submit").disabled = false; // off in the markup until this handler is there
  $("logout-button").addEventListener("click", () => session.logout());
  $("duty-button").addEventListener("click", toggleDuty);
  $("accept-button").addEventListener("click", () => reply(true));
  $("decline-button").addEventListener("click", () => askDecline(true));
  $("decline-no").addEventListener("click", () => askDecline(false));
  $("decline-yes").addEventListener("click", () => reply(false, declineReason()));
  for (const button of document.querySelectorAll("#decline-confirm .decline-reason")) {
    button.addEventListener("click", () => {
      const on = button.getAttribute("aria-pressed") !== "true";
      for (const other of document.querySelectorAll("#decline-confirm .decline-reason")) {
        other.setAttribute("aria-pressed", "false");
      }
      button.setAttribute("aria-pressed", String(on));
    });
  }
  for (const button of document.querySelectorAll("#job button[data-status]")) {
    button.addEventListener("click", () => report(button.dataset.status));
  }
  session.onEnd = showLogin;
  setInterval(loadOrders, ORDERS_EVERY_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") loadOrders();
  });
  setInterval(() => {
    tickOffer();
    if (session.expired()) session.end("login.expired");
  }, 250);
  if (session.current) start();
  else showLogin(null);
}

init();
