// "New incident" (button or the I key): an incident opened by hand for an elder found with the search (name,
// pinyin initials, phone or its last digits), or for a caller nobody knows yet, by their number and where
// they are (a typed address or a point on the map). POST /api/incidents; the new incident opens in the panel.
//
// An elder has one open incident at a time: for an elder who already has one, the server adds to it
// ("attached": true) instead of opening another, and, when the caregiver there had reported done and nobody
// decided yet, sends someone again by itself. The form says so before (the elder's open incident under the
// search) and the panel after ("已并入该老人正在处理的警情 INC-38（医疗求助）").
"use strict";

import { $, errorText } from "./common.js";
import { label, t } from "./i18n.js";
import { elderSearch, landmarksOf, middleOf, nearbyPlaces, placePicker } from "./places.js";

const ACTIVE = new Set(["offered", "accepted", "en_route", "on_scene"]);

/** What the server did when a request joined an open incident, in words for the panel: which incident, and
 * whether someone was sent again because the caregiver there had reported done (`before`: the view before). */
export function joinedWords(view, before) {
  const items = [["new.attached", { id: view.incident_id, type: label("alarm", view.alarm_type) }]];
  if (before && before.proposal) {
    const known = new Set(before.assignments.map((a) => a.assignment_id));
    const sent = view.assignments.find((a) => !known.has(a.assignment_id) && ACTIVE.has(a.state));
    if (sent) items.push(["new.sent_again", { name: sent.responder_name || sent.responder_id }]);
    else if (view.needs_manual) items.push(["new.send_again_manual", {}]);
  }
  return items;
}

export function createNewIncident({ app, session, putIncident, select, notice }) {
  const dialog = $("new-incident");
  const search = elderSearch(session, { id: "new-elder", onPick: paint });
  const place = placePicker(session, {
    id: "new-address",
    centre: () => (search.chosen() && search.chosen().lat ? search.chosen() : middleOf([...app.responders.values()])),
    landmarks: () => landmarksOf(app),
    places: (centre) => nearbyPlaces(session, app, centre),
    tiles: () => app.config.map_tiles,
    onChange: () => paintSubmit(),
  });
  $("new-who").replaceChildren(search.node);
  $("new-place").replaceChildren(place.node);
  let busy = false;

  /** The open incident of the chosen elder, if the console knows one. */
  function openOf(elder) {
    if (!elder) return null;
    return [...app.incidents.values()].find((v) => v.open && v.elder_id === elder.elder_id) || null;
  }

  // An unknown caller with no place yet: the incident opens, but nobody can be sent until it is placed.
  function paintSubmit() {
    const key = search.chosen() || place.value() ? "new.submit" : "new.submit_unplaced";
    $("new-submit").dataset.i18n = key;
    $("new-submit").textContent = t(key);
  }

  function paint() {
    paintSubmit();
    const elder = search.chosen();
    $("new-unknown").hidden = Boolean(elder);
    const existing = openOf(elder);
    $("new-existing").hidden = !existing;
    $("new-existing").textContent = existing
      ? t("new.has_open", { id: existing.incident_id, type: label("alarm", existing.alarm_type) }) : "";
  }

  function open() {
    search.clear();
    place.clear();
    for (const id of ["new-caller", "new-note", "new-alarm"]) $(id).value = "";
    $("new-error").textContent = "";
    paint();
    dialog.showModal();
    search.focus();
  }

  async function submit(event) {
    event.preventDefault();
    if (busy) return;
    const elder = search.chosen();
    const caller = $("new-caller").value.trim();
    const body = { alarm_type: $("new-alarm").value };
    if (!body.alarm_type) {
      $("new-error").textContent = t("new.need_type");
      $("new-alarm").focus();
      return;
    }
    if (elder) body.elder_id = elder.elder_id;
    else if (caller) body.caller = caller;
    else {
      $("new-error").textContent = t("new.need_who");
      search.focus();
      return;
    }
    Object.assign(body, place.value() || {});
    const note = $("new-note").value.trim();
    if (note) body.note = note;
    const before = openOf(elder);
    busy = true;
    $("new-submit").disabled = true;
    $("new-error").textContent = "";
    try {
      const view = await session.api("POST", "/api/incidents", body);
      dialog.close();
      const incident = { ...view };
      delete incident.attached; // not part of an incident's view
      putIncident(incident);
      select(incident.incident_id);
      notice(view.attached ? joinedWords(view, before) : []);
    } catch (error) {
      $("new-error").textContent = errorText(error);
    } finally {
      busy = false;
      $("new-submit").disabled = false;
    }
  }

  $("new-incident-form").addEventListener("submit", submit);
  $("new-incident-form").addEventListener("input", paintSubmit);
  $("new-cancel").addEventListener("click", () => dialog.close());
  $("new-incident-button").addEventListener("click", open);

  return { open };
}
