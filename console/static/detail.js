// The incident panel: what happened, the actions, the proposed ranking with one-click dispatch, the override
// to any responder, the clinic, the offers and their progress, the notes.
//
// The panel is rebuilt only when the incident's view changed (or the language), so a button under the mouse
// is not swapped out by unrelated traffic. Actions that need words (cancel: a reason; escalate: a service;
// resolve: an outcome; close: an optional last word) open a small form instead of a browser prompt.
"use strict";

import { $, distanceM, el, errorText, hasPosition } from "./common.js";
import { responderStatusOf } from "./context.js";
import { fmtDistance, fmtEta, fmtTime, label, t } from "./i18n.js";
import { actorText, explain, explainAll } from "./reasons.js";

// Which states allow which action: a mirror of the server's incident table, for greying out buttons.
const ALLOWED = {
  // after acceptance a dispatch reassigns: the server withdraws the current job first
  dispatch: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene", "escalated"]),
  cancel: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene"]),
  escalate: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene"]),
  resolve: new Set(["received", "acknowledged", "dispatching", "assigned", "on_scene", "escalated"]),
  close: new Set(["resolved", "cancelled", "escalated"]),
};
const FORMS = {
  cancel: { title: "form.cancel_title", text: "form.reason", required: true, presets: "cancel" },
  escalate: { title: "form.escalate_title", text: "form.escalate_note", required: false, presets: null },
  resolve: { title: "form.resolve_title", text: "form.outcome", required: true, presets: "resolve" },
  close: { title: "form.close_title", text: "form.close_note", required: false, presets: null },
};
const PRESETS = {
  cancel: ["preset.cancel_mistake", "preset.cancel_test", "preset.cancel_phoned"],
  resolve: ["preset.resolve_helped", "preset.resolve_family", "preset.resolve_hospital"],
};
const OVERRIDE_SHOWN = 8;

export function createDetail({ app, session, putIncident, render, responderName, elderText, searching }) {
  let shown = null; // the view the panel shows
  let form = null; // the action whose form is open

  const current = () => (app.selectedId ? app.incidents.get(app.selectedId) || null : null);

  // -- actions ------------------------------------------------------------------------------------------

  async function post(incidentId, path, body) {
    app.busy = true;
    paintButtons(current());
    $("action-error").textContent = "";
    try {
      const url = `/api/incidents/${encodeURIComponent(incidentId)}/${path}`;
      putIncident(await session.api("POST", url, body));
      return true;
    } catch (error) {
      $("action-error").textContent = errorText(error);
      return false;
    } finally {
      app.busy = false;
      render();
    }
  }

  function firstCandidate(view) {
    const tried = new Set(view.assignments.map((a) => a.responder_id));
    const free = (id) => !(app.responders.get(id) || {}).assignment_id;
    const candidate = view.ranking.find((c) => !tried.has(c.responder_id) && free(c.responder_id));
    return candidate ? candidate.responder_id : null;
  }

  async function act(action, responderId) {
    const view = current();
    if (!view || app.busy) return;
    if (action in FORMS) {
      if (ALLOWED[action].has(view.state)) openForm(action);
      return;
    }
    if (action === "acknowledge") await post(view.incident_id, "acknowledge");
    else if (action === "dispatch") {
      const target = responderId || firstCandidate(view);
      if (target && ALLOWED.dispatch.has(view.state)) await post(view.incident_id, "dispatch", { responder_id: target });
    } else if (action === "note") {
      const text = $("note-text").value.trim();
      if (text && (await post(view.incident_id, "notes", { text }))) $("note-text").value = "";
    }
  }

  async function acknowledge(incidentId) {
    const view = app.incidents.get(incidentId);
    if (!view || view.acknowledged_at || app.busy) return;
    await post(incidentId, "acknowledge");
  }

  // -- the action form ----------------------------------------------------------------------------------

  function openForm(action) {
    form = action;
    $("action-form").hidden = false;
    $("action-form").dataset.action = action;
    $("action-text").value = "";
    $("action-text").required = FORMS[action].required;
    for (const part of document.querySelectorAll("#action-form .form-part")) part.hidden = part.dataset.for !== action;
    labelForm();
    $("action-text").focus();
  }

  // The form's words depend on the action: written on opening and again when the language changes.
  function labelForm() {
    const spec = form ? FORMS[form] : null;
    $("action-form-title").textContent = spec ? t(spec.title) : "";
    $("action-text-label").textContent = spec ? t(spec.text) : "";
    const presets = spec ? PRESETS[spec.presets] || [] : [];
    $("action-presets").replaceChildren(...presets.map((key) => el("option", { value: t(key) })));
  }

  function closeForm() {
    form = null;
    $("action-form").hidden = true;
    labelForm();
  }

  async function submitForm(event) {
    event.preventDefault();
    const view = current();
    if (!view || !form) return;
    const text = $("action-text").value.trim();
    if (FORMS[form].required && !text) return;
    let done;
    if (form === "cancel") done = await post(view.incident_id, "cancel", { reason: text });
    else if (form === "escalate") {
      done = await post(view.incident_id, "escalate", { service: $("action-service").value, note: text });
    } else if (form === "resolve") done = await post(view.incident_id, "resolve", { outcome: text });
    else {
      done = !text || (await post(view.incident_id, "notes", { text }));
      if (done) done = await post(view.incident_id, "close", {});
    }
    if (done) closeForm();
  }

  // -- rendering ----------------------------------------------------------------------------------------

  function renderPanel(view) {
    $("detail").hidden = !view;
    if (!view) {
      if (shown !== null) empty();
      shown = null;
      closeForm();
      return;
    }
    if (shown !== view) {
      $("detail").dataset.incidentId = view.incident_id;
      $("detail").dataset.state = view.state;
      $("detail-title").textContent = `${label("alarm", view.alarm_type)} · ${elderText(view)} · ${view.incident_id}`;
      renderFlags(view);
      renderFacts(view);
      renderRanking(view);
      renderClinic(view);
      renderAssignments(view);
      renderNotes(view);
      shown = view;
    }
    renderOverride(view);
    paintButtons(view);
    if (form && !ALLOWED[form].has(view.state)) closeForm();
  }

  // A closed panel keeps nothing: no stale words after a change of language, no record left behind.
  function empty() {
    for (const id of ["detail-title", "detail-flags", "detail-facts", "ranking-body", "override-list", "clinic",
      "assignments-body", "notes"]) $(id).replaceChildren();
    overrideKey = "";
  }

  function renderFlags(view) {
    const flags = [];
    if (view.needs_manual) {
      flags.push(el("span", { className: "flag flag-manual" },
        t("flag.needs_manual", { reason: explain(view.manual_reason || "") })));
    }
    if (view.supervisor_alerted) flags.push(el("span", { className: "flag flag-alerted" }, t("flag.alerted")));
    if (view.drill) flags.push(el("span", { className: "flag flag-drill" }, t("flag.drill")));
    $("detail-flags").replaceChildren(...flags);
  }

  function renderFacts(view) {
    const call = view.call_id ? app.calls.get(view.call_id) : null;
    const source = [label("source", view.source),
      view.device_id && t("facts.device", { id: view.device_id }),
      call && t("facts.caller", { caller: call.caller })].filter(Boolean).join(" · ");
    const position = hasPosition(view) ? `${view.lat.toFixed(5)}, ${view.lon.toFixed(5)}` : null;
    const facts = [
      ["facts.priority", t("facts.priority_value", {
        level: t("priority.short", { n: view.priority }), reasons: explainAll(view.priority_reasons),
      })],
      ["facts.state", label("state", view.state)],
      ["facts.clock", el("span", { className: "clock", id: "detail-clock" })],
      ["facts.source", source],
      ["facts.elder", elderText(view)],
      ["facts.address", view.address || "—"],
      ["facts.location", [label("location", view.location), position].filter(Boolean).join(" · ")],
      ["facts.opened", fmtTime(view.opened_at)],
      ["facts.acknowledged", view.acknowledged_at
        ? `${actorText(view.acknowledged_by, responderName)} ${fmtTime(view.acknowledged_at)}` : t("facts.not_acknowledged")],
      ["facts.escalated", view.escalated_to ? label("service", view.escalated_to) : "—"],
      ["facts.outcome", view.outcome ? explain(view.outcome, responderName) : "—"],
    ];
    $("detail-facts").replaceChildren(...facts.flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)]));
  }

  function dispatchButton(view, responderId) {
    return el("button", {
      type: "button", className: "dispatch", dataset: { responderId },
      disabled: app.busy || !ALLOWED.dispatch.has(view.state),
      onclick: () => act("dispatch", responderId),
    }, t("action.dispatch"));
  }

  function renderRanking(view) {
    const tried = new Set(view.assignments.map((a) => a.responder_id));
    $("ranking-body").replaceChildren(...view.ranking.map((c, index) => {
      const classes = ["candidate"];
      if (c.own) classes.push("own");
      if (tried.has(c.responder_id)) classes.push("tried");
      return el("tr", { className: classes.join(" "), dataset: { responderId: c.responder_id } },
        el("td", {}, String(index + 1)),
        el("td", {}, c.name, c.own ? el("span", { className: "tag", title: t("ranking.own_title") }, t("ranking.own")) : null),
        el("td", {}, fmtDistance(c.distance_m)),
        el("td", {}, fmtEta(c.eta_s)),
        el("td", {}, label("travel", c.travel)),
        el("td", { className: "reasons" }, explainAll(c.reasons)),
        el("td", {}, dispatchButton(view, c.responder_id)));
    }));
    $("ranking").hidden = view.ranking.length === 0;
    $("ranking-empty").hidden = view.ranking.length > 0;
  }

  // The override: any caregiver or volunteer, found by name, id or community, nearest first.
  let overrideKey = "";
  function renderOverride(view) {
    const query = $("override-search").value.trim().toLowerCase();
    const people = [...app.responders.values()].filter((r) => r.kind !== "clinic");
    const key = `${view.incident_id}|${view.state}|${query}|${app.busy}|${people.map((r) => `${r.assignment_id}${r.on_duty}`).join()}`;
    if (key === overrideKey) return;
    overrideKey = key;
    const matches = people
      .filter((r) => !query || [r.name, r.responder_id, r.community].some((s) => s.toLowerCase().includes(query)))
      .map((r) => ({ r, distance: hasPosition(view) && hasPosition(r) ? distanceM(view.lat, view.lon, r.lat, r.lon) : null }))
      .sort((a, b) => (a.distance ?? Infinity) - (b.distance ?? Infinity))
      .slice(0, OVERRIDE_SHOWN);
    $("override-list").replaceChildren(...matches.map(({ r, distance }) => {
      const status = responderStatusOf(app, r);
      return el("li", { className: `override status-${status}`, dataset: { responderId: r.responder_id } },
        el("span", { className: "override-name" }, r.name),
        el("span", { className: "muted" }, label("kind", r.kind)),
        el("span", { className: `status status-${status}` }, label("rstatus", status)),
        el("span", {}, fmtDistance(distance)),
        dispatchButton(view, r.responder_id));
    }));
  }

  function renderClinic(view) {
    const clinic = view.clinic;
    $("clinic").replaceChildren(clinic
      ? el("p", { className: "clinic", dataset: { clinicId: clinic.clinic_id } },
        el("strong", {}, clinic.name), ` · ${fmtDistance(clinic.distance_m)} · ${fmtEta(clinic.eta_s)} `,
        el("span", { className: "reasons" }, explainAll(clinic.reasons)))
      : el("p", { className: "empty" }, t("clinic.none")));
  }

  function renderAssignments(view) {
    $("assignments-body").replaceChildren(...view.assignments.map((a) => el("tr", {
      className: `assignment assignment-${a.state}`,
      dataset: { assignmentId: a.assignment_id, state: a.state, responderId: a.responder_id },
    },
    el("td", {}, a.responder_name || a.responder_id),
    el("td", { className: "assignment-state" }, label("assignment", a.state)),
    el("td", {}, fmtTime(a.offered_at)),
    el("td", {}, fmtEta(a.eta_s)),
    el("td", {}, explain(a.note, responderName)))));
    $("assignments").hidden = view.assignments.length === 0;
    $("assignments-empty").hidden = view.assignments.length > 0;
  }

  function renderNotes(view) {
    $("notes").replaceChildren(...view.notes.map((note) => el("li", { className: "note" },
      el("span", { className: "note-time" }, fmtTime(note.ts)),
      el("span", { className: "note-actor" }, actorText(note.actor, responderName)),
      el("span", { className: "note-text" }, explain(note.text, responderName)))));
  }

  function paintButtons(view) {
    if (!view) return;
    const can = {
      acknowledge: view.open && !view.acknowledged_at,
      dispatch: ALLOWED.dispatch.has(view.state) && firstCandidate(view) !== null,
      cancel: ALLOWED.cancel.has(view.state),
      escalate: ALLOWED.escalate.has(view.state),
      resolve: ALLOWED.resolve.has(view.state),
      close: ALLOWED.close.has(view.state),
      note: view.state !== "closed",
    };
    for (const button of document.querySelectorAll("#detail button[data-action]")) {
      button.disabled = app.busy || !can[button.dataset.action];
    }
    for (const button of document.querySelectorAll("#detail button.dispatch")) {
      button.disabled = app.busy || !ALLOWED.dispatch.has(view.state);
    }
  }

  // -- wiring -------------------------------------------------------------------------------------------

  $("detail-actions").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.dataset.action);
  });
  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("note");
  });
  $("action-form").addEventListener("submit", submitForm);
  $("action-back").addEventListener("click", closeForm);
  $("override-search").addEventListener("input", () => render());
  $("override-search").addEventListener("focus", searching);

  return {
    render: renderPanel,
    act,
    acknowledge,
    closeForm,
    formOpen: () => form !== null,
    focusSearch: () => $("override-search").focus(),
    /** Another incident was opened: forget the last one's form and message. */
    reset() {
      shown = null;
      overrideKey = "";
      closeForm();
      $("action-error").textContent = "";
    },
    /** The language changed: write everything again, keep what the operator was doing. */
    relabel() {
      shown = null;
      overrideKey = "";
      labelForm();
    },
  };
}
