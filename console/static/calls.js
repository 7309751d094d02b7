// Hotline calls on the console: the pop-up of the call in hand and the list of calls still on the desk.
//
// An answered call opens nothing by itself: the operator hears the caller, then says what the call was
// (POST /api/calls/{id}/classify) — an emergency with its alarm type (an incident opens and matching starts,
// or the call joins an incident already open for this elder), a service request, a consultation, a
// complaint, a wrong number, a silent call (which leaves a call back to make). A caller the registry does
// not know can be identified with the elder search and placed by address or on the map.
//
// How it stays current
//   app.calls holds the server's call views (GET /api/calls/{id}): the snapshot brings the open ones, and
//   each call.* entry of the feed has its call read again (one request at a time per call).
"use strict";

import { $, el, errorText, serverNow } from "./common.js";
import { fmtTime, label, t } from "./i18n.js";
import { elderSearch, landmarksOf, middleOf, placePicker } from "./places.js";
import { renderNoRecord, renderRecord } from "./record.js";
import { beep } from "./sound.js";

const CALL_KEEP_S = 60; // a call off the desk (classified and ended) stays in the list this long

export function createCalls({ app, session, render, select, responderName }) {
  const fetching = new Set();
  const again = new Set();
  const closedSeen = new Map(); // call_id -> server time it was first seen off the desk
  const known = new Map(); // call_id -> caller, for incidents whose call is no longer on the desk
  let popRecord = null; // {elderId, record} or {elderId, error}
  let desk = null; // the classification bar of the popped call: {callId, search, place}

  // -- keeping the calls current ----------------------------------------------------------------------

  function snapshot(calls) {
    app.calls = new Map(calls.map((call) => [call.call_id, call]));
    for (const call of calls) known.set(call.call_id, call.caller);
    const ringing = calls.find((c) => c.state === "ringing");
    const talking = calls.find((c) => c.state === "answered" && !c.kind);
    if (ringing || talking) pop((ringing || talking).call_id);
  }

  function entry(item) {
    const p = item.payload || {};
    if (!p.call_id) return;
    if (item.kind === "call.ringing") {
      const call = {
        call_id: p.call_id, caller: p.caller, line: p.line, elder_id: p.elder_id || null, state: "ringing",
        open: true, started_at: item.ts, caller_is: p.elder_id ? "elder" : "unknown", contact: null, kind: null,
      };
      app.calls.set(p.call_id, { ...call, ...(app.calls.get(p.call_id) || {}) });
      known.set(p.call_id, p.caller);
      if (mayPop()) pop(p.call_id);
      beep({ times: 1, hz: 660 });
    } else {
      const call = app.calls.get(p.call_id);
      if (call && item.kind === "call.answered") call.state = "answered";
      if (call && item.kind === "call.ended") call.state = "ended";
    }
    refetch(p.call_id);
  }

  // A new ringing call takes the pop-up unless the operator is still on another call there.
  function mayPop() {
    const current = app.popCallId ? app.calls.get(app.popCallId) : null;
    return !current || !current.open || (current.state === "ended" && current.kind !== null);
  }

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
      desk = null;
      $("call-pop-error").textContent = "";
    }
    render();
  }

  function dismiss() {
    app.popCallId = null;
    popRecord = null;
    desk = null;
    render();
  }

  /** Whose record the pop-up shows: the caller's, the elder a family contact calls about, or the one found. */
  function recordElderId(call) {
    if (call.elder_id) return call.elder_id;
    const found = desk && desk.callId === call.call_id ? desk.search.chosen() : null;
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

  function whoText(call) {
    if (call.caller_is === "elder" || call.elder_id) {
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

  function renderPop() {
    const call = app.popCallId ? app.calls.get(app.popCallId) : null;
    const box = $("call-pop");
    box.hidden = !call;
    if (!call) {
      for (const id of ["call-pop-caller", "call-pop-who", "call-pop-state", "call-pop-record", "call-pop-result",
        "classify-links", "classify-who", "classify-place"]) $(id).replaceChildren();
      $("call-pop-record").dataset.shown = "";
      $("classify").hidden = true;
      return;
    }
    box.dataset.callId = call.call_id;
    box.dataset.state = call.state;
    box.dataset.callerIs = call.caller_is || "unknown";
    $("call-pop-caller").textContent = call.caller;
    $("call-pop-who").textContent = whoText(call);
    $("call-pop-line").textContent = call.line ? t("call.line", { line: call.line }) : "";
    $("call-pop-state").textContent = label("call", call.state);
    $("call-pop-open").hidden = !call.incident_id;
    $("call-pop-open").dataset.incidentId = call.incident_id || "";
    paintRecord(call);
    paintDesk(call);
    paintResult(call);
  }

  function paintRecord(call) {
    const holder = $("call-pop-record");
    const elderId = recordElderId(call);
    if (!elderId) {
      if (holder.dataset.shown !== "none") renderNoRecord(holder, t("call.no_record"));
      holder.dataset.shown = "none";
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
    if (popRecord.record) renderRecord(holder, popRecord.record, { compact: true, responderName });
    else if (popRecord.error) renderNoRecord(holder, popRecord.error);
    else renderNoRecord(holder, t("record.loading"));
  }

  // The classification bar: shown while an answered call waits for the operator's word.
  function paintDesk(call) {
    const waiting = Boolean(call.answered_at) && !call.kind;
    $("classify").hidden = !waiting;
    if (!waiting) return;
    if (!desk || desk.callId !== call.call_id) newDesk(call);
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
    $("classify-unknown").hidden = Boolean(call.elder_id);
    for (const button of document.querySelectorAll("#classify button[data-kind]")) button.disabled = desk.busy;
  }

  function newDesk(call) {
    const search = elderSearch(session, {
      id: "classify-elder",
      onPick: () => {
        desk.linkKey = null;
        render();
      },
    });
    const place = placePicker(session, {
      id: "classify-address",
      centre: () => middleOf([...app.responders.values()]),
      landmarks: () => landmarksOf(app),
      tiles: () => app.config.map_tiles,
    });
    desk = { callId: call.call_id, search, place, busy: false, linkKey: null };
    if (!call.elder_id && call.contact) {
      search.choose({
        elder_id: call.contact.elder_id, name: call.contact.elder_name, address: call.contact.address, phone: "",
      });
    }
    $("classify-who").replaceChildren(search.node);
    $("classify-place").replaceChildren(place.node);
    $("classify-text").value = "";
    $("classify-alarm").value = "fall";
  }

  function paintResult(call) {
    const parts = [];
    if (call.kind) {
      parts.push(el("span", { className: "classified", dataset: { kind: call.kind } },
        t("call.classified_as", { kind: label("callkind", call.kind) })));
      if (call.text) parts.push(el("span", { className: "muted" }, call.text));
    } else if (call.state === "ended" && !call.answered_at) parts.push(el("span", {}, t("call.missed")));
    $("call-pop-result").replaceChildren(...parts);
  }

  async function classify(kind, extra = {}) {
    const call = app.popCallId ? app.calls.get(app.popCallId) : null;
    if (!call || !desk || desk.busy) return;
    const body = { kind, text: $("classify-text").value.trim(), ...extra };
    const who = desk.search.chosen();
    if (who && !call.elder_id) body.elder_id = who.elder_id;
    if (kind === "emergency" && !extra.incident_id) {
      body.alarm_type = $("classify-alarm").value;
      if (!call.elder_id) Object.assign(body, desk.place.value() || {});
    }
    desk.busy = true;
    desk.linkKey = null;
    $("call-pop-error").textContent = "";
    render();
    try {
      const answer = await session.api("POST", `/api/calls/${encodeURIComponent(call.call_id)}/classify`, body);
      put(answer);
      if (answer.incident_id) select(answer.incident_id);
    } catch (error) {
      $("call-pop-error").textContent = errorText(error);
    } finally {
      if (desk) {
        desk.busy = false;
        desk.linkKey = null;
      }
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
  }

  const needsWord = (call) => Boolean(call.answered_at) && !call.kind;

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
    else status = label("call", call.state);
    const who = call.elder_name || (call.contact ? t("calls.contact_of", { elder: call.contact.elder_name }) : t("call.unknown_number"));
    const item = el("li", {
      className: classes.join(" "),
      dataset: { callId: call.call_id, state: call.state, kind: call.kind || "", key },
    },
    el("span", { className: "call-time" }, fmtTime(call.started_at)),
    el("span", { className: "call-caller" }, call.caller),
    el("span", { className: "call-who", title: who }, who),
    el("span", { className: "call-state" }, status),
    call.incident_id ? el("button", {
      type: "button", className: "link", onclick: () => select(call.incident_id),
    }, call.incident_id) : null,
    needsWord(call) ? el("button", { type: "button", className: "call-take", onclick: () => pop(call.call_id) },
      t("calls.take")) : null,
    call.callback === "due" ? el("button", {
      type: "button", className: "call-back", onclick: () => {
        callbackOpen = callbackOpen === call.call_id ? null : call.call_id;
        render();
      },
    }, t("calls.called_back")) : null);
    if (callbackOpen === call.call_id) item.append(callbackForm(call));
    return item;
  }

  function callbackForm(call) {
    const input = el("input", {
      className: "callback-outcome", maxLength: 1000, required: true,
      placeholder: t("calls.callback_placeholder"), dataset: { i18nPlaceholder: "calls.callback_placeholder" },
    });
    const error = el("span", { className: "error" });
    const form = el("form", { className: "callback-form" }, input,
      el("button", { type: "submit" }, t("form.confirm")), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const outcome = input.value.trim();
      if (!outcome) {
        error.textContent = t("error.outcome_required");
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
  $("classify").addEventListener("submit", (event) => event.preventDefault());
  for (const button of document.querySelectorAll("#classify button[data-kind]")) {
    button.addEventListener("click", () => classify(button.dataset.kind));
  }

  return {
    snapshot,
    entry,
    callerOf,
    render() {
      renderPop();
      renderList();
    },
    clear() {
      app.calls.clear();
      closedSeen.clear();
      app.popCallId = null;
      popRecord = null;
      desk = null;
    },
    relabel() {
      $("call-pop-record").dataset.shown = "";
      if (desk) desk.linkKey = null;
      $("calls").replaceChildren();
    },
  };
}
