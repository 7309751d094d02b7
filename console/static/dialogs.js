// The console's in-page dialogs: a question before an action that cannot be taken back (replacing a caregiver
// who is on the way or at the door), and a map to pick where a caller is. Both are <dialog> elements of
// console.html opened as modal: the keys of the queue rest while one is open (keys.js asks isOpen()).
"use strict";

import { $, distanceM, hasPosition } from "./common.js";
import { fmtDistance, t } from "./i18n.js";
import { drawMap } from "./map.js";
import { nearestPlace } from "./places.js";

const PICK_RADIUS_M = 2500;

export const isOpen = () => document.querySelector("dialog[open]") !== null;

/** Asks a yes/no question; resolves true only when the operator chose `yes`. Esc and the other button: no. */
export function ask({ title, text, yes, no }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  $("confirm-no").textContent = no || t("form.back");
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-yes").onclick = null;
      $("confirm-no").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    // a dialog's "close" event is queued, not fired at close(): the previous question's may arrive after this
    // one opened; a close event while the dialog is open is that stale one, not Esc
    dialog.onclose = () => { if (!dialog.open) done(false); };
    dialog.showModal();
    $("confirm-no").focus(); // the safe answer has the focus: Enter does not withdraw anyone
  });
}

/**
 * Opens the map around `centre` and resolves to the point clicked ({lat, lon, place}) once confirmed, or null.
 * `marks` are the responders and clinics drawn for orientation; `places` a promise of the registered places
 * around (communities and buildings, drawn as labelled landmarks when it comes; the nearest one names the
 * point: `place`, or null); `tiles` the config's.
 */
export function pickOnMap({ centre, marks = [], places = Promise.resolve([]), tiles = null }) {
  const dialog = $("map-pick");
  const svgNode = $("pick-map");
  let pin = null;
  let projection = null;
  let landmarks = [];
  let open = true;
  const draw = () => {
    const shown = marks.filter(hasPosition).map((m) => ({
      status: "available", label: true, ...m, distance: distanceM(centre.lat, centre.lon, m.lat, m.lon),
    }));
    projection = drawMap(svgNode, {
      centre, marks: shown, places: landmarks, radiusM: PICK_RADIUS_M, tiles, plain: true, pin,
    });
    if (pin) pin.place = nearestPlace(landmarks, pin);
    $("pick-point").textContent = pin
      ? t("pick.point", { lat: pin.lat.toFixed(5), lon: pin.lon.toFixed(5) }) : t("pick.none");
    $("pick-nearest").textContent = pin && pin.place
      ? t("pick.nearest", { place: pin.place.short, distance: fmtDistance(pin.place.distance) })
      : pin ? t("pick.no_place") : "";
    svgNode.dataset.places = String(landmarks.length);
    $("pick-confirm").disabled = !pin;
  };
  places.then((found) => {
    landmarks = found || [];
    if (open) draw();
  }).catch(() => {});
  const click = (event) => {
    const box = svgNode.getBoundingClientRect();
    const view = svgNode.viewBox.baseVal;
    const x = ((event.clientX - box.left) * view.width) / box.width;
    const y = ((event.clientY - box.top) * view.height) / box.height;
    pin = { lat: projection.lat(y), lon: projection.lon(x) };
    draw();
  };
  return new Promise((resolve) => {
    const done = (answer) => {
      open = false;
      svgNode.removeEventListener("click", click);
      $("pick-confirm").onclick = null;
      $("pick-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    svgNode.addEventListener("click", click);
    $("pick-confirm").onclick = () => done(pin);
    $("pick-cancel").onclick = () => done(null);
    dialog.onclose = () => { if (!dialog.open) done(null); }; // a stale close event (see ask) is not Esc
    dialog.showModal();
    draw(); // after showModal: the map needs its size
    $("pick-cancel").focus();
  });
}
