// "New incident" (button or the I key): an incident opened by hand for an elder found with the search (name,
// pinyin initials, phone or its last digits), or for a caller nobody knows yet, by their number and where
// they are (a typed address or a point on the map). POST /api/incidents; the new incident opens in the panel.
"use strict";

import { $, errorText } from "./common.js";
import { t } from "./i18n.js";
import { elderSearch, landmarksOf, middleOf, placePicker } from "./places.js";

export function createNewIncident({ app, session, putIncident, select }) {
  const dialog = $("new-incident");
  const search = elderSearch(session, { id: "new-elder", onPick: paint });
  const place = placePicker(session, {
    id: "new-address",
    centre: () => (search.chosen() && search.chosen().lat ? search.chosen() : middleOf([...app.responders.values()])),
    landmarks: () => landmarksOf(app),
    tiles: () => app.config.map_tiles,
  });
  $("new-who").replaceChildren(search.node);
  $("new-place").replaceChildren(place.node);
  let busy = false;

  function paint() {
    $("new-unknown").hidden = Boolean(search.chosen());
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
    busy = true;
    $("new-submit").disabled = true;
    $("new-error").textContent = "";
    try {
      const view = await session.api("POST", "/api/incidents", body);
      dialog.close();
      putIncident(view);
      select(view.incident_id);
    } catch (error) {
      $("new-error").textContent = errorText(error);
    } finally {
      busy = false;
      $("new-submit").disabled = false;
    }
  }

  $("new-incident-form").addEventListener("submit", submit);
  $("new-cancel").addEventListener("click", () => dialog.close());
  $("new-incident-button").addEventListener("click", open);

  return { open };
}
