// Click-to-call (拨打) through the centre's PBX, shared by the staff pages: beside each tel: link a small
// button that asks the PBX to ring the operator's own extension first and then the number
// (POST /api/calls/dial). The caregiver and family phone page (phone.js) does not use it: a phone dials itself.
//
// How it knows whether to offer the button
//   GET /api/telephony once when the page starts (watchTelephony) and again every REFRESH_MS, because a PBX
//   link can drop and come back. The answer sets one of three states, painted on every button of the page at
//   once (the pages need not render again):
//     ready  {connected, can_dial}: the button is shown and works;
//     down   configured, the reader has an extension, the link is down: the button is shown disabled, its
//            title says the PBX is not connected (the operator knows why, and uses the tel: link or a desk phone);
//     off    not configured, no extension for the reader, not allowed, or no answer: no button, the tel: links
//            stay exactly as they were.
//
// Rules
//   1. One dial at a time from a page: while a request is on its way and for HOLD_MS after it succeeded,
//      every 拨打 button of the page is disabled (the operator's extension is about to ring; a second click
//      would ring it twice). A refused dial frees them at once: nothing is ringing.
//   2. The dial carries what the page knows about it: the elder whose number it is, the call being called back,
//      the incident it is for (each only when known), so the server records it with the right context.
//   3. What happened is said in a toast (role=status): "calling, your extension rings first", or the refusal
//      from its code in the reader's language (errorText, as everywhere). A pbx_not_connected refusal reads
//      the link's state again at once.
//   4. A PBX that is configured and not connected is said in a banner on every staff page (role=alert), whoever
//      reads it: calls no longer pop and are not on record until it is back, so the desk answers on the phones
//      and notes calls by hand. It goes when the link is back.
"use strict";

import { el, errorText } from "./common.js";
import { onLanguageChange, t } from "./i18n.js";

const REFRESH_MS = 30_000;
const HOLD_MS = 5_000;
const TOAST_MS = 6_000;
const ERROR_TOAST_MS = 10_000;
const MIN_DIGITS = 3;
const MAX_DIGITS = 32;

let state = "off"; // "ready" | "down" | "off"
let extension = null; // the reader's own extension, as GET /api/telephony says
let session = null;
let timer = 0;
let busy = false; // a dial is on its way or just placed (rule 1)
let holdTimer = 0;
let toastTimer = 0;

/** The number as the PBX takes it: digits with an optional leading +; null when it cannot be dialled. */
export function dialNumber(phone) {
  const text = String(phone || "").trim();
  const digits = text.replace(/\D/g, "");
  if (digits.length < MIN_DIGITS || digits.length > MAX_DIGITS) return null;
  return (text.startsWith("+") ? "+" : "") + digits;
}

/** What the telephony answer means for the buttons (see the theory above). */
function stateOf(answer) {
  if (!answer || !answer.configured) return "off";
  if (answer.connected && answer.can_dial) return "ready";
  if (!answer.connected && answer.extension) return "down";
  return "off";
}

async function readTelephony() {
  if (!session || !session.current) {
    setState("off", null);
    return;
  }
  try {
    const answer = await session.api("GET", "/api/telephony");
    setState(stateOf(answer), answer.extension || null);
    showLinkDown(Boolean(answer && answer.configured && !answer.connected));
  } catch (_) {
    // not there (an older server), not allowed, or no network: the tel: links stay as they are
    setState("off", null);
  }
}

/** Rule 4: the banner of a PBX link that is down. */
function showLinkDown(down) {
  let node = document.getElementById("pbx-banner");
  if (!node && !down) return;
  if (!node) {
    node = document.createElement("div");
    node.id = "pbx-banner";
    node.setAttribute("role", "alert");
    const header = document.getElementById("topbar");
    if (header) header.after(node);
    else document.body.prepend(node);
  }
  node.textContent = down ? t("dial.link_down") : "";
  node.hidden = !down;
}

function setState(next, ext) {
  state = next;
  extension = ext;
  document.body.dataset.telephony = next;
  paintAll();
}

/** Reads the PBX link's state now and every REFRESH_MS while `staff` is logged in. Call it when the page
 * starts (again after each login: it reads at once). */
export function watchTelephony(staff) {
  session = staff;
  readTelephony();
  if (!timer) timer = setInterval(readTelephony, REFRESH_MS);
}

/** The reader logged out: no buttons until the next login reads the state again. */
export function forgetTelephony() {
  setState("off", null);
  showLinkDown(false);
}

function paint(button) {
  button.hidden = state === "off";
  button.disabled = state !== "ready" || busy;
  button.textContent = t("dial.button");
  button.title = state === "down" ? t("dial.down_title") : t("dial.title", { number: button.dataset.number });
}

function paintAll() {
  for (const button of document.querySelectorAll("button.dial")) paint(button);
}

onLanguageChange(paintAll);

/**
 * A phone number as the staff pages show it: its tel: link and, beside it, the 拨打 button.
 * `context`: {elderId, callId, incidentId} of rule 2 (each optional); `className` of the link (default "tel").
 */
export function phoneLink(phone, { className = "tel", elderId = null, callId = null, incidentId = null } = {}) {
  const text = String(phone || "");
  const link = el("a", { className, href: `tel:${text.replace(/[^0-9+]/g, "")}` }, text);
  const number = dialNumber(text);
  if (!number) return link;
  return el("span", { className: "tel-dial" }, link, dialButton(number, { elderId, callId, incidentId }));
}

/** The 拨打 button alone, for a number the page shows as text (a call in the hotline list). */
export function dialButton(number, { elderId = null, callId = null, incidentId = null } = {}) {
  const button = el("button", {
    type: "button", className: "dial",
    dataset: { number, elderId: elderId || "", callId: callId || "", incidentId: incidentId || "" },
    onclick: (event) => {
      event.preventDefault();
      event.stopPropagation(); // a row that opens something on a click stays as it is
      dial(button);
    },
  });
  paint(button);
  return button;
}

async function dial(button) {
  if (busy || state !== "ready" || !session) return;
  const data = button.dataset;
  const body = {
    number: data.number,
    elder_id: data.elderId || null,
    call_id: data.callId || null,
    incident_id: data.incidentId || null,
  };
  busy = true;
  paintAll();
  toast(t("dial.sending", { number: data.number }), "pending");
  let placed = false;
  try {
    await session.api("POST", "/api/calls/dial", body);
    placed = true;
    toast(extension ? t("dial.calling", { extension, number: data.number }) : t("dial.calling_no_extension", { number: data.number }), "ok");
  } catch (error) {
    toast(t("dial.failed", { reason: errorText(error) }), "error");
    if (error.code === "pbx_not_connected") readTelephony();
  }
  clearTimeout(holdTimer);
  if (placed) {
    holdTimer = setTimeout(() => {
      busy = false;
      paintAll();
    }, HOLD_MS);
  } else {
    busy = false;
    paintAll();
  }
}

function toast(text, kind) {
  let box = document.getElementById("dial-toast");
  if (!box) {
    box = el("div", { id: "dial-toast", className: "dial-toast", role: "status", "aria-live": "polite" });
    box.addEventListener("click", () => {
      box.hidden = true;
    });
    document.body.append(box);
  }
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  if (kind !== "pending") {
    toastTimer = setTimeout(() => {
      box.hidden = true;
    }, kind === "error" ? ERROR_TOAST_MS : TOAST_MS);
  }
}
