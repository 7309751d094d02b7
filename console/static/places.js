// Finding who and where, as the operator types: the elder search (GET /api/elders?q= — name, pinyin
// initials, a phone or its last digits, a contact's phone, the address) and the place picker (GET
// /api/places?q=, the registry's own gazetteer, or a point picked on the map). The call pop-up, the
// new-incident form and the locate form each build their own.
//
// The map to pick on has no tiles in most deployments: it shows the registered communities and buildings
// around (from the gazetteer: the communities of the streets where the nearest responders work, then the
// buildings of the nearest communities) as labelled landmarks, and names the place nearest the point picked;
// that name goes with the point (address + lat/lon), so the incident has a place a caregiver can read.
//
// Rules
//   1. One request per pause in typing (150 ms), and only the newest answer is shown.
//   2. Results are buttons: a click, or Enter on the first, chooses.
//   3. Data is text (el()), never HTML.
"use strict";

import { distanceM, el, errorText, hasPosition } from "./common.js";
import { responderStatusOf } from "./context.js";
import { fileLink } from "./record.js";
import { pickOnMap } from "./dialogs.js";
import { fmtDistance, has, label, ready, t, translate } from "./i18n.js";

const DEBOUNCE_MS = 150;
const SHOWN = 8;
const LANDMARK_STREETS = 3; // streets whose communities are looked up around a map to pick on
const LANDMARK_COMMUNITIES = 4; // the nearest communities whose buildings are drawn
const LANDMARK_NEAR_M = 3000;
const NEAREST_BUILDING_M = 250; // a picked point takes the name of a building this near
const NEAREST_COMMUNITY_M = 1200; // else of a community this near

/** Runs `search(q)` after each pause in typing and hands the newest answer to `show` ({items} or {error}). */
function liveSearch(input, search, show) {
  let asked = 0;
  let timer = 0;
  const run = () => {
    clearTimeout(timer);
    if (!input.value.trim()) {
      asked += 1;
      show(null);
      return;
    }
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const ticket = ++asked;
      if (!q) {
        show(null);
        return;
      }
      try {
        const items = await search(q);
        if (ticket === asked) show({ items });
      } catch (error) {
        if (ticket === asked) show({ error: errorText(error) });
      }
    }, DEBOUNCE_MS);
  };
  input.addEventListener("input", run);
  return { run, stop: () => { asked += 1; clearTimeout(timer); } };
}

/** A gazetteer path ("龙文区/景山街道/檀林社区") as people say it: "檀林社区（景山街道）". */
export function placeName(text) {
  const parts = String(text || "").split("/").filter(Boolean);
  return parts.length > 1 ? t("place.within", { place: parts[parts.length - 1], area: parts[parts.length - 2] }) : String(text || "");
}

const matchedText = (what) => (has(`matched.${what}`) ? t(`matched.${what}`) : null);

/**
 * An elder search box. `onPick(elder)` is told of each choice (null when cleared).
 * Returns {node, chosen(), choose(elder), clear(), focus()}.
 */
export function elderSearch(session, { id, onPick = () => {} }) {
  let chosen = null;
  const input = el("input", {
    id, type: "search", className: "search-input", autocomplete: "off", spellcheck: false,
    dataset: { i18nPlaceholder: "search.elder_placeholder" },
  });
  const results = el("ul", { className: "search-results elder-results" });
  const picked = el("p", { className: "search-chosen", hidden: true });
  const node = el("div", { className: "elder-search" }, input, results, picked);
  if (ready()) translate(node); // else setLanguage does it, once the catalogue is there

  const show = (answer) => {
    if (!answer) {
      results.replaceChildren();
      return;
    }
    if (answer.error) {
      results.replaceChildren(el("li", { className: "error" }, answer.error));
      return;
    }
    if (!answer.items.length) {
      results.replaceChildren(el("li", { className: "muted" }, t("search.no_elder")));
      return;
    }
    results.replaceChildren(...answer.items.slice(0, SHOWN).map((elder) => el("li", {},
      el("button", {
        type: "button", className: "elder-hit", dataset: { elderId: elder.elder_id },
        onclick: () => choose(elder),
      },
      el("strong", {}, elder.name),
      // a hit on a family contact's phone: the elder's own number is not what matched, so it is left out
      [].concat(elder.matched || []).includes("contact_phone") ? null
        : el("span", { className: "hit-phone" }, elder.phone || ""),
      el("span", { className: "hit-address muted" }, elder.address || ""),
      ...(elder.matched ? [].concat(elder.matched) : []).map(matchedText).filter(Boolean)
        .map((text) => el("span", { className: "tag" }, text))),
      fileLink(elder.elder_id, t("file.link")))));
  };
  const search = liveSearch(input, async (q) => (await session.api("GET", `/api/elders?q=${encodeURIComponent(q)}&limit=${SHOWN}`)).elders, show);

  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault(); // Enter chooses the first hit; it never submits the form around
    const first = results.querySelector("button.elder-hit");
    if (first) first.click();
  });

  function choose(elder) {
    chosen = elder;
    search.stop();
    results.replaceChildren();
    input.value = "";
    picked.hidden = !elder;
    picked.replaceChildren(...(elder ? [
      el("span", { className: "muted" }, t("search.chosen")),
      el("strong", { className: "chosen-name", dataset: { elderId: elder.elder_id } }, elder.name),
      el("span", {}, elder.phone || ""),
      el("span", { className: "muted" }, elder.address || ""),
      el("button", { type: "button", className: "link", onclick: () => { choose(null); input.focus(); } },
        t("search.change")),
    ] : []));
    onPick(elder);
  }

  return {
    node,
    chosen: () => chosen,
    choose,
    clear() {
      input.value = "";
      search.stop();
      results.replaceChildren();
      chosen = null;
      picked.hidden = true;
      picked.replaceChildren();
    },
    focus: () => input.focus(),
  };
}

/**
 * Where the caller is: a typed address with suggestions, or a point on the map.
 * `centre()` gives the map's centre ({lat, lon} or null); `landmarks()` the responders to draw around it;
 * `places(centre)` a promise of the registered places around (nearbyPlaces); `tiles()`.
 * value(): {address} | {lat, lon} | {lat, lon, address: the nearest place's name} | null.
 */
export function placePicker(session, {
  id, centre, landmarks = () => [], places = () => Promise.resolve([]), tiles = () => null, onChange = () => {},
}) {
  let chosenPlace = null; // the suggestion taken: the input shows its name, the server gets its label
  let point = null; // {lat, lon, place} picked on the map (place: the nearest registered place, or null)
  let suggestions = [];
  const input = el("input", {
    id, type: "search", className: "search-input", autocomplete: "off", spellcheck: false, maxLength: 200,
    dataset: { i18nPlaceholder: "place.placeholder" },
  });
  const mapButton = el("button", { type: "button", className: "map-pick", dataset: { i18n: "place.on_map" } });
  const list = el("ul", { className: "search-results place-results" });
  const shown = el("p", { className: "search-chosen", hidden: true });
  const node = el("div", { className: "place-picker" }, el("div", { className: "place-row" }, input, mapButton),
    list, shown);
  if (ready()) translate(node);

  const show = (answer) => {
    suggestions = answer && answer.items ? answer.items : [];
    if (!answer) list.replaceChildren();
    else if (answer.error) list.replaceChildren(el("li", { className: "error" }, answer.error));
    else if (!suggestions.length) list.replaceChildren(el("li", { className: "muted" }, t("place.none")));
    else {
      list.replaceChildren(...suggestions.map((place) => el("li", {},
        el("button", { type: "button", className: "place-hit", onclick: () => choose(place) },
          el("span", { title: place.label }, placeName(place.label)),
          place.kind ? el("span", { className: "tag" }, label("placekind", place.kind)) : null))));
    }
  };
  const search = liveSearch(input, async (q) => (await session.api("GET", `/api/places?q=${encodeURIComponent(q)}&limit=${SHOWN}`)).places, show);
  input.addEventListener("input", () => {
    point = null;
    chosenPlace = null;
    paintChoice();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const first = list.querySelector("button.place-hit");
    if (first) first.click();
  });

  function choose(place) {
    input.value = placeName(place.label);
    chosenPlace = place;
    point = null;
    search.stop();
    list.replaceChildren();
    paintChoice();
  }

  function paintChoice() {
    onChange();
    shown.hidden = !point;
    shown.replaceChildren(...(point ? [
      el("span", { className: "muted" }, t("place.picked")),
      el("span", { className: "picked-point" }, `${point.lat.toFixed(5)}, ${point.lon.toFixed(5)}`),
      point.place ? el("span", { className: "picked-place", title: point.place.label },
        t("place.near", { place: point.place.short, distance: fmtDistance(point.place.distance) })) : null,
    ] : []));
  }

  mapButton.addEventListener("click", async () => {
    const typed = suggestions.find((place) => place.label === input.value.trim());
    const middle = point || (typed && hasPosition(typed) ? typed : null) || centre();
    if (!middle) return;
    const marks = landmarks();
    const typedPlaces = suggestions.filter(hasPosition);
    const around = places(middle).then((found) => mergePlaces([...typedPlaces, ...found]))
      .catch(() => mergePlaces(typedPlaces));
    const picked = await pickOnMap({ centre: middle, marks, places: around, tiles: tiles() });
    if (!picked) return;
    point = picked;
    chosenPlace = null;
    input.value = "";
    search.stop();
    list.replaceChildren();
    paintChoice();
  });

  return {
    node,
    value() {
      if (point && point.place) return { lat: point.lat, lon: point.lon, address: point.place.label };
      if (point) return { lat: point.lat, lon: point.lon };
      const address = input.value.trim();
      if (chosenPlace && address === placeName(chosenPlace.label)) return { address: chosenPlace.label };
      return address ? { address } : null;
    },
    clear() {
      point = null;
      chosenPlace = null;
      input.value = "";
      search.stop();
      list.replaceChildren();
      paintChoice();
    },
    focus: () => input.focus(),
  };
}

// -- landmarks: the registered places around a point ------------------------------------------------------

const placeAnswers = new Map(); // query -> promise of the gazetteer's places (they change with the registry only)

function gazetteer(session, q) {
  if (!placeAnswers.has(q)) {
    placeAnswers.set(q, session.api("GET", `/api/places?q=${encodeURIComponent(q)}&limit=50`)
      .then((answer) => answer.places)
      .catch(() => {
        placeAnswers.delete(q);
        return [];
      }));
  }
  return placeAnswers.get(q);
}

const flat = (label) => String(label).replace(/\//g, "");

/** One entry a label, each with a short name for the map ("湘桥社区", "湘桥社区20号楼", "20号楼"). */
function mergePlaces(places) {
  const byLabel = new Map();
  for (const place of places) if (hasPosition(place) && !byLabel.has(place.label)) byLabel.set(place.label, place);
  const all = [...byLabel.values()];
  const communities = all.filter((p) => p.kind === "community");
  return all.map((place) => {
    if (place.kind === "community" || place.kind === "street" || place.kind === "district") {
      const name = String(place.label).split("/").pop();
      return { ...place, short: name, text: name };
    }
    const home = communities.find((c) => flat(place.label).startsWith(flat(c.label)));
    if (!home) return { ...place, short: place.label, text: place.label };
    const rest = flat(place.label).slice(flat(home.label).length);
    return { ...place, short: `${home.label.split("/").pop()}${rest}`, text: rest || home.label.split("/").pop() };
  });
}

/**
 * The registered communities and buildings around `centre`, from the gazetteer: the communities of the streets
 * where the nearest responders work, then the buildings of the nearest of those communities.
 */
export async function nearbyPlaces(session, app, centre) {
  if (!hasPosition(centre)) return [];
  const nearest = [...app.responders.values()]
    .filter((r) => hasPosition(r) && r.community)
    .map((r) => ({ r, distance: distanceM(centre.lat, centre.lon, r.lat, r.lon) }))
    .sort((a, b) => a.distance - b.distance);
  const streets = [];
  for (const { r } of nearest) {
    const street = r.community.split("/").slice(0, 2).join("/");
    if (!streets.includes(street)) streets.push(street);
    if (streets.length >= LANDMARK_STREETS) break;
  }
  const found = (await Promise.all(streets.map((street) => gazetteer(session, street)))).flat();
  const communities = found.filter((p) => p.kind === "community" && hasPosition(p))
    .map((p) => ({ p, distance: distanceM(centre.lat, centre.lon, p.lat, p.lon) }))
    .filter(({ distance }) => distance <= LANDMARK_NEAR_M)
    .sort((a, b) => a.distance - b.distance)
    .slice(0, LANDMARK_COMMUNITIES)
    .map(({ p }) => p);
  const inside = (await Promise.all(communities.map((c) => gazetteer(session, c.label)))).flat();
  return mergePlaces([...communities, ...inside.filter((p) => p.kind === "building")]);
}

/** The registered place nearest `point` (a building close by, else a community), with how far, or null. A flat's
 * address never names a point: the caller is near that building, not in someone's flat. */
export function nearestPlace(places, point) {
  let best = null;
  for (const place of places) {
    const limit = place.kind === "community" ? NEAREST_COMMUNITY_M
      : place.kind === "building" || place.kind === "road_number" ? NEAREST_BUILDING_M : 0;
    const distance = distanceM(point.lat, point.lon, place.lat, place.lon);
    if (!limit || distance > limit) continue;
    const rank = place.kind === "community" ? 1 : 0; // a building near enough names the point better
    if (!best || rank < best.rank || (rank === best.rank && distance < best.distance)) best = { ...place, distance, rank };
  }
  return best;
}

/** The responders and clinics drawn on a map to pick on, for orientation, in their colours. */
export function landmarksOf(app) {
  return [...app.responders.values()].map((r) => {
    const status = r.kind === "clinic" ? "clinic" : responderStatusOf(app, r);
    return {
      id: r.responder_id, lat: r.lat, lon: r.lon, name: r.name, kind: r.kind === "clinic" ? "clinic" : "responder",
      status, label: status !== "off" && status !== "stale", // names only for those at work
    };
  });
}

/** Where to centre a map with no incident on it: the middle of the responders the console knows. */
export function middleOf(things) {
  const placed = things.filter(hasPosition);
  if (!placed.length) return null;
  return {
    lat: placed.reduce((sum, p) => sum + p.lat, 0) / placed.length,
    lon: placed.reduce((sum, p) => sum + p.lon, 0) / placed.length,
  };
}
