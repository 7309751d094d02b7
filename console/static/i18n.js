// Anxin pages: languages. One catalogue per language (static/i18n/<language>.json), flat "area.name" keys.
//
// Rules
//   1. Every visible string comes from the catalogue. Markup names its strings with data-i18n (text),
//      data-i18n-title, data-i18n-placeholder and data-i18n-aria-label; scripts call t(key, params).
//   2. A key the catalogue lacks is shown as the key itself and remembered in `missing` (the browser tests
//      read it), never dropped in silence.
//   3. Codes from the server (states, alarm types, skills) go through label(group, code); a code without an
//      entry is a missing key too.
//   4. Dates, times, distances and durations are formatted here, in the centre's time zone.
"use strict";

export const LANGUAGES = ["zh-CN", "en"];
const DEFAULT_LANGUAGE = "zh-CN";
const STORE_KEY = "anxin.lang";

export const missing = new Set();
const listeners = new Set();
let strings = {};
let language = DEFAULT_LANGUAGE;
let timeZone = "Asia/Shanghai";
let timeFormat = null;
let dateTimeFormat = null;
let dateFormat = null;

/** The language asked for by ?lang=, else the one chosen before, else Simplified Chinese. */
export function preferredLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try {
    stored = localStorage.getItem(STORE_KEY);
  } catch (_) {
    // storage may be off (private mode): the default is fine
  }
  return [asked, stored].find((code) => LANGUAGES.includes(code)) || DEFAULT_LANGUAGE;
}

export const currentLanguage = () => language;

export function setTimeZone(zone) {
  timeZone = zone || timeZone;
  makeFormats();
}

function makeFormats() {
  const base = { timeZone, hour12: false };
  timeFormat = new Intl.DateTimeFormat(language, { ...base, hour: "2-digit", minute: "2-digit", second: "2-digit" });
  dateTimeFormat = new Intl.DateTimeFormat(language, {
    ...base, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  dateFormat = new Intl.DateTimeFormat(language, { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
}

/** Loads a catalogue, translates the page and tells every listener. */
export async function setLanguage(code) {
  const next = LANGUAGES.includes(code) ? code : DEFAULT_LANGUAGE;
  const response = await fetch(`/static/i18n/${next}.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`catalogue ${next}: HTTP ${response.status}`);
  strings = await response.json();
  language = next;
  try {
    localStorage.setItem(STORE_KEY, next);
  } catch (_) {
    // not remembered; still switched
  }
  document.documentElement.lang = next;
  makeFormats();
  translate(document);
  for (const listener of listeners) listener(next);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Whether a catalogue is loaded (parts built before that are translated by setLanguage). */
export const ready = () => Object.keys(strings).length > 0;

export function has(key) {
  return typeof strings[key] === "string";
}

export function t(key, params) {
  const text = strings[key];
  if (typeof text !== "string") {
    missing.add(key);
    return key;
  }
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A server code in words: label("state", "received"). Empty codes are a dash. */
export function label(group, code) {
  if (code === null || code === undefined || code === "") return "—";
  return t(`${group}.${code}`);
}

export function translate(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const [attribute, data] of [["title", "i18nTitle"], ["placeholder", "i18nPlaceholder"],
    ["aria-label", "i18nAriaLabel"]]) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const node of root.querySelectorAll(selector)) node.setAttribute(attribute, t(node.dataset[data]));
  }
}

/** A <select> of the languages, each named in its own language. */
export function bindLanguageSelect(select) {
  select.replaceChildren(...LANGUAGES.map((code) => {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = { "zh-CN": "中文", en: "English" }[code];
    option.lang = code;
    return option;
  }));
  select.value = language;
  select.addEventListener("change", async () => {
    await setLanguage(select.value);
    const url = new URL(location.href);
    url.searchParams.delete("lang");
    history.replaceState(null, "", url);
  });
  onLanguageChange((code) => {
    select.value = code;
  });
}

// -- formatting ---------------------------------------------------------------------------------------

export const fmtTime = (epoch) => (epoch ? timeFormat.format(new Date(epoch * 1000)) : "—");
export const fmtDateTime = (epoch) => (epoch ? dateTimeFormat.format(new Date(epoch * 1000)) : "—");
/** A day with its year (a due date a year ahead): "2027/12/01". */
export const fmtDate = (epoch) => (epoch ? dateFormat.format(new Date(epoch * 1000)) : "—");

export function fmtDistance(metres) {
  if (metres === null || metres === undefined) return "—";
  if (metres < 1000) return t("unit.m", { n: Math.round(metres) });
  return t("unit.km", { n: (metres / 1000).toFixed(1) });
}

export function fmtEta(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("unit.s", { n: Math.round(seconds) });
  return t("unit.min", { n: Math.max(1, Math.round(seconds / 60)) });
}

/** Running clock text: m:ss, or h:mm:ss past an hour. */
export function fmtClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Age in whole years on the centre's today, from an ISO birth date. */
export function ageOn(birthDate, epoch) {
  if (!birthDate) return null;
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(epoch * 1000)).map((p) => [p.type, p.value]));
  const [year, month, day] = birthDate.split("-").map(Number);
  const today = [Number(parts.year), Number(parts.month), Number(parts.day)];
  return today[0] - year - ((today[1] < month || (today[1] === month && today[2] < day)) ? 1 : 0);
}

/** How long something has lasted, short: "45秒", "23分", "1时05分". */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return t("unit.dur_s", { n: s });
  if (s < 3600) return t("unit.dur_min", { n: Math.floor(s / 60) });
  return t("unit.dur_h", { h: Math.floor(s / 3600), m: String(Math.floor((s % 3600) / 60)).padStart(2, "0") });
}
