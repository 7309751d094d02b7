// The incident panel: what happened, what the caregiver proposes, the actions, the proposed ranking with
// one-click dispatch, the override to any responder, the clinic, the offers and their progress, the notes.
//
// Rules
//   1. The buttons are exactly the incident's `actions` (the server's word on what its state allows); nothing
//      here mirrors the state table.
//   2. Nothing that cannot be taken back happens on one click: replacing a responder who accepted, is on the
//      way or at the door asks first (in the page), naming them and what they are doing; the server refuses
//      it anyway without `replace` (409 replace_needs_confirmation), and that refusal asks too.
//   3. A responder busy elsewhere has no enabled dispatch button.
//   4. The panel is rebuilt only when the incident's view changed (or the language), so a button under the
//      mouse is not swapped out by unrelated traffic. Actions that need words open a small form.
"use strict";

import { $, actorWords, distanceM, el, errorText, hasPosition } from "./common.js";
import { responderStatusOf } from "./context.js";
import { phoneLink } from "./dial.js";
import { ask } from "./dialogs.js";
import { fmtDistance, fmtEta, fmtTime, label, t } from "./i18n.js";
import { landmarksOf, middleOf, nearbyPlaces, placePicker } from "./places.js";
import { explain, explainAll } from "./reasons.js";

const FORMS = {
  cancel: { title: "form.cancel_title", text: "form.reason", required: true, presets: "cancel" },
  escalate: { title: "form.escalate_title", text: "form.escalate_note", required: false, presets: null },
  resolve: { title: "form.resolve_title", text: "form.outcome", required: true, presets: "resolve" },
  close: { title: "form.close_title", text: "form.close_note", required: false, presets: null },
  retype: { title: "form.retype_title", text: "form.retype_note", required: false, presets: null },
};
const PRESETS = {
  cancel: ["preset.cancel_mistake", "preset.cancel_test", "preset.cancel_phoned"],
  resolve: ["preset.resolve_helped", "preset.resolve_family", "preset.resolve_hospital"],
};
const OVERRIDE_SHOWN = 8;
const WORKING = new Set(["accepted", "en_route", "on_scene"]);

export function createDetail({
  app, session, putIncident, render, responderName, elderText, callerOf, awaitingDecision, searching, backlogPlace,
}) {
  let shown = null; // the view the panel shows
  let shownPlace = 0; // and its place in the backlog (0: not waiting)
  let form = null; // the action whose form is open
  let submitting = false; // my own action form is being sent
  let stale = false; // the form's action went away under it (someone else changed the incident)
  let locating = false; // the locate form is open
  let notices = []; // [key, params] of what the page did for the operator on this incident (a merge, ...)

  const current = () => (app.selectedId ? app.incidents.get(app.selectedId) || null : null);
  const may = (view, action) => Boolean(view) && view.actions.includes(action);
  const mayDispatch = (view) => may(view, "dispatch") || may(view, "replace");
  const busyElsewhere = (responderId) => Boolean((app.responders.get(responderId) || {}).assignment_id);

  // -- actions ------------------------------------------------------------------------------------------

  /** POSTs an incident action; true when done, else the error (shown unless `quiet`). */
  async function post(incidentId, path, body, { quiet = false } = {}) {
    app.busy = true;
    paintButtons(current());
    $("action-error").textContent = "";
    try {
      const url = `/api/incidents/${encodeURIComponent(incidentId)}/${path}`;
      putIncident(await session.api("POST", url, body));
      return true;
    } catch (error) {
      if (!quiet) $("action-error").textContent = errorText(error);
      return error;
    } finally {
      app.busy = false;
      render();
    }
  }

  function firstCandidate(view) {
    const tried = new Set(view.assignments.map((a) => a.responder_id));
    const candidate = view.ranking.find((c) => !tried.has(c.responder_id) && !busyElsewhere(c.responder_id));
    return candidate ? candidate.responder_id : null;
  }

  function askReplace(view, targetId, params) {
    const working = view.assignments.find((a) => WORKING.has(a.state));
    const who = params ? params.responder : working ? working.responder_name || responderName(working.responder_id) : "—";
    const state = params ? params.state : working ? working.state : "";
    return ask({
      title: t("replace.title"),
      text: t("replace.text", {
        current: who, state: label("assignment", state), target: responderName(targetId), incident: view.incident_id,
      }),
      yes: t("replace.yes"),
      no: t("replace.no"),
    });
  }

  async function dispatchTo(view, responderId) {
    const target = responderId || firstCandidate(view);
    if (!target || !mayDispatch(view) || busyElsewhere(target)) {
      if (!target) $("action-error").textContent = t("dispatch.no_candidate");
      return;
    }
    let replace = false;
    if (may(view, "replace")) {
      if (!(await askReplace(view, target, null))) return;
      replace = true;
    }
    const body = replace ? { responder_id: target, replace } : { responder_id: target };
    const done = await post(view.incident_id, "dispatch", body, { quiet: true });
    if (done === true) return;
    if (done.code === "replace_needs_confirmation" && !replace) {
      // someone accepted meanwhile: the same question, with the server's names
      if (await askReplace(view, target, done.params)) {
        await post(view.incident_id, "dispatch", { responder_id: target, replace: true });
      }
      return;
    }
    $("action-error").textContent = errorText(done);
  }

  async function act(action, responderId) {
    const view = current();
    if (!view || app.busy) return;
    if (action in FORMS) {
      if (may(view, action)) openForm(action);
    } else if (action === "acknowledge") {
      if (may(view, "acknowledge")) await post(view.incident_id, "acknowledge");
    } else if (action === "dispatch") await dispatchTo(view, responderId);
    else if (action === "locate") {
      if (may(view, "locate")) openLocate();
    } else if (action === "note") await addNote(view);
  }

  async function addNote(view) {
    const text = $("note-text").value.trim();
    $("note-error").textContent = "";
    if (!text) {
      $("note-error").textContent = t("error.note_required");
      $("note-text").focus();
      return;
    }
    const shared = $("note-shared").checked;
    const done = await post(view.incident_id, "notes", { text, shared }, { quiet: true });
    if (done === true) $("note-text").value = "";
    else $("note-error").textContent = errorText(done);
  }

  async function acknowledge(incidentId) {
    const view = app.incidents.get(incidentId);
    if (!view || !may(view, "acknowledge") || app.busy) return;
    await post(incidentId, "acknowledge");
  }

  // -- the action form ----------------------------------------------------------------------------------

  function openForm(action, { text = "", service = null } = {}) {
    closeLocate();
    form = action;
    $("action-form").hidden = false;
    $("action-form").dataset.action = action;
    $("action-text").value = text;
    $("action-text").setAttribute("aria-required", String(FORMS[action].required));
    $("action-error").textContent = "";
    if (service) $("action-service").value = service;
    if (action === "retype") {
      const view = current();
      if (view) $("action-alarm-type").value = view.alarm_type;
    }
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
    markStale(null);
    $("action-form").hidden = true;
    labelForm();
  }

  async function submitForm(event) {
    event.preventDefault();
    const view = current();
    if (!view || !form || stale) return;
    const text = $("action-text").value.trim();
    if (FORMS[form].required && !text) {
      // our own words, not the browser's bubble (the form is novalidate)
      $("action-error").textContent = t(form === "cancel" ? "error.reason_required" : "error.outcome_required");
      $("action-text").focus();
      return;
    }
    let done;
    submitting = true;
    try {
      done = await sendForm(view, text);
    } finally {
      submitting = false;
    }
    if (done === true) closeForm();
  }

  async function sendForm(view, text) {
    let done;
    if (form === "cancel") done = await post(view.incident_id, "cancel", { reason: text });
    else if (form === "escalate") {
      done = await post(view.incident_id, "escalate", { service: $("action-service").value, note: text });
    } else if (form === "resolve") done = await post(view.incident_id, "resolve", { outcome: text });
    else if (form === "retype") {
      done = await post(view.incident_id, "type", { alarm_type: $("action-alarm-type").value });
      if (done === true && text) done = await post(view.incident_id, "notes", { text });
    } else {
      done = !text || (await post(view.incident_id, "notes", { text }));
      if (done === true) done = await post(view.incident_id, "close", {});
    }
    return done;
  }

  // A half-filled form whose action someone else took away (resolved, cancelled, handed over meanwhile) stays
  // open with what was typed and says what happened, instead of vanishing; 返回 closes it.
  function markStale(view) {
    stale = Boolean(view);
    $("action-form-stale").hidden = !stale;
    $("action-form-stale").textContent = view ? t("form.taken_over", { state: label("state", view.state) }) : "";
    $("action-confirm").disabled = stale;
    $("action-form").classList.toggle("stale", stale);
  }

  // -- placing the incident -----------------------------------------------------------------------------

  const place = placePicker(session, {
    id: "locate-address",
    centre: () => {
      const view = current();
      return view && hasPosition(view) ? { lat: view.lat, lon: view.lon } : middleOf([...app.responders.values()]);
    },
    landmarks: () => landmarksOf(app),
    places: (centre) => nearbyPlaces(session, app, centre),
    tiles: () => app.config.map_tiles,
  });
  $("locate-place").replaceChildren(place.node);

  function openLocate() {
    closeForm();
    locating = true;
    place.clear();
    $("locate-form").hidden = false;
    place.focus();
  }

  function closeLocate() {
    locating = false;
    $("locate-form").hidden = true;
  }

  async function submitLocate(event) {
    event.preventDefault();
    const view = current();
    const where = place.value();
    if (!view) return;
    if (!where) {
      $("action-error").textContent = t("locate.need_place");
      place.focus();
      return;
    }
    if ((await post(view.incident_id, "location", where)) === true) closeLocate();
  }

  // -- the caregiver's proposal -----------------------------------------------------------------------

  // Shown while the decision is pending: once the operator resolved, handed over or sent someone, it is done.
  function renderProposal(view) {
    const proposal = awaitingDecision(view) ? view.proposal : null;
    $("proposal").hidden = !proposal;
    if (!proposal) {
      $("proposal-text").replaceChildren();
      return;
    }
    const who = actorWords(proposal.actor, proposal.actor_name);
    $("proposal-text").replaceChildren(
      el("strong", {}, proposal.text ? t("proposal.done_with", { who, text: proposal.text }) : t("proposal.done", { who })),
      el("span", { className: "muted" }, ` ${fmtTime(proposal.ts)} · ${t("proposal.decide")}`));
  }

  function proposalChoice(choice) {
    const view = current();
    if (!view || !view.proposal || app.busy) return;
    const words = view.proposal.text || "";
    if (choice === "resolve" && may(view, "resolve")) openForm("resolve", { text: words });
    else if (choice === "escalate" && may(view, "escalate")) openForm("escalate", { text: words, service: "120" });
    else if (choice === "dispatch") {
      $("ranking-title").scrollIntoView({ block: "start", behavior: "smooth" });
      $("override-search").focus({ preventScroll: true });
    }
  }

  // -- rendering ----------------------------------------------------------------------------------------

  function paintNotices() {
    $("detail-notice").hidden = !notices.length;
    $("detail-notice").replaceChildren(...notices.map(([key, params]) => el("span", {}, t(key, params))));
  }

  function renderPanel(view) {
    $("detail").hidden = !view;
    if (!view) {
      if (shown !== null) empty();
      shown = null;
      closeForm();
      closeLocate();
      return;
    }
    const place = backlogPlace(view); // moves as others leave the backlog
    if (shown !== view || place !== shownPlace) {
      shownPlace = place;
      $("detail").dataset.incidentId = view.incident_id;
      $("detail").dataset.state = view.state;
      $("detail").dataset.actions = view.actions.join(" ");
      $("detail-title").textContent = `${label("alarm", view.alarm_type)} · ${elderText(view)} · ${view.incident_id}`;
      renderFlags(view);
      renderProposal(view);
      renderFacts(view);
      renderRanking(view);
      renderClinic(view);
      renderAssignments(view);
      renderNotes(view);
      shown = view;
    }
    renderOverride(view);
    paintButtons(view);
    if (form && !may(view, form)) {
      if (submitting || !$("action-text").value.trim()) closeForm();
      else markStale(view);
    } else if (form && stale) markStale(null);
    if (locating && !may(view, "locate")) closeLocate();
  }

  // A closed panel keeps nothing: no stale words after a change of language, no record left behind.
  function empty() {
    for (const id of ["detail-title", "detail-flags", "detail-facts", "ranking-body", "override-list", "clinic",
      "assignments-body", "notes", "proposal-text"]) $(id).replaceChildren();
    overrideKey = "";
    $("note-error").textContent = "";
  }

  function renderFlags(view) {
    const flags = [];
    const placeUnknown = view.location === "unknown" && view.open;
    if (placeUnknown) { // one chip: "needs manual dispatch: location unknown" says the same
      flags.push(el("span", { className: "flag flag-manual" }, t("flag.place_unknown")));
    } else if (view.needs_manual && view.waiting) {
      flags.push(el("span", { className: "flag flag-manual" },
        t("flag.backlog", { n: backlogPlace(view), reason: explain(view.manual_reason || "") })));
    } else if (view.needs_manual) {
      flags.push(el("span", { className: "flag flag-manual" },
        t("flag.needs_manual", { reason: explain(view.manual_reason || "") })));
    }
    if (view.supervisor_alerted) flags.push(el("span", { className: "flag flag-alerted" }, t("flag.alerted")));
    if (view.drill) flags.push(el("span", { className: "flag flag-drill" }, t("flag.drill")));
    if (view.test) flags.push(el("span", { className: "flag flag-test" }, t("flag.test_call")));
    $("detail-flags").replaceChildren(...flags);
  }

  function renderFacts(view) {
    const caller = callerOf(view);
    const callerLink = caller ? phoneLink(caller, {
      elderId: view.elder_id || null, callId: view.call_id || null, incidentId: view.incident_id,
    }) : null;
    const source = [label("source", view.source),
      view.device_id && t("facts.device", { id: view.device_id }),
      caller && t("facts.caller", { caller })].filter(Boolean).join(" · ");
    const position = hasPosition(view) ? `${view.lat.toFixed(5)}, ${view.lon.toFixed(5)}` : null;
    const facts = [
      ["facts.priority", t("facts.priority_value", {
        level: t("priority.short", { n: view.priority }), reasons: explainAll(view.priority_reasons),
      })],
      ["facts.state", el("span", {}, label("state", view.state), " ",
        el("span", { className: "muted" }, t("facts.state_for"), " ", el("span", { id: "detail-state-clock" })))],
      ["facts.clock", el("span", { className: "clock", id: "detail-clock" })],
      ["facts.source", source],
      ["facts.elder", view.elder_name ? view.elder_name : callerLink
        ? el("span", {}, t("elder.unknown_caller_label"), " ", callerLink) : elderText(view)],
      ["facts.address", view.location === "map" && view.place ? t("place.nearby", { place: view.place })
        : view.address || view.place || "—"],
      ["facts.location", [label("location", view.location), view.place, position].filter(Boolean).join(" · ")],
      ["facts.opened", fmtTime(view.opened_at)],
      ["facts.acknowledged", view.acknowledged_at
        ? `${actorWords(view.acknowledged_by, view.acknowledged_by_name)} ${fmtTime(view.acknowledged_at)}`
        : t("facts.not_acknowledged")],
      ["facts.escalated", view.escalated_to ? label("service", view.escalated_to) : "—"],
      ["facts.outcome", view.outcome ? explain(view.outcome, responderName) : "—"],
    ];
    $("detail-facts").replaceChildren(...facts.flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)]));
  }

  function dispatchButton(view, responderId) {
    const busy = busyElsewhere(responderId);
    return el("button", {
      type: "button", className: busy ? "dispatch busy" : "dispatch", dataset: { responderId },
      disabled: app.busy || busy || !mayDispatch(view),
      title: busy ? t("dispatch.busy_title") : null,
      onclick: () => act("dispatch", responderId),
    }, busy ? t("dispatch.busy") : may(view, "replace") ? t("action.replace") : t("action.dispatch"));
  }

  function renderRanking(view) {
    const tried = new Set(view.assignments.map((a) => a.responder_id));
    $("ranking-body").replaceChildren(...view.ranking.map((c, index) => {
      const classes = ["candidate"];
      if (c.own) classes.push("own");
      if (tried.has(c.responder_id)) classes.push("tried");
      if (busyElsewhere(c.responder_id)) classes.push("busy");
      return el("tr", { className: classes.join(" "), dataset: { responderId: c.responder_id } },
        el("td", {}, String(index + 1)),
        el("td", {}, c.name, c.own ? el("span", { className: "tag", title: t("ranking.own_title") }, t("ranking.own")) : null),
        el("td", {}, fmtDistance(c.distance_m)),
        el("td", {}, fmtEta(c.eta_s)),
        el("td", {}, label("travel", c.travel)),
        el("td", { className: "reasons", title: explainAll(c.reasons).split(t("list.separator")).join("\n") },
          explainAll(c.reasons)),
        el("td", {}, dispatchButton(view, c.responder_id)));
    }));
    $("ranking").hidden = view.ranking.length === 0;
    $("ranking-empty").hidden = view.ranking.length > 0;
    $("ranking-empty").textContent = hasPosition(view) ? t("ranking.empty") : t("ranking.no_place");
  }

  // The override: any caregiver or volunteer, found by name, id or community, nearest first.
  let overrideKey = "";
  function renderOverride(view) {
    const query = $("override-search").value.trim().toLowerCase();
    const people = [...app.responders.values()].filter((r) => r.kind !== "clinic");
    const key = `${view.incident_id}|${view.actions}|${query}|${app.busy}|${people.map((r) => `${r.assignment_id}${r.on_duty}`).join()}`;
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

  // The clinic: the one proposed, a referral to its green channel (or to another open one), and the referrals
  // made, with what each clinic answered. At most one referral is open at a time (the server says so too).
  function renderClinic(view) {
    const clinic = view.clinic;
    const referrals = view.referrals || [];
    const canRefer = may(view, "refer") && !referrals.some((r) => r.open);
    const referButton = (clinicId, key, className) => el("button", {
      type: "button", className, dataset: { clinicId }, disabled: app.busy,
      onclick: () => refer(view, clinicId),
    }, t(key));
    const proposed = clinic
      ? el("p", { className: "clinic", dataset: { clinicId: clinic.clinic_id } },
        el("strong", {}, clinic.name), ` · ${fmtDistance(clinic.distance_m)} · ${fmtEta(clinic.eta_s)} `,
        el("span", { className: "reasons" }, explainAll(clinic.reasons)))
      : el("p", { className: "empty" }, t("clinic.none"));
    const others = [...app.responders.values()]
      .filter((r) => r.kind === "clinic" && r.green_channel && (!clinic || r.responder_id !== clinic.clinic_id));
    const picker = canRefer && others.length
      ? el("p", { className: "refer-other" },
        el("select", { id: "refer-clinic", "aria-label": t("referral.other") },
          ...others.map((r) => el("option", { value: r.responder_id }, r.name))),
        el("button", {
          type: "button", className: "refer-other", disabled: app.busy,
          onclick: () => refer(view, $("refer-clinic").value),
        }, t("referral.refer_other")))
      : null;
    const note = canRefer
      ? el("input", { id: "refer-note", type: "text", maxLength: 1000, placeholder: t("referral.note_placeholder"),
        "aria-label": t("referral.note_placeholder") })
      : null;
    const made = referrals.map((r) => el("li", {
      className: `referral referral-${r.state}`, dataset: { referralId: r.referral_id, state: r.state },
    },
    el("strong", {}, r.clinic_name), " ",
    el("span", { className: "referral-state" }, label("referral", r.state)),
    r.outcome ? el("span", { className: "referral-outcome" }, ` · ${label("outcome", r.outcome)}`) : null,
    r.words ? el("span", { className: "muted" }, ` · ${r.words}`) : null,
    ` · ${fmtTime(r.referred_at)}`,
    r.state === "referred" || r.state === "accepted"
      ? el("button", {
        type: "button", className: "referral-cancel", disabled: app.busy, onclick: () => cancelReferral(r),
      }, t("referral.cancel"))
      : null));
    const proposedButton = clinic && canRefer
      ? el("p", { className: "refer-proposed" }, referButton(clinic.clinic_id, "referral.refer", "refer")) : null;
    $("clinic").replaceChildren(...[proposed, note, proposedButton, picker,
      made.length ? el("ol", { className: "referrals" }, ...made) : null].filter(Boolean));
  }

  async function refer(view, clinicId) {
    if (!clinicId || app.busy) return;
    const input = $("refer-note");
    const body = { clinic_id: clinicId, note: input ? input.value.trim() : "" };
    await post(view.incident_id, "refer", body);
  }

  async function cancelReferral(referral) {
    if (app.busy) return;
    app.busy = true;
    $("action-error").textContent = "";
    try {
      const url = `/api/referrals/${encodeURIComponent(referral.referral_id)}/cancel`;
      putIncident(await session.api("POST", url, {}));
    } catch (error) {
      $("action-error").textContent = errorText(error);
    } finally {
      app.busy = false;
      render();
    }
  }

  function renderAssignments(view) {
    $("assignments-body").replaceChildren(...view.assignments.map((a) => el("tr", {
      className: `assignment assignment-${a.state}`,
      dataset: { assignmentId: a.assignment_id, state: a.state, responderId: a.responder_id },
    },
    el("td", {}, a.responder_name || responderName(a.responder_id),
      // the circle's last rings: a volunteer on call, a family member (dispatch.family)
      a.by === "on_call" || a.by === "family" ? el("span", { className: "chip offer-by" }, label("offer_by", a.by)) : null),
    el("td", { className: "assignment-state" }, label("assignment", a.state)),
    el("td", {}, fmtTime(a.offered_at)),
    el("td", {}, fmtEta(a.eta_s)),
    el("td", { className: "assignment-note" }, explain(a.note, responderName)))));
    $("assignments").hidden = view.assignments.length === 0;
    $("assignments-empty").hidden = view.assignments.length > 0;
  }

  function renderNotes(view) {
    $("notes").replaceChildren(...view.notes.map((note) => el("li", {
      className: note.shared ? "note shared" : "note",
    },
    el("span", { className: "note-time" }, fmtTime(note.ts)),
    el("span", { className: "note-actor" }, actorWords(note.actor, note.actor_name)),
    el("span", { className: "note-text" }, explain(note.text, responderName)),
    note.shared && !String(note.actor).startsWith("caregiver:")
      ? el("span", { className: "tag", title: t("notes.shared_title") }, t("notes.shared_tag")) : null)));
  }

  function paintButtons(view) {
    if (!view) return;
    const can = {
      acknowledge: may(view, "acknowledge"),
      dispatch: mayDispatch(view) && firstCandidate(view) !== null,
      cancel: may(view, "cancel"),
      escalate: may(view, "escalate"),
      resolve: may(view, "resolve"),
      close: may(view, "close"),
      locate: may(view, "locate"),
      note: may(view, "note"),
      retype: may(view, "retype"),
    };
    for (const button of document.querySelectorAll("#detail button[data-action]")) {
      button.disabled = app.busy || !can[button.dataset.action];
    }
    $("dispatch-first").textContent = may(view, "replace") ? t("action.replace_first") : t("action.dispatch_first");
    for (const button of document.querySelectorAll("#detail button.dispatch")) {
      button.disabled = app.busy || busyElsewhere(button.dataset.responderId) || !mayDispatch(view);
    }
    for (const button of document.querySelectorAll("#proposal button[data-proposal]")) {
      const choice = button.dataset.proposal;
      button.disabled = app.busy || !(choice === "dispatch" ? mayDispatch(view) : may(view, choice));
    }
  }

  // -- wiring -------------------------------------------------------------------------------------------

  $("detail-actions").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.dataset.action);
  });
  $("proposal").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-proposal]");
    if (button) proposalChoice(button.dataset.proposal);
  });
  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("note");
  });
  $("action-form").addEventListener("submit", submitForm);
  $("action-back").addEventListener("click", closeForm);
  $("locate-form").addEventListener("submit", submitLocate);
  $("locate-back").addEventListener("click", closeLocate);
  $("override-search").addEventListener("input", () => render());
  $("override-search").addEventListener("focus", searching);

  return {
    render: renderPanel,
    act,
    acknowledge,
    closeForm() {
      closeForm();
      closeLocate();
    },
    formOpen: () => form !== null || locating,
    focusSearch: () => $("override-search").focus(),
    /** Says what the page did on the incident just opened, e.g. [["new.attached", {id, type}]]. */
    notice(items) {
      notices = items;
      paintNotices();
    },
    /** Another incident was opened: forget the last one's form and message. */
    reset() {
      notices = [];
      paintNotices();
      shown = null;
      overrideKey = "";
      closeForm();
      closeLocate();
      $("action-error").textContent = "";
      $("note-error").textContent = "";
    },
    /** The language changed: write everything again, keep what the operator was doing. */
    relabel() {
      shown = null;
      overrideKey = "";
      labelForm();
      paintNotices();
      if (stale && current()) markStale(current());
    },
  };
}
