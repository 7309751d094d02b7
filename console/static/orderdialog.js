// The service order dialog, shared by the service desk page and the console (an order from a call).
//
// Find the elder (or take the one the call is about), pick a catalogue item, a time window and a place; the
// price shown is the item's price for *that* elder's entitlement (the server fixes the same one when the order
// is taken), next to the elder's voucher balance this month and what the vouchers would cover. Money is
// integer fen, shown in yuan; times are typed in the centre's time zone and sent as UTC seconds.
//
// The <dialog> is built here, once per page, from catalogue keys (the page's setLanguage translates it).
"use strict";

import { $, el, errorText, loadConfig, serverNow } from "./common.js";
import { currentLanguage, label, ready, t, translate } from "./i18n.js";
import { elderSearch } from "./places.js";
import { epochOf, itemName, itemUnit, modeOf, yuan, zoned } from "./servicewords.js";

const SLOT_S = 30 * 60; // a new order starts on the next half hour, one slot ahead (on the quarter-hour list)

const DAYS_AHEAD = 30; // the days a window may be put on, from yesterday on
const STEP_MIN = 15; // the times offered, every quarter of an hour

/** "HH:MM" of the minutes since midnight. */
const hhmm = (minutes) => `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;

/** Picks the option of a value, adding it (in order) when the list lacks it: an order's own odd time or old date. */
function pick(select, value, text) {
  if (![...select.options].some((o) => o.value === value)) {
    const after = [...select.options].find((o) => o.value > value) || null;
    select.insertBefore(el("option", { value }, text), after);
  }
  select.value = value;
}

/** Date, start and end of a time window in the centre's time zone, as lists (the same in every browser's
 * language, unlike the browser's own date and time inputs); value() is {start, end} or {error: key}. */
export function windowFields(prefix) {
  const date = el("select", { id: `${prefix}-date` });
  const start = el("select", { id: `${prefix}-start` });
  const end = el("select", { id: `${prefix}-end` });
  const node = el("div", { className: "window-fields" },
    el("label", { htmlFor: date.id, dataset: { i18n: "order.date" } }), date,
    el("label", { htmlFor: start.id, dataset: { i18n: "order.from" } }), start,
    el("label", { htmlFor: end.id, dataset: { i18n: "order.to" } }), end);
  let zone = "Asia/Shanghai";
  const dayText = (day) => {
    const noon = epochOf(day, "12:00", zone);
    const weekday = new Intl.DateTimeFormat(currentLanguage(), { timeZone: zone, weekday: "short" })
      .format(new Date(noon * 1000));
    const text = t("order.day", { date: day.slice(5), weekday });
    return day === zoned(serverNow(), zone).date ? t("order.today_is", { day: text }) : text;
  };
  const fill = () => {
    const days = [];
    for (let i = 0; i <= DAYS_AHEAD; i += 1) days.push(zoned(serverNow() + i * 86400, zone).date);
    date.replaceChildren(...[...new Set(days)].map((day) => el("option", { value: day }, dayText(day))));
    const times = [];
    for (let m = 0; m < 24 * 60; m += STEP_MIN) times.push(el("option", { value: hhmm(m) }, hhmm(m)));
    start.replaceChildren(...times);
    end.replaceChildren(...times.map((o) => o.cloneNode(true)));
  };
  return {
    node,
    set(from, to, timeZone) {
      zone = timeZone || zone;
      fill();
      const a = zoned(from, zone);
      const b = zoned(to, zone);
      pick(date, a.date, dayText(a.date));
      pick(start, a.time, a.time);
      pick(end, b.time, b.time);
    },
    value() {
      if (!date.value || !start.value || !end.value) return { error: "order.need_window" };
      const from = epochOf(date.value, start.value, zone);
      let to = epochOf(date.value, end.value, zone);
      if (to <= from) to += 24 * 3600; // 22:00 to 00:30: the next morning
      if (to - from > 12 * 3600) return { error: "error.service_window_long" }; // 10:00 to 09:00 is a slip
      if (to <= serverNow()) return { error: "error.service_window_past" };
      return { start: from, end: to };
    },
  };
}

// -- the dialog -----------------------------------------------------------------------------------------

let built = null;

function build() {
  const items = el("select", { id: "order-item", required: true });
  const place = el("input", {
    id: "order-place", maxLength: 200, autocomplete: "off", dataset: { i18nPlaceholder: "order.place_placeholder" },
  });
  const when = windowFields("order");
  const form = el("form", { id: "order-form", noValidate: true },
    el("h3", { id: "order-title", dataset: { i18n: "order.title" } }),
    el("p", { id: "order-call", className: "notice", hidden: true }),
    el("label", { htmlFor: "order-elder", dataset: { i18n: "order.elder" } }),
    el("div", { id: "order-who" }),
    el("p", { id: "order-vouchers", className: "muted" }),
    el("label", { htmlFor: "order-item", dataset: { i18n: "order.item" } }), items,
    el("p", { id: "order-price", className: "order-price" }),
    when.node,
    el("label", { htmlFor: "order-place", dataset: { i18n: "order.place" } }), place,
    el("p", { id: "order-error", className: "error", role: "alert" }),
    el("div", { className: "form-buttons" },
      el("button", { id: "order-submit", type: "submit", className: "primary", dataset: { i18n: "order.submit" } }),
      el("button", { id: "order-cancel", type: "button", dataset: { i18n: "form.back" } })));
  const dialog = el("dialog", { id: "order-dialog", className: "dialog order-dialog", "aria-labelledby": "order-title" }, form);
  document.body.append(dialog);
  if (ready()) translate(dialog);
  return { dialog, form, items, place, when };
}

/**
 * Opens the dialog; resolves to the order the server took, or null when the operator went back.
 * `elder` ({elder_id, name, ...}) fixes who it is for (a call about a known elder); `callId` records the order
 * as asked for on that call (source "call").
 */
export async function orderDialog(session, { elder = null, callId = null } = {}) {
  if (!built) built = build();
  const { dialog, form, items, place, when } = built;
  const config = await loadConfig();
  const services = (await session.api("GET", "/api/services")).services;
  let who = elder;
  let wallet = null; // GET /api/elders/{id}/vouchers of who
  const search = elder ? null : elderSearch(session, {
    id: "order-elder", onPick: (found) => { who = found; loadWallet(); },
  });
  $("order-who").replaceChildren(search ? search.node : el("strong", {
    id: "order-elder", className: "chosen-name", dataset: { elderId: elder.elder_id },
  }, elder.name || elder.elder_id));
  $("order-call").hidden = !callId;
  $("order-call").textContent = callId ? t("order.from_call") : "";
  $("order-error").textContent = "";
  place.value = "";
  const from = Math.ceil(serverNow() / SLOT_S) * SLOT_S + SLOT_S;
  when.set(from, from + 3600, config.timezone);

  const mode = () => modeOf(wallet ? wallet.entitlement : null);
  const paintItems = () => {
    const chosen = items.value;
    const groups = new Map();
    for (const item of services) {
      const name = currentLanguage() === "zh-CN" ? item.category_zh : item.category_en;
      if (!groups.has(name)) groups.set(name, el("optgroup", { label: name }));
      const price = wallet ? t("order.item_price", { price: yuan(item.price_fen[mode()]), unit: itemUnit(item) }) : "";
      groups.get(name).append(el("option", { value: item.item_id }, `${itemName(item)}${price ? ` · ${price}` : ""}`));
    }
    items.replaceChildren(el("option", { value: "" }, t("order.choose_item")), ...groups.values());
    items.value = chosen;
    paintPrice();
  };
  const paintPrice = () => {
    const item = services.find((i) => i.item_id === items.value);
    if (!item || !wallet) {
      $("order-price").textContent = item ? t("order.price_needs_elder") : "";
      return;
    }
    const fen = item.price_fen[mode()];
    const covered = Math.min(fen, wallet.current.available_fen);
    $("order-price").textContent = t("order.price", {
      mode: label("entitlement", mode()), price: yuan(fen), voucher: yuan(covered), cash: yuan(fen - covered),
    });
    $("order-price").dataset.priceFen = String(fen);
  };
  async function loadWallet() {
    wallet = null;
    $("order-vouchers").textContent = "";
    if (who) {
      try {
        const answer = await session.api("GET", `/api/elders/${encodeURIComponent(who.elder_id)}/vouchers`);
        if (who && answer.elder_id === who.elder_id) wallet = answer;
      } catch (error) {
        $("order-vouchers").textContent = errorText(error);
      }
    }
    if (wallet) {
      $("order-vouchers").textContent = t("order.vouchers", {
        mode: label("entitlement", mode()), balance: yuan(wallet.current.available_fen),
        month: wallet.month,
      });
      $("order-vouchers").dataset.availableFen = String(wallet.current.available_fen);
    }
    paintItems();
  }
  items.onchange = () => {
    paintPrice();
    const item = services.find((i) => i.item_id === items.value);
    const current = when.value();
    if (item && !current.error) when.set(current.start, current.start + item.minutes * 60, config.timezone);
  };
  await loadWallet();

  return new Promise((resolve) => {
    let busy = false;
    const done = (answer) => {
      form.onsubmit = null;
      $("order-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    form.onsubmit = async (event) => {
      event.preventDefault();
      if (busy) return;
      const span = when.value();
      const fail = (key) => { $("order-error").textContent = t(key); };
      if (!who) return fail("order.need_elder");
      if (!items.value) return fail("order.need_item");
      if (span.error) return fail(span.error);
      const body = {
        elder_id: who.elder_id, item_id: items.value, start: span.start, end: span.end,
        place: place.value.trim(), source: callId ? "call" : "console",
      };
      if (callId) body.call_id = callId;
      busy = true;
      $("order-submit").disabled = true;
      try {
        done(await session.api("POST", "/api/service-orders", body));
      } catch (error) {
        $("order-error").textContent = errorText(error);
      } finally {
        busy = false;
        $("order-submit").disabled = false;
      }
    };
    $("order-cancel").onclick = () => done(null);
    dialog.onclose = () => { if (!dialog.open) done(null); }; // a stale close event is not Esc (see dialogs.js)
    dialog.showModal();
    if (search) search.focus();
    else items.focus();
  });
}
