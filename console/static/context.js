// Beside the incident: the elder's record (GET /api/elders/{id}, a journaled read, once per opened incident)
// and the map with the responders and clinics around, and how far each is.
"use strict";

import { $, distanceM, el, errorText, hasPosition } from "./common.js";
import { currentLanguage, fmtDistance, label, t } from "./i18n.js";
import { drawMap } from "./map.js";
import { renderNoRecord, renderRecord } from "./record.js";

const NEARBY_SHOWN = 8;
const CLINICS_SHOWN = 3;
const FRAME_AVAILABLE = 5; // the frame reaches at least the nearest few free responders

export function createContext({ app, session, responderName, render }) {
  let loadedFor = null; // the incident whose record was asked for
  let record = null; // {incidentId, data} or {incidentId, error}
  let recordShown = null;
  let mapKey = "";

  async function load(view) {
    loadedFor = view.incident_id;
    record = null;
    if (!view.elder_id) return;
    try {
      const data = await session.api("GET", `/api/elders/${encodeURIComponent(view.elder_id)}`);
      if (loadedFor === view.incident_id) record = { incidentId: view.incident_id, data };
    } catch (error) {
      if (loadedFor === view.incident_id) record = { incidentId: view.incident_id, error: errorText(error) };
    }
    render();
  }

  function paintRecord(view) {
    const box = $("record");
    const key = record ? record : view.elder_id ? "loading" : "none";
    if (recordShown === key) return;
    recordShown = key;
    if (!view.elder_id) renderNoRecord(box, t("record.unregistered"));
    else if (!record) renderNoRecord(box, t("record.loading"));
    else if (record.error) renderNoRecord(box, record.error);
    else renderRecord(box, record.data, {
      responderName, exclude: view.incident_id, incidentId: view.incident_id, callId: view.call_id || null,
    });
  }

  function marks(view) {
    const tried = new Set(view.assignments.filter((a) => a.state !== "declined").map((a) => a.responder_id));
    const ranked = new Set(view.ranking.map((c) => c.responder_id));
    return [...app.responders.values()]
      .filter(hasPosition)
      .map((r) => ({
        id: r.responder_id,
        lat: r.lat,
        lon: r.lon,
        kind: r.kind === "clinic" ? "clinic" : "responder",
        status: statusOf(r),
        name: r.name,
        distance: distanceM(view.lat, view.lon, r.lat, r.lon),
        label: ranked.has(r.responder_id) || tried.has(r.responder_id),
      }))
      .sort((a, b) => a.distance - b.distance);
  }

  function statusOf(responder) {
    const status = responderStatusOf(app, responder);
    return status === "stale" ? "off" : status;
  }

  function paintMap(view) {
    const svgNode = $("map");
    if (!hasPosition(view)) {
      svgNode.replaceChildren();
      $("nearby").replaceChildren(el("li", { className: "muted" }, t("map.no_position")));
      mapKey = "";
      return;
    }
    const all = marks(view);
    const home = view.location !== "home" && view.elder_id ? homeOf(view) : null;
    const key = [view.incident_id, view.lat, view.lon, svgNode.clientWidth, currentLanguage(), app.config.map_tiles,
      home && `${home.lat},${home.lon}`,
      ...all.map((m) => `${m.id}:${m.status}:${m.lat}:${m.lon}:${m.label}`)].join("|");
    if (key === mapKey) return;
    mapKey = key;
    const clinics = all.filter((m) => m.kind === "clinic");
    if (clinics.length) clinics[0].label = true;
    const available = all.filter((m) => m.status === "available").slice(0, FRAME_AVAILABLE);
    const framed = [...all.filter((m) => m.label), ...available];
    drawMap(svgNode, {
      centre: { lat: view.lat, lon: view.lon },
      home,
      marks: all,
      radiusM: Math.max(0, ...framed.map((m) => m.distance)),
      tiles: app.config.map_tiles,
    });
    const people = all.filter((m) => m.kind === "responder" && m.status !== "off").slice(0, NEARBY_SHOWN);
    const nearby = [...people, ...clinics.slice(0, CLINICS_SHOWN)].sort((a, b) => a.distance - b.distance);
    $("nearby").replaceChildren(...nearby.map((m) => el("li", { dataset: { id: m.id, status: m.status } },
      el("span", { className: `swatch ${m.kind === "clinic" ? "clinic" : `status-${m.status}`}` }),
      el("span", { className: "nearby-name" }, m.name),
      el("span", { className: "muted" }, label("rstatus", m.status)),
      el("span", { className: "nearby-distance" }, fmtDistance(m.distance)))));
  }

  function homeOf(view) {
    const data = record && !record.error ? record.data : null;
    return data && hasPosition(data) ? { lat: data.lat, lon: data.lon } : null;
  }

  return {
    render(view) {
      $("context").hidden = !view;
      if (!view) {
        if (loadedFor !== null) for (const id of ["record", "map", "nearby"]) $(id).replaceChildren();
        loadedFor = null;
        record = null;
        recordShown = null;
        mapKey = "";
        return;
      }
      if (loadedFor !== view.incident_id) load(view);
      paintRecord(view);
      paintMap(view);
    },
    reset() {
      recordShown = null;
      mapKey = "";
    },
  };
}

/** available | offered | busy | off | stale (on duty, position too old) | clinic */
export function responderStatusOf(app, responder) {
  if (responder.kind === "clinic") return "clinic";
  if (!responder.on_duty) return "off";
  if (responder.assignment_id) {
    for (const incident of app.incidents.values()) {
      const assignment = incident.assignments.find((a) => a.assignment_id === responder.assignment_id);
      if (assignment) return assignment.state === "offered" ? "offered" : "busy";
    }
    return "busy";
  }
  return responder.available ? "available" : "stale";
}
