// The incident map: a small SVG drawn here, no map library and no internet needed.
//
// Projection: equirectangular around the incident (x east, y north, the longitude scale shrunk by the
// cosine of the incident's latitude). Over the few kilometres a dispatch covers, the error against the true
// distance stays far below a percent, so the scale bar and the rings are honest.
//
// Background: with a tile URL template (the `map_tiles` setting, "{z}/{x}/{y}", optional "{s}") the Web
// Mercator tiles of the closest zoom level are laid under the marks, each stretched between its own
// projected corners; without one, a plain ground. Coordinates are WGS-84 throughout: a deployment whose
// tiles are in GCJ-02 (most Chinese providers) needs a tile server that serves WGS-84 tiles.
"use strict";

import { fmtDistance } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const METRES_PER_DEGREE = (Math.PI / 180) * 6371008.8;
const MERCATOR_M_PER_PX_Z0 = 156543.03392; // at the equator, 256-pixel tiles
const MIN_RADIUS_M = 400;
const MAX_RADIUS_M = 8000;
const MAX_TILES = 48;
const NICE = [1, 2, 5];

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A projection of lat/lon to pixels around `centre`, `mpp` metres per pixel. */
export function projection(centre, mpp, width, height) {
  const ky = METRES_PER_DEGREE / mpp;
  const kx = ky * Math.cos((centre.lat * Math.PI) / 180);
  return {
    kx, ky, mpp,
    x: (lon) => width / 2 + (lon - centre.lon) * kx,
    y: (lat) => height / 2 - (lat - centre.lat) * ky,
    lon: (x) => centre.lon + (x - width / 2) / kx,
    lat: (y) => centre.lat - (y - height / 2) / ky,
  };
}

/** The largest 1-2-5 length not longer than `metres`. */
export function niceLength(metres) {
  const power = 10 ** Math.floor(Math.log10(metres));
  let best = power;
  for (const step of NICE) if (step * power <= metres) best = step * power;
  return best;
}

/**
 * Draws the map into an <svg>.
 * @param {SVGSVGElement} target
 * @param {object} scene
 *   centre {lat, lon}       the incident
 *   home {lat, lon}|null    the elder's home, when the incident is elsewhere
 *   marks [{id, lat, lon, kind: "responder"|"clinic", status, name, distance, label: bool}]
 *   places [{label, lat, lon, kind: "community"|"building"|…, text}]  registered places, drawn as landmarks
 *                           under everything else (a community's name; a building's mark and short name)
 *   radiusM                 how far the frame must reach (clamped to 400 m … 8 km)
 *   tiles                   the tile URL template or null
 *   plain                   true: no incident at the centre (a map to pick a point on)
 *   pin {lat, lon}|null     a point the operator picked
 * Returns the projection, so that a click can be turned back into a position.
 */
export function drawMap(target, scene) {
  const width = target.clientWidth || Number(target.getAttribute("width")) || 480;
  const height = target.clientHeight || Number(target.getAttribute("height")) || 300;
  target.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const radius = Math.min(MAX_RADIUS_M, Math.max(MIN_RADIUS_M, scene.radiusM || 0)) * 1.15;
  const mpp = radius / (Math.min(width, height) / 2 - 12);
  const p = projection(scene.centre, mpp, width, height);
  const inside = (x, y) => x >= 0 && x <= width && y >= 0 && y <= height;

  const layers = [svg("rect", { class: "map-ground", width, height })];
  if (scene.tiles) layers.push(tileLayer(scene.tiles, scene.centre, p, width, height));
  layers.push(rings(p, width, height));
  const labels = svg("g", { class: "map-labels" });
  const taken = [box(width / 2 - 13, height / 2 - 13, 26, 26)]; // the incident mark
  const places = (scene.places || []).map((place) => ({ place, x: p.x(place.lon), y: p.y(place.lat) }))
    .filter(({ x, y }) => inside(x, y));
  const placeLayer = svg("g", { class: "map-places" });
  const marks = svg("g", { class: "map-marks" });
  // community names first (they orient best), then the responders' labels, then the buildings' short names
  for (const { place, x, y } of places.filter(({ place }) => place.kind === "community")) {
    const w = textWidth(place.text) * 1.1;
    const area = box(x - w / 2, y - 9, w, 16);
    if (taken.some((t) => overlaps(area, t))) continue;
    taken.push(area);
    placeLayer.append(svg("text", { class: "map-community", x, y: y + 4, "text-anchor": "middle", "data-label": place.label },
      place.text, svg("title", {}, place.label)));
  }
  for (const mark of scene.marks) {
    const x = p.x(mark.lon);
    const y = p.y(mark.lat);
    if (!inside(x, y)) continue;
    const tip = svg("title", {}, `${mark.name} · ${fmtDistance(mark.distance)}`);
    const data = { "data-id": mark.id, "data-status": mark.status };
    if (mark.kind === "clinic") {
      marks.append(svg("g", { class: "mark clinic", transform: `translate(${x} ${y})`, ...data },
        svg("rect", { x: -6, y: -6, width: 12, height: 12, rx: 2 }),
        svg("path", { d: "M-3.5 0H3.5M0 -3.5V3.5" }), tip));
    } else {
      marks.append(svg("circle", { class: `mark responder status-${mark.status}`, cx: x, cy: y, r: 5.5, ...data }, tip));
    }
    if (mark.label) {
      const text = `${mark.name} ${fmtDistance(mark.distance)}`;
      const spot = placeLabel(text, x, y, taken, width, height);
      if (spot) labels.append(svg("text", { class: "map-label", ...spot }, text));
    }
  }
  for (const { place, x, y } of places.filter(({ place }) => place.kind !== "community")) {
    placeLayer.append(svg("rect", { class: "place-mark", x: x - 3, y: y - 3, width: 6, height: 6, "data-label": place.label },
      svg("title", {}, place.label)));
    const spot = placeLabel(place.text, x, y, taken, width, height);
    if (spot) placeLayer.append(svg("text", { class: "map-place-label", ...spot }, place.text));
  }
  layers.push(placeLayer, marks, labels);
  if (scene.home) layers.push(homeMark(p.x(scene.home.lon), p.y(scene.home.lat)));
  if (!scene.plain) layers.push(incidentMark(width / 2, height / 2));
  if (scene.pin) layers.push(pinMark(p.x(scene.pin.lon), p.y(scene.pin.lat)));
  layers.push(scaleBar(mpp, height));
  target.replaceChildren(...layers);
  target.dataset.metresPerPixel = mpp.toFixed(3);
  return p;
}

// Labels are placed greedily, nearest responder first: right of the mark, else left, above, below; a label
// that fits nowhere is left out (the mark's tooltip and the list under the map still name it).
const LABEL_HEIGHT = 13;

const box = (x, y, w, h) => ({ x, y, w, h });
const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

function textWidth(text) {
  let width = 0;
  for (const ch of text) width += /[\u2e80-\uffef]/.test(ch) ? 11 : 6.2;
  return width;
}

function placeLabel(text, x, y, taken, width, height) {
  const w = textWidth(text);
  const spots = [
    { x: x + 8, y: y + 4, "text-anchor": "start", area: box(x + 8, y - 8, w, LABEL_HEIGHT) },
    { x: x - 8, y: y + 4, "text-anchor": "end", area: box(x - 8 - w, y - 8, w, LABEL_HEIGHT) },
    { x, y: y - 9, "text-anchor": "middle", area: box(x - w / 2, y - 20, w, LABEL_HEIGHT) },
    { x, y: y + 17, "text-anchor": "middle", area: box(x - w / 2, y + 6, w, LABEL_HEIGHT) },
  ];
  const frame = (a) => a.x >= 2 && a.y >= 2 && a.x + a.w <= width - 2 && a.y + a.h <= height - 24;
  const spot = spots.find((s) => frame(s.area) && !taken.some((t) => overlaps(s.area, t)));
  if (!spot) return null;
  taken.push(spot.area);
  const { area, ...attributes } = spot;
  return attributes;
}

function rings(p, width, height) {
  const step = niceLength((Math.min(width, height) / 2) * p.mpp * 0.45);
  const group = svg("g", { class: "map-rings" });
  for (const metres of [step, step * 2]) {
    const r = metres / p.mpp;
    group.append(svg("circle", { cx: width / 2, cy: height / 2, r }));
    group.append(svg("text", { x: width / 2 + r * 0.707 + 3, y: height / 2 - r * 0.707 - 3 }, fmtDistance(metres)));
  }
  return group;
}

function incidentMark(x, y) {
  return svg("g", { class: "mark incident", transform: `translate(${x} ${y})` },
    svg("circle", { r: 12, class: "halo" }), svg("circle", { r: 6 }));
}

function pinMark(x, y) {
  return svg("g", { class: "mark pin", transform: `translate(${x} ${y})` },
    svg("path", { d: "M0 0L-6 -12A7 7 0 1 1 6 -12Z" }), svg("circle", { cy: -15, r: 2.5, class: "pin-dot" }));
}

function homeMark(x, y) {
  return svg("path", { class: "mark home", d: `M${x - 6} ${y + 5}V${y - 1}L${x} ${y - 7}L${x + 6} ${y - 1}V${y + 5}Z` });
}

function scaleBar(mpp, height) {
  const metres = niceLength(110 * mpp);
  const length = metres / mpp;
  const y = height - 14;
  return svg("g", { class: "map-scale", "data-metres": metres },
    svg("path", { d: `M10 ${y - 5}V${y}H${10 + length}V${y - 5}` }),
    svg("text", { x: 10 + length + 6, y: y + 1 }, fmtDistance(metres)));
}

// -- tiles --------------------------------------------------------------------------------------------

const tileX = (lon, n) => Math.floor(((lon + 180) / 360) * n);
const tileY = (lat, n) => {
  const phi = (lat * Math.PI) / 180;
  return Math.floor(((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * n);
};
const tileLon = (x, n) => (x / n) * 360 - 180;
const tileLat = (y, n) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;

/** The tile zoom whose pixels are closest to `mpp` metres at this latitude. */
export function tileZoom(mpp, lat) {
  const z = Math.round(Math.log2((MERCATOR_M_PER_PX_Z0 * Math.cos((lat * Math.PI) / 180)) / mpp));
  return Math.max(1, Math.min(19, z));
}

function tileLayer(template, centre, p, width, height) {
  const z = tileZoom(p.mpp, centre.lat);
  const n = 2 ** z;
  const [x0, x1] = [tileX(p.lon(0), n), tileX(p.lon(width), n)];
  const [y0, y1] = [tileY(p.lat(0), n), tileY(p.lat(height), n)];
  const group = svg("g", { class: "map-tiles", "data-zoom": z });
  for (let x = x0; x <= x1; x += 1) {
    for (let y = y0; y <= y1; y += 1) {
      if (group.childElementCount >= MAX_TILES) return group;
      const left = p.x(tileLon(x, n));
      const top = p.y(tileLat(y, n));
      const href = template.replace("{z}", z).replace("{x}", x).replace("{y}", y)
        .replace("{s}", "abc"[(x + y) % 3]);
      group.append(svg("image", {
        href, x: left, y: top, width: p.x(tileLon(x + 1, n)) - left, height: p.y(tileLat(y + 1, n)) - top,
        preserveAspectRatio: "none",
      }));
    }
  }
  return group;
}
