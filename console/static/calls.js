// Hotline calls on the console: the pop-up of the call in hand and the list of calls still on the desk.
//
// An answered call opens nothing by itself: the operator hears the caller, then says what the call was
// (POST /api/calls/{id}/classify) — an emergency with its alarm type (an incident opens and matching starts,
// or the call joins an incident already open for this elder), a service request, a consultation, a
// complaint, a wrong number, a silent call (which leaves a call back to make). A service request opens the
// order dialog (orderdialog.js) for the caller's elder at once; the order records the call it came from. A
// caller the registry does not know can be identified with the elder search and placed by address or on the map.
//
// A number several elders share
//   A couple (or a mother and her sister) on one landline: the call rings with all of them, none chosen, and the
//   call card lists each one (name, age, address) with "someone else" beside them. The operator asks who is
//   speaking and picks (POST /api/calls/{id}/pick, on record); the picked elder's record pops. A family member
//   who is the contact of several elders is offered the same way: which of them is the call about. A number
//   that is one elder's pops their record at once, as always. The pick can be changed until the call is
//   classified.
//
// Which call is in the pop-up
//   A ringing call takes the pop-up, unless the operator is in the middle of another call there (answered and
//   not classified yet): then a banner at the top of the pop-up says who else is ringing, with one click to
//   switch. Every other call waiting (ringing or queued at the PBX, or answered and not classified) is listed in
//   that banner too. A call the PBX says another operator answered (at their extension, or transferred to
//   them: handler_user) is theirs: it leaves this pop-up and waits for nobody here, and stays in the list.
//   A call that is over (ended and classified, or missed) closes its pop-up by itself after a few seconds;
//   closing the pop-up by hand brings up the next call waiting. The pop-up sticks to the top of the screen.
//
// Calls the operators make (click-to-call through the PBX, dial.js)
//   An outbound call (direction "out") is listed with the others, marked 呼出, but it never takes the pop-up, never
//   beeps and waits for no classification: the operator who dialled it is already on it. Every call in the list
//   carries its record in a few words (callrecord.js): direction, queue and wait, who answered at which
//   extension, transfers, the outcome and the PBX's hangup cause. A call that is over, inbound, has a 拨打
//   button to call the number back through the PBX (when the PBX link is up), recorded as a call-back of it.
//
// How it stays current
//   app.calls holds the server's call views (GET /api/calls/{id}): the snapshot brings the open ones, and
//   each call.* entry of the feed has its call read again (one request at a time per call).
"use strict";

import { $, actorWords, el, errorText, serverNow } from "./common.js";
import { callFacts, outcomeWords } from "./callrecord.js";
import { dialButton, dialNumber } from "./dial.js";
import { fmtTime, label, t } from "./i18n.js";
import { joinedWords } from "./newincident.js";
import { elderSearch, landmarksOf, middleOf, nearbyPlaces, placePicker } from "./places.js";
import { orderDialog } from "./orderdialog.js";
import { renderNoRecord, renderRecord } from "./record.js";
import { beep } from "./sound.js";

const CALL_KEEP_S = 60; // a call off the desk (classified and ended) stays in the list this long
const AUTO_CLOSE_MS = 4000; // a call that is over leaves the pop-up after this long
const OTHERS_SHOWN = 3; // calls named in the pop-up's banner

/** Made by an operator through the PBX (click-to-call): never waiting for anyone. */
const outbound = (call) => call.direction === "out";

/** Waiting for someone to pick up: ringing, or waiting in the PBX's queue. */
const live = (call) => call.state === "ringing" || call.state === "queued";

/** The reader's user name (set by createCalls): a call the PBX says another operator has is theirs. */
let readerName = () => null;

/** Answered at another operator's extension (or handed to them), as the PBX said: theirs to classify. */
const othersCall = (call) => Boolean(call.handler_user) && call.handler_user !== readerName();

/** Waiting for the operator: ringing or queued, or answered (here, or by nobody the PBX named) and not
 * classified yet (inbound calls only). */
export const waitingCall = (call) => call.open && !outbound(call)
  && (live(call) || (Boolean(call.answered_at) && !call.kind && !othersCall(call)));

/** The operator is in the middle of it: answered, and not classified yet. */
const inHand = (call) => Boolean(call) && !outbound(call) && Boolean(call.answered_at) && !call.kind
  && !othersCall(call);

/** Over: ended and classified, or ended without anyone answering. */
const over = (call) => call.state === "ended" && (Boolean(call.kind) || !call.answered_at);

/** A number cut short for a narrow column: "139…5678". */
export function shortNumber(number) {
  const text = String(number || "");
  return text.length > 8 ? `${text.slice(0, 3)}…${text.slice(-4)}` : text;
}

export function createCalls({ app, session, render, select, responderName, notice }) {
  readerName = () => (session.current ? session.current.username : null);
  const fetching = new Set();
  const again = new Set();
  const closedSeen = new Map(); // call_id -> server time it was first seen off the desk
  const known = new Map(); // call_id -> caller, for incidents whose call is no longer on the desk
  const desks = new Map(); // call_id -> the classification bar of that call: {callId, search, place, text, busy}
  const dismissed = new Set(); // calls the operator closed the pop-up of (they stay in the list)
  const classifiedBy = new Map(); // call_id -> the journal actor who classified it (from the feed)
  const taken = new Map(); // call_id -> {text, incidentId}: what I typed when someone else classified the call
  const ordered = new Map(); // call_id -> the service order placed on it from this console
  const picking = new Set(); // calls whose pick is on its way to the server
  let popRecord = null; // {elderId, record} or {elderId, error}
  let closing = null; // {callId, timer}: the pop-up of a call that is over, closing itself

  // -- keeping the calls current ----------------------------------------------------------------------

  function snapshot(calls) {
    app.calls = new Map(calls.map((call) => [call.call_id, call]));
    for (const call of calls) known.set(call.call_id, call.caller);
    if (app.popCallId && !app.calls.has(app.popCallId)) app.popCallId = null;
    if (mayPop()) {
      const next = nextWaiting();
      if (next) pop(next.call_id);
    }
  }

  function entry(item) {
    const p = item.payload || {};
    if (!p.call_id) return;
    if (item.kind === "call.ringing") {
      const call = {
        call_id: p.call_id, caller: p.caller, line: p.line, elder_id: p.elder_id || null, state: "ringing",
        open: true, started_at: item.ts, contact: null, kind: null, answered_at: null, offered: [], picked: null,
        caller_is: p.elder_id ? "elder" : (p.household || []).length ? "household" : "unknown",
        direction: p.direction || "in",
      };
      const merged = { ...call, ...(app.calls.get(p.call_id) || {}) };
      app.calls.set(p.call_id, merged);
      known.set(p.call_id, p.caller);
      dismissed.delete(p.call_id);
      if (!outbound(merged)) {
        if (mayPop()) pop(p.call_id);
        beep({ times: 1, hz: 660 });
      }
    } else {
      const call = app.calls.get(p.call_id);
      if (call && item.kind === "call.queued" && call.state === "ringing") call.state = "queued";
      if (call && (item.kind === "call.answered" || item.kind === "call.transferred") && p.operator) {
        call.handler_user = p.operator; // the PBX named who has it: theirs to classify
      }
      if (call && item.kind === "call.answered") {
        call.state = "answered";
        call.answered_at = call.answered_at || item.ts;
        dismissed.delete(p.call_id); // answered: it needs the operator's word, in the pop-up
        if (app.popCallId !== p.call_id && !outbound(call) && !othersCall(call) && mayPop()) pop(p.call_id);
      }
      if (call && item.kind === "call.ended") call.state = "ended";
      if (item.kind === "call.classified" && item.actor) classifiedBy.set(p.call_id, item.actor);
    }
    refetch(p.call_id);
  }

  // A ringing call takes the pop-up unless the operator is in the middle of another call there.
  function mayPop() {
    const current = app.popCallId ? app.calls.get(app.popCallId) : null;
    return !current || !inHand(current);
  }

  /** The calls waiting besides the one in the pop-up: answered ones still talking first, then the ringing
   * ones (longest ringing first), then answered ones that ended unclassified. */
  function waitingCalls() {
    const rank = (c) => (c.state === "answered" ? 0 : live(c) ? 1 : 2);
    return [...app.calls.values()].filter(waitingCall)
      .sort((a, b) => rank(a) - rank(b) || a.started_at - b.started_at);
  }

  /** The call the pop-up takes up next by itself: a live one (ringing or talking) not closed by hand. A call
   * that ended unclassified waits in the list (and the banner) for the operator to take it up. */
  const nextWaiting = () => waitingCalls()
    .find((c) => c.state !== "ended" && !dismissed.has(c.call_id) && c.call_id !== app.popCallId) || null;

  async function refetch(callId) {
    if (fetching.has(callId)) {
      again.add(callId);
      return;
    }
    fetching.add(callId);
    try {
      put(await session.api("GET", `/api/calls/${encodeURIComponent(callId)}`));
    } catch (_) {
      // the entry's own state stays; the next entry reads it again
    } finally {
      fetching.delete(callId);
      if (again.delete(callId)) refetch(callId);
    }
  }

  function put(call) {
    app.calls.set(call.call_id, call);
    known.set(call.call_id, call.caller);
    render();
  }

  /** The number an incident's call came from, read once when the call is no longer on the desk. */
  function callerOf(view) {
    if (!view.call_id) return null;
    if (known.has(view.call_id)) return known.get(view.call_id);
    known.set(view.call_id, null);
    session.api("GET", `/api/calls/${encodeURIComponent(view.call_id)}`)
      .then((call) => {
        known.set(call.call_id, call.caller);
        render();
      })
      .catch(() => {});
    return null;
  }

  // -- the pop-up ---------------------------------------------------------------------------------------

  function pop(callId) {
    if (app.popCallId !== callId) {
      app.popCallId = callId;
      popRecord = null;
      $("call-pop-error").textContent = "";
      if (callId) dismissed.delete(callId);
    }
    render();
  }

  /** Closes the pop-up; the next call waiting (if any) comes up in it. */
  function dismiss() {
    if (app.popCallId) {
      dismissed.add(app.popCallId);
      taken.delete(app.popCallId);
    }
    app.popCallId = null;
    popRecord = null;
    $("call-pop-error").textContent = "";
    const next = nextWaiting();
    if (next) pop(next.call_id);
    else render();
  }

  /** Whose record the pop-up shows: the caller's, the elder a family contact calls about, or the one found. */
  function recordElderId(call) {
    if (call.elder_id) return call.elder_id;
    const desk = desks.get(call.call_id);
    const found = desk ? desk.search.chosen() : null;
    if (found) return found.elder_id;
    return call.contact ? call.contact.elder_id : null;
  }

  async function loadRecord(elderId) {
    popRecord = { elderId, loading: true };
    try {
      const record = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}`);
      if (popRecord && popRecord.elderId === elderId) popRecord = { elderId, record };
    } catch (error) {
      if (popRecord && popRecord.elderId === elderId) popRecord = { elderId, error: errorText(error) };
    }
    $("call-pop-record").dataset.shown = "";
    render();
  }

  /** The elders a call offers the operator to pick from (a household's landline, a family member of several
   * elders); empty when the number reaches one elder or none. */
  const offeredOf = (call) => (call.offered && call.offered.length > 1 ? call.offered : []);

  function whoText(call) {
    if (call.caller_is === "household") {
      if (call.elder_id) return t("call.who_elder", { name: call.elder_name || "…" });
      if (call.picked) return t("call.who_household_other");
      return t("call.who_household", { n: offeredOf(call).length || "…" });
    }
    if (call.contact && !call.contact.elder_id) {
      return t("call.who_contact_several", { name: call.contact.name, n: offeredOf(call).length });
    }
    if (call.caller_is !== "elder" && !call.contact) {
      // an unknown number: once the elder is identified it is still the number calling, about that elder
      const desk = desks.get(call.call_id);
      const found = desk ? desk.search.chosen() : null;
      const name = call.elder_name || (found && found.name)
        || (call.elder_id && popRecord && popRecord.record ? popRecord.record.name : null);
      if (call.elder_id || found) return t("call.who_about", { caller: call.caller, name: name || "…" });
    }
    if (call.caller_is === "elder" || (call.elder_id && !call.contact)) {
      return t("call.who_elder", { name: call.elder_name || (popRecord && popRecord.record ? popRecord.record.name : "…") });
    }
    if (call.contact) {
      const c = call.contact;
      return c.relation
        ? t("call.who_contact", { name: c.name, relation: c.relation, elder: c.elder_name })
        : t("call.who_contact_plain", { name: c.name, elder: c.elder_name });
    }
    return t("call.unknown_number");
  }

  /** Who calls, in a few words: the elder's name, "family of X", or the number. */
  function whoShort(call) {
    if (call.elder_name) return call.elder_name;
    if (call.contact && call.contact.elder_name) return t("calls.contact_of", { elder: call.contact.elder_name });
    if (offeredOf(call).length) return offeredWords(call);
    return call.caller;
  }

  /** The elders a call offers, in a few words: "王秀英、李建国". */
  const offeredWords = (call) => offeredOf(call).map((o) => o.name).join("、");

  function renderPop() {
    let call = app.popCallId ? app.calls.get(app.popCallId) : null;
    if (!call && app.popCallId) app.popCallId = null;
    if (!call) {
      const next = nextWaiting();
      if (next) {
        app.popCallId = next.call_id;
        popRecord = null;
        call = next;
      }
    }
    if (call && !inHand(call) && !live(call)) {
      // the call in the pop-up is classified, over or another operator's: a call ringing meanwhile takes its place
      const ringing = waitingCalls().find((c) => live(c) && !dismissed.has(c.call_id));
      if (ringing) {
        app.popCallId = ringing.call_id;
        popRecord = null;
        $("call-pop-error").textContent = "";
        call = ringing;
      }
    }
    const box = $("call-pop");
    box.hidden = !call;
    forgetDesks();
    paintOthers(call);
    if (!call) {
      for (const id of ["call-pop-caller", "call-pop-who", "call-pop-state", "call-pop-facts", "call-pop-record", "call-pop-result", "call-pop-taken",
        "call-pop-household", "classify-links", "classify-who", "classify-place"]) $(id).replaceChildren();
      $("call-pop-household").hidden = true;
      $("call-pop-household").dataset.key = "";
      $("call-pop-record").dataset.shown = "";
      $("call-pop-result").dataset.key = "";
      $("classify").hidden = true;
      stopClosing();
      return;
    }
    box.dataset.callId = call.call_id;
    box.dataset.state = call.state;
    box.dataset.callerIs = call.caller_is || "unknown";
    if (inHand(call)) box.dataset.inHand = "";
    else delete box.dataset.inHand;
    $("call-pop-caller").textContent = call.caller;
    $("call-pop-who").textContent = whoText(call);
    $("call-pop-line").textContent = call.line ? t("call.line", { line: call.line }) : "";
    $("call-pop-state").textContent = label("call", call.state);
    $("call-pop-facts").replaceChildren(...callFacts(call));
    $("call-pop-words").hidden = !call.words;
    $("call-pop-words").textContent = call.words ? t("call.words", { words: call.words }) : "";
    $("call-pop-open").hidden = !call.incident_id;
    $("call-pop-open").dataset.incidentId = call.incident_id || "";
    paintHousehold(call);
    paintRecord(call);
    paintDesk(call);
    paintResult(call);
    paintTaken(call);
    closeWhenOver(call);
  }

  // Someone else (another operator, the bot) classified the call I was typing about: what I typed stays, with
  // who did it, to copy or to add as a note to the incident the call opened or joined.
  function paintTaken(call) {
    const holder = $("call-pop-taken");
    const lost = taken.get(call.call_id);
    holder.hidden = !lost;
    if (!lost) {
      holder.replaceChildren();
      holder.dataset.key = "";
      return;
    }
    const actor = classifiedBy.get(call.call_id);
    const who = actor ? actorWords(actor) : call.answered_by || t("call.someone");
    const key = JSON.stringify([who, call.kind, call.incident_id, lost.noted, lost.error]);
    if (holder.dataset.key === key) return;
    holder.dataset.key = key;
    const text = el("textarea", { className: "taken-text", readOnly: true, rows: 2, value: lost.text });
    text.value = lost.text;
    const copy = el("button", {
      type: "button", className: "taken-copy", onclick: () => {
        text.select();
        if (navigator.clipboard) navigator.clipboard.writeText(lost.text).catch(() => document.execCommand("copy"));
        else document.execCommand("copy");
      },
    }, t("call.taken_copy"));
    const note = call.incident_id && !lost.noted ? el("button", {
      type: "button", className: "taken-note", onclick: async () => {
        try {
          await session.api("POST", `/api/incidents/${encodeURIComponent(call.incident_id)}/notes`,
            { text: lost.text, shared: true });
          lost.noted = true;
          lost.error = "";
        } catch (error) {
          lost.error = errorText(error);
        }
        render();
      },
    }, t("call.taken_note", { id: call.incident_id })) : null;
    holder.replaceChildren(
      el("strong", {}, t("call.taken", { name: who, kind: call.kind ? label("callkind", call.kind) : "—" })),
      text,
      el("span", { className: "taken-buttons" }, copy, note,
        lost.noted ? el("span", { className: "muted" }, t("call.taken_noted")) : null,
        el("button", { type: "button", className: "link", onclick: () => {
          taken.delete(call.call_id);
          render();
        } }, t("call.taken_forget"))),
      lost.error ? el("span", { className: "error" }, lost.error) : null);
  }

  // A call that is over leaves the pop-up by itself, a few seconds after (the operator sees what became of it).
  function closeWhenOver(call) {
    if (!over(call) || taken.has(call.call_id)) {
      if (closing && closing.callId === call.call_id) stopClosing();
      return;
    }
    if (closing && closing.callId === call.call_id) return;
    stopClosing();
    const callId = call.call_id;
    closing = {
      callId,
      timer: setTimeout(() => {
        closing = null;
        if (app.popCallId === callId) dismiss();
      }, AUTO_CLOSE_MS),
    };
    $("call-pop").dataset.closing = "";
  }

  function stopClosing() {
    if (closing) clearTimeout(closing.timer);
    closing = null;
    delete $("call-pop").dataset.closing;
  }

  // The banner: every other call waiting, a ringing one first, each one click away.
  function paintOthers(call) {
    const others = waitingCalls().filter((c) => !call || c.call_id !== call.call_id);
    const holder = $("call-pop-others");
    const key = JSON.stringify(others.slice(0, OTHERS_SHOWN).map((c) => [c.call_id, c.state, whoShort(c)]))
      + others.length + (call ? call.call_id : "");
    if (holder.dataset.key === key) return;
    holder.dataset.key = key;
    holder.hidden = !others.length;
    const items = others.slice(0, OTHERS_SHOWN).map((other) => {
      const ringing = live(other);
      return el("div", {
        className: ringing ? "call-other ringing" : "call-other", dataset: { callId: other.call_id, state: other.state },
      },
      el("strong", {}, ringing ? t("call.other_ringing") : t("call.other_waiting")),
      el("span", { className: "call-other-who", title: other.caller }, whoShort(other)),
      other.elder_name || other.contact ? el("span", { className: "muted" }, other.caller) : null,
      el("button", { type: "button", className: "call-switch", onclick: () => pop(other.call_id) },
        ringing ? t("call.switch_ringing") : t("call.switch")));
    });
    if (others.length > OTHERS_SHOWN) {
      items.push(el("button", { type: "button", className: "link", onclick: jumpToCalls },
        t("call.more_waiting", { n: others.length - OTHERS_SHOWN })));
    }
    holder.replaceChildren(...items);
  }

  // A number several elders share: each one, to pick whom the call is about, and "someone else". The one
  // picked is marked; another click changes the pick (each on record) until the call is classified.
  function paintHousehold(call) {
    const holder = $("call-pop-household");
    const offered = call.kind ? [] : offeredOf(call);
    const busy = picking.has(call.call_id);
    const chosen = call.picked ? call.picked.elder_id : undefined;
    const key = JSON.stringify([call.call_id, offered, call.picked, busy]);
    if (holder.dataset.key === key) return;
    holder.dataset.key = key;
    holder.hidden = !offered.length;
    if (!offered.length) {
      holder.replaceChildren();
      return;
    }
    const pickButton = (elderId, ...words) => {
      const button = el("button", {
        type: "button", className: "household-pick", disabled: busy, dataset: { elderId: elderId || "" },
        onclick: () => pickCaller(call, elderId),
      }, ...words);
      button.setAttribute("aria-pressed", String(chosen === elderId));
      return button;
    };
    const title = call.caller_is === "household" ? t("call.household_pick") : t("call.contact_pick");
    holder.replaceChildren(
      el("span", { className: "classify-label" }, title),
      ...offered.map((o) => pickButton(o.elder_id,
        el("strong", {}, o.name),
        o.age !== null && o.age !== undefined ? el("span", { className: "household-age" }, t("call.household_age", { age: o.age })) : null,
        o.relation && call.caller_is !== "household" ? el("span", { className: "muted" }, o.relation) : null,
        el("span", { className: "household-address muted" }, o.address))),
      pickButton(null, t("call.household_other")),
      ...(call.picked ? [el("span", { className: "muted household-by" },
        t("call.household_picked_by", { name: call.picked.by || t("call.someone"), time: fmtTime(call.picked.at) }))] : []));
  }

  async function pickCaller(call, elderId) {
    if (picking.has(call.call_id)) return;
    picking.add(call.call_id);
    $("call-pop-error").textContent = "";
    render();
    try {
      const answer = await session.api("POST", `/api/calls/${encodeURIComponent(call.call_id)}/pick`, { elder_id: elderId });
      const desk = desks.get(call.call_id);
      if (desk) desk.linkKey = null;
      put(answer);
    } catch (error) {
      if (app.popCallId === call.call_id) $("call-pop-error").textContent = errorText(error);
    } finally {
      picking.delete(call.call_id);
      render();
    }
  }

  function paintRecord(call) {
    const holder = $("call-pop-record");
    const elderId = recordElderId(call);
    if (!elderId) {
      const waiting = offeredOf(call).length && !call.picked && !call.kind;
      const shown = waiting ? "pick" : "none";
      if (holder.dataset.shown !== shown) renderNoRecord(holder, t(waiting ? "call.household_pick_first" : "call.no_record"));
      holder.dataset.shown = shown;
      return;
    }
    if (!popRecord || popRecord.elderId !== elderId) {
      loadRecord(elderId);
      renderNoRecord(holder, t("record.loading"));
      holder.dataset.shown = "";
      return;
    }
    const key = `${elderId}|${popRecord.record ? "record" : popRecord.error ? "error" : "loading"}`;
    if (holder.dataset.shown === key) return;
    holder.dataset.shown = key;
    if (popRecord.record) renderRecord(holder, popRecord.record, { compact: true, responderName, callId: call.call_id });
    else if (popRecord.error) renderNoRecord(holder, popRecord.error);
    else renderNoRecord(holder, t("record.loading"));
  }

  // The classification bar: shown while an answered call waits for the operator's word. Each call keeps its
  // own (what was typed, the elder found, the place), so switching between two calls loses nothing.
  function paintDesk(call) {
    const waiting = inHand(call);
    $("classify").hidden = !waiting;
    if (!waiting) return;
    let desk = desks.get(call.call_id);
    if (!desk) desk = newDesk(call);
    if ($("classify").dataset.callId !== call.call_id) {
      $("classify").dataset.callId = call.call_id;
      $("classify-who").replaceChildren(desk.search.node);
      $("classify-place").replaceChildren(desk.place.node);
      $("classify-text").value = desk.text;
      $("classify-alarm").value = desk.alarm;
      desk.linkKey = null;
    }
    const elderId = recordElderId(call);
    const open = elderId ? [...app.incidents.values()].filter((v) => v.open && v.elder_id === elderId) : [];
    const linkKey = open.map((v) => `${v.incident_id}:${v.state}`).join() + (desk.busy ? "|busy" : "");
    if (desk.linkKey !== linkKey) {
      desk.linkKey = linkKey;
      $("classify-links").replaceChildren(...open.map((v) => el("button", {
        type: "button", className: "classify-link", dataset: { incidentId: v.incident_id }, disabled: desk.busy,
        onclick: () => classify("emergency", { incident_id: v.incident_id }),
      }, t("call.link_incident", { id: v.incident_id, type: label("alarm", v.alarm_type), state: label("state", v.state) }))));
    }
    // a number several elders share: the elder search and the place wait for the pick ("someone else" opens them)
    $("classify-unknown").hidden = Boolean(call.elder_id) || (offeredOf(call).length > 0 && !call.picked);
    for (const button of document.querySelectorAll("#classify button[data-kind]")) button.disabled = desk.busy;
  }

  function newDesk(call) {
    const search = elderSearch(session, {
      id: "classify-elder",
      onPick: () => {
        const desk = desks.get(call.call_id);
        if (desk) desk.linkKey = null;
        render();
      },
    });
    const place = placePicker(session, {
      id: "classify-address",
      centre: () => middleOf([...app.responders.values()]),
      landmarks: () => landmarksOf(app),
      places: (centre) => nearbyPlaces(session, app, centre),
      tiles: () => app.config.map_tiles,
    });
    const desk = { callId: call.call_id, search, place, text: "", alarm: "fall", busy: false, linkKey: null };
    desks.set(call.call_id, desk);
    if (!call.elder_id && call.contact && call.contact.elder_id) {
      search.choose({
        elder_id: call.contact.elder_id, name: call.contact.elder_name, address: call.contact.address, phone: "",
      });
    }
    return desk;
  }

  /** Desks of calls no longer waiting for a word are dropped. */
  function forgetDesks() {
    for (const [callId, desk] of desks) {
      const call = app.calls.get(callId);
      if (call && inHand(call)) continue;
      if (desk.busy) continue;
      if (call && call.kind && !desk.mine && desk.text.trim()) taken.set(callId, { text: desk.text.trim(), noted: false });
      desks.delete(callId);
      if ($("classify").dataset.callId === callId) delete $("classify").dataset.callId;
    }
  }

  function paintResult(call) {
    const parts = [];
    if (call.kind) {
      const incident = call.incident_id ? app.incidents.get(call.incident_id) : null;
      const joined = call.kind === "emergency" && incident && incident.call_id !== call.call_id;
      parts.push(el("span", { className: "classified", dataset: { kind: call.kind } }, joined
        ? t("call.joined", { id: call.incident_id, type: label("alarm", incident.alarm_type) })
        : t("call.classified_as", { kind: label("callkind", call.kind) })));
      if (call.text) parts.push(el("span", { className: "muted" }, call.text));
      if (call.kind === "service") parts.push(orderPart(call));
    } else if (call.state === "ended" && !call.answered_at) parts.push(el("span", {}, t("call.missed")));
    if (over(call)) parts.push(el("span", { className: "muted call-closing" }, t("call.closing")));
    const key = JSON.stringify([call.kind, call.text, call.incident_id, call.state, call.answered_at, call.elder_id,
      parts.map((part) => part.textContent)]);
    if ($("call-pop-result").dataset.key === key) return;
    $("call-pop-result").dataset.key = key;
    $("call-pop-result").replaceChildren(...parts);
  }

  // A service request: the order for the caller's elder, placed at once from the call (source "call").
  function orderPart(call) {
    const order = ordered.get(call.call_id);
    if (order) {
      return el("a", { className: "call-order", href: `/services#order=${encodeURIComponent(order.order_id)}`, target: "_blank" },
        t("call.order_placed", { id: order.order_id }));
    }
    if (!call.elder_id) return el("span", { className: "muted" }, t("call.order_needs_elder"));
    return el("button", { type: "button", className: "call-order primary", onclick: () => placeOrder(call) },
      t("call.place_order"));
  }

  async function placeOrder(call) {
    if (!call.elder_id) return;
    try {
      const order = await orderDialog(session, {
        elder: { elder_id: call.elder_id, name: call.elder_name }, callId: call.call_id,
      });
      if (order) {
        ordered.set(call.call_id, order);
        taken.delete(call.call_id);
        $("call-pop-result").dataset.key = "";
        render();
      }
    } catch (error) {
      $("call-pop-error").textContent = errorText(error);
    }
  }

  async function classify(kind, extra = {}) {
    const call = app.popCallId ? app.calls.get(app.popCallId) : null;
    const desk = call ? desks.get(call.call_id) : null;
    if (!call || !desk || desk.busy) return;
    const body = { kind, text: $("classify-text").value.trim(), ...extra };
    const who = desk.search.chosen();
    if (who && !call.elder_id) body.elder_id = who.elder_id;
    if (kind === "emergency" && !extra.incident_id) {
      body.alarm_type = $("classify-alarm").value;
      if (!call.elder_id) Object.assign(body, desk.place.value() || {});
    }
    const elderId = body.elder_id || recordElderId(call);
    const before = kind === "emergency" && elderId
      ? [...app.incidents.values()].find((v) => v.open && v.elder_id === elderId) || null : null;
    desk.busy = true;
    desk.mine = true;
    desk.linkKey = null;
    $("call-pop-error").textContent = "";
    render();
    try {
      const answer = await session.api("POST", `/api/calls/${encodeURIComponent(call.call_id)}/classify`, body);
      put(answer);
      if (answer.incident_id) select(answer.incident_id);
      if (kind === "service" && answer.elder_id) placeOrder(answer); // the order form follows the word at once
      if (before && answer.incident_id === before.incident_id) {
        // joined the elder's open incident: the panel says so, and whether someone was sent again
        const view = await session.api("GET", `/api/incidents/${encodeURIComponent(before.incident_id)}`)
          .catch(() => null);
        if (view && app.selectedId === view.incident_id) notice(joinedWords(view, before));
      }
    } catch (error) {
      desk.mine = false;
      if (app.popCallId === call.call_id) $("call-pop-error").textContent = errorText(error);
    } finally {
      desk.busy = false;
      desk.linkKey = null;
      render();
    }
  }

  // -- the list ---------------------------------------------------------------------------------------------

  function renderList() {
    const now = serverNow();
    for (const [id, call] of app.calls) {
      if (call.open) {
        closedSeen.delete(id);
        continue;
      }
      if (!closedSeen.has(id)) closedSeen.set(id, now);
      if (now - closedSeen.get(id) > CALL_KEEP_S && id !== app.popCallId) {
        app.calls.delete(id);
        closedSeen.delete(id);
        dismissed.delete(id);
      }
    }
    const calls = [...app.calls.values()].sort((a, b) => b.started_at - a.started_at);
    const list = $("calls");
    const keep = new Map([...list.children].map((item) => [item.dataset.callId, item]));
    const items = calls.map((call) => {
      const key = JSON.stringify([call, app.popCallId === call.call_id, callbackOpen === call.call_id]);
      let item = keep.get(call.call_id);
      if (!item || item.dataset.key !== key) item = callItem(call, key);
      return item;
    });
    if (items.length !== list.children.length || items.some((item, i) => list.children[i] !== item)) {
      list.replaceChildren(...items);
    }
    $("calls-empty").hidden = calls.length > 0;
    const pending = calls.filter((c) => needsWord(c) || c.callback === "due").length;
    $("calls-count").textContent = pending ? t("calls.pending", { n: pending }) : "";
    paintJump(calls, pending);
  }

  // The way to the list from the top of the queue: how many calls wait, one click away.
  function paintJump(calls, pending) {
    const ringing = calls.filter((c) => c.open && live(c) && !outbound(c)).length;
    const jump = $("calls-jump");
    jump.dataset.ringing = String(ringing);
    jump.dataset.pending = String(pending + ringing);
    jump.classList.toggle("ringing", ringing > 0);
    jump.classList.toggle("pending", pending + ringing > 0);
    $("calls-jump-count").textContent = pending + ringing ? String(pending + ringing) : "";
    jump.title = t("calls.jump_title", { ringing, pending });
  }

  function jumpToCalls() {
    $("calls-panel").scrollIntoView({ block: "start", behavior: "smooth" });
  }

  const needsWord = (call) => !outbound(call) && Boolean(call.answered_at) && !call.kind && !othersCall(call);

  let callbackOpen = null; // the call whose call-back form is open

  function callItem(call, key) {
    const classes = ["call", `call-${call.state}`];
    if (needsWord(call)) classes.push("call-unclassified");
    if (call.callback === "due") classes.push("call-callback");
    if (call.caller_is === "unknown") classes.push("call-unknown");
    if (app.popCallId === call.call_id) classes.push("call-popped");
    let status;
    if (call.callback === "due") status = t("calls.callback_due");
    else if (call.kind) status = label("callkind", call.kind);
    else if (needsWord(call)) status = t("calls.unclassified");
    else if (outbound(call) && call.outcome) status = outcomeWords(call);
    else status = label("call", call.state);
    const facts = callFacts(call);
    // over (missed, abandoned, a silent call to call back, or done): the number can be called back from here
    const number = call.state === "ended" && !outbound(call) ? dialNumber(call.caller) : null;
    // an outbound call shows the number it called; who it is, when the registry knows
    const unknown = whoShort(call) === call.caller;
    const who = unknown ? (outbound(call) ? "" : t("call.unknown_number")) : whoShort(call);
    const item = el("li", {
      className: classes.join(" "),
      dataset: { callId: call.call_id, state: call.state, kind: call.kind || "", key },
    },
    el("span", { className: "call-time" }, fmtTime(call.started_at)),
    el("span", { className: "call-caller" }, call.caller),
    number ? dialButton(number, { elderId: call.elder_id || null, callId: call.call_id, incidentId: call.incident_id || null }) : null,
    el("span", { className: "call-who", title: who }, who),
    el("span", { className: "call-state" }, status),
    call.incident_id ? el("button", {
      type: "button", className: "link", onclick: () => select(call.incident_id),
    }, call.incident_id) : null,
    (needsWord(call) || (call.open && live(call) && !outbound(call))) && app.popCallId !== call.call_id
      ? el("button", { type: "button", className: "call-take", onclick: () => pop(call.call_id) }, t("calls.take"))
      : null,
    call.callback === "due" ? el("button", {
      type: "button", className: "call-back", onclick: () => {
        callbackOpen = callbackOpen === call.call_id ? null : call.call_id;
        render();
      },
    }, t("calls.called_back")) : null);
    if (facts.length) item.append(el("div", { className: "call-facts" }, ...facts));
    if (callbackOpen === call.call_id) item.append(callbackForm(call));
    return item;
  }

  // The call-back form checks itself (novalidate: no browser bubble in another language).
  function callbackForm(call) {
    const input = el("input", {
      className: "callback-outcome", maxLength: 1000,
      placeholder: t("calls.callback_placeholder"), dataset: { i18nPlaceholder: "calls.callback_placeholder" },
    });
    const error = el("span", { className: "error", role: "alert" });
    const form = el("form", { className: "callback-form", noValidate: true }, input,
      el("button", { type: "submit" }, t("form.confirm")), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const outcome = input.value.trim();
      if (!outcome) {
        error.textContent = t("error.outcome_required");
        input.focus();
        return;
      }
      try {
        put(await session.api("POST", `/api/calls/${encodeURIComponent(call.call_id)}/callback`, { outcome }));
        callbackOpen = null;
        render();
      } catch (failure) {
        error.textContent = errorText(failure);
      }
    });
    setTimeout(() => input.focus(), 0);
    return form;
  }

  // -- wiring -------------------------------------------------------------------------------------------

  $("call-pop-open").addEventListener("click", (event) => select(event.target.dataset.incidentId));
  $("call-pop-dismiss").addEventListener("click", dismiss);
  $("calls-jump").addEventListener("click", jumpToCalls);
  $("classify").addEventListener("submit", (event) => event.preventDefault());
  $("classify-text").addEventListener("input", () => {
    const desk = app.popCallId ? desks.get(app.popCallId) : null;
    if (desk) desk.text = $("classify-text").value;
  });
  $("classify-alarm").addEventListener("change", () => {
    const desk = app.popCallId ? desks.get(app.popCallId) : null;
    if (desk) desk.alarm = $("classify-alarm").value;
  });
  for (const button of document.querySelectorAll("#classify button[data-kind]")) {
    button.addEventListener("click", () => classify(button.dataset.kind));
  }

  return {
    snapshot,
    entry,
    callerOf,
    /** How many calls wait for the operator (ringing, or answered and not classified): the window title. */
    waitingCount: () => [...app.calls.values()].filter(waitingCall).length,
    render() {
      renderPop();
      renderList();
    },
    clear() {
      app.calls.clear();
      closedSeen.clear();
      desks.clear();
      dismissed.clear();
      taken.clear();
      ordered.clear();
      stopClosing();
      delete $("classify").dataset.callId;
      app.popCallId = null;
      popRecord = null;
    },
    relabel() {
      $("call-pop-record").dataset.shown = "";
      $("call-pop-result").dataset.key = "";
      $("call-pop-others").dataset.key = "";
      $("call-pop-taken").dataset.key = "";
      $("call-pop-household").dataset.key = "";
      for (const desk of desks.values()) desk.linkKey = null;
      $("calls").replaceChildren();
    },
  };
}
