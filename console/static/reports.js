// Anxin reports (/reports): the period report of the reader's part of the network (GET /api/reports) over a
// month or a span of days, by district, street or community, drills in or out: the key figures, three charts
// drawn here as inline SVG (alarms per day with those answered within 60 s; the answer-time distribution; the
// outcomes), the areas in a table sorted by any column, the alarm types and sources; and the same report to
// download as CSV, Excel (in the page's language) or the monthly PDF (in Chinese). The hotline's calls have
// their own figures: offered, answered, within 60 s, the time to answer, abandoned in queue, missed,
// transferred, outbound (each shown when the report has it, so an older server's report still reads).
//
// For supervisors and admins (the API admits only them); anyone else is told so and reads nothing.
"use strict";

import {
  $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, noteServerDate, readError, serverNow, throttle,
} from "./common.js";
import {
  bindLanguageSelect, currentLanguage, fmtDateTime, fmtDuration, has, label, onLanguageChange, preferredLanguage,
  setLanguage, setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu, placeWords, scopeWords } from "./me.js";
import { zoned } from "./servicewords.js";

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
let answer = null;
let config = null;
let sort = { key: "area", desc: false };

/** The key figures: [path, words, kind]. */
const KEYS = [
  ["alarms", "report.f.alarms", "n"],
  ["share_within_60s", "report.f.share_within_60s", "share"],
  ["share_within_180s", "report.f.share_within_180s", "share"],
  ["answer_s.median", "report.k.answer_median", "s"],
  ["door_s.median", "report.k.door_median", "s"],
  ["outcomes.false_alarm", "report.outcome.false_alarm", "n"],
  ["outcomes.open", "report.outcome.open", "n"],
  ["technical", "report.f.technical", "n"],
  ["calls", "report.f.calls", "n"],
  ["call_share_within_60s", "report.f.call_share_within_60s", "share"],
];
/** The hotline's figures (of the totals): [path, words, kind]; a figure the report lacks is left out. */
const CALL_KEYS = [ // the calls offered and the share answered within 60 s are key figures above: not twice
  ["calls_answered", "report.call.answered", "n"],
  ["calls_answered_within_60s", "report.call.within_60s", "n"],
  ["call_answer_s.median", "report.call.answer_median", "s"],
  ["call_answer_s.p90", "report.call.answer_p90", "s"],
  ["calls_abandoned", "report.call.abandoned", "n"],
  ["calls_missed", "report.call.missed", "n"],
  ["calls_transferred", "report.call.transferred", "n"],
  ["calls_outbound", "report.call.outbound", "n"],
];
/** The columns of the areas, types and sources tables, after the name: [path, words, kind]. */
const COLUMNS = [
  ["alarms", "report.f.alarms", "n"],
  ["share_within_60s", "report.f.share_within_60s", "share"],
  ["answer_s.median", "report.f.answer_median", "n"],
  ["door_s.median", "report.f.door_median", "n"],
  ["outcomes.resolved", "report.outcome.resolved", "n"],
  ["outcomes.false_alarm", "report.outcome.false_alarm", "n"],
  ["outcomes.open", "report.outcome.open", "n"],
  ["calls", "report.f.calls", "n"],
];
const OUTCOMES = ["resolved", "false_alarm", "to_120", "to_110", "to_119", "open"];
const MONTHS_BACK = 24;

const figure = (figures, path) => path.split(".").reduce((v, part) => (v == null ? null : v[part]), figures);

/** A figure in words: a share as a percentage, seconds as a duration, a count as it is; nothing measured "—". */
function shown(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "share") return `${(value * 100).toFixed(1)}%`;
  if (kind === "s") return fmtDuration(value);
  return String(Math.round(value * 10) / 10);
}

const areaWords = (area) => (area ? placeWords(area) : t("report.no_place"));
const sourceWords = (source) => (has(`source.${source}`) ? t(`source.${source}`) : has(`protocol.${source}`) ? t(`protocol.${source}`) : source);

// -- asking ---------------------------------------------------------------------------------------------------

function dayAfter(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

/** The query of the choice made, or null while the days chosen make no span. */
function params() {
  const query = new URLSearchParams({ by: $("report-by").value, drill: String($("report-drills").checked) });
  if ($("report-mode").value === "month") {
    query.set("period", $("report-month").value);
  } else {
    const [start, last] = [$("report-start").value, $("report-end").value];
    if (!start || !last || last < start) return null;
    query.set("start", start);
    query.set("end", dayAfter(last));
  }
  return query;
}

let asked = 0; // the latest request: an answer to an earlier choice that arrives later is dropped

async function load() {
  if (!session.current || !SUPERVISOR_ROLES.has(session.current.role)) return;
  const query = params();
  $("report-error").textContent = query ? "" : t("report.range_wrong");
  if (!query) return;
  history.replaceState(null, "", `/reports?${query}`);
  const mine = ++asked;
  $("report").setAttribute("aria-busy", "true");
  let got = null;
  try {
    got = await session.api("GET", `/api/reports?${query}`);
  } catch (error) {
    if (mine !== asked) return;
    if (!(error instanceof ApiError && error.status === 401)) $("report-error").textContent = errorText(error);
  }
  if (mine !== asked) return;
  answer = got;
  $("report").setAttribute("aria-busy", "false");
  render();
}

/** The report as a file, as the server writes it (its name from Content-Disposition), saved. */
async function download(format) {
  const query = params();
  if (!session.current || !query) return;
  if (format === "xlsx") query.set("lang", currentLanguage());
  $("report-error").textContent = "";
  try {
    const response = await fetch(`/api/reports.${format}?${query}`, { headers: { Authorization: `Bearer ${session.token}` } });
    noteServerDate(response);
    if (!response.ok) throw await readError(response);
    const link = $("report-download");
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name ? name[1] : `anxin-report.${format}`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    $("report-error").textContent = errorText(error);
  }
}

// -- showing --------------------------------------------------------------------------------------------------

function render() {
  const report = answer;
  $("report-heading").textContent = report ? t("report.heading", { period: periodWords(report.period) }) : "";
  $("report-about").replaceChildren(...(report && session.current ? [
    t("report.scope", { scope: scopeWords(session.current.scopes) }),
    t("report.level_words", { by: t(`report.by.${report.by}`) }),
    t(report.drill_included ? "report.drill_included" : "report.drill_excluded"),
    t("report.generated", { time: fmtDateTime(report.generated_at) }),
  ] : []).map((part) => el("span", {}, part)));
  $("report-empty").hidden = !report || report.totals.alarms > 0;
  $("report-keys").replaceChildren(...(report ? KEYS : []).map(([path, key, kind]) => el("div",
    { className: "key-figure", dataset: { figure: path } },
    el("dt", {}, t(key)), el("dd", {}, shown(figure(report.totals, path), kind)))));
  renderCalls(report);
  drawCharts();
  renderAreas();
  renderSmall("types-table", "report.alarm_type", report ? report.alarm_types : [], (row) => label("alarm", row.alarm_type));
  renderSmall("sources-table", "report.source", report ? report.sources : [], (row) => sourceWords(row.source));
}

/** Present means the key is in the report (its value may be null: nothing measured, a dash). */
const present = (figures, path) => figure(figures, path.split(".")[0]) !== undefined;

function renderCalls(report) {
  const keys = report ? CALL_KEYS.filter(([path]) => present(report.totals, path)) : [];
  $("report-calls").hidden = keys.length === 0;
  $("report-call-keys").replaceChildren(...keys.map(([path, key, kind]) => el("div",
    { className: "key-figure", dataset: { figure: path } },
    el("dt", {}, t(key)), el("dd", {}, shown(figure(report.totals, path), kind)))));
}

function periodWords(period) {
  if (/^\d{4}-\d{2}$/.test(period.label)) return monthWords(period.label);
  const last = new Date(`${period.end_day}T00:00:00Z`);
  last.setUTCDate(last.getUTCDate() - 1);
  return t("report.period_range", { start: period.start_day, end: last.toISOString().slice(0, 10) });
}

const monthWords = (value) => t("report.month_is", { year: value.slice(0, 4), month: value.slice(5) });

function cell(value, kind) {
  return el("td", { className: "num" }, kind === "share" ? shown(value, kind) : value == null ? "—" : String(Math.round(value)));
}

function renderAreas() {
  const columns = [["area", "report.area", "text"], ...COLUMNS];
  $("areas-head").replaceChildren(...columns.map(([path, key]) => {
    const sorted = sort.key === path;
    return el("th", { className: path === "area" ? "" : "num", "aria-sort": sorted ? (sort.desc ? "descending" : "ascending") : "none" },
      el("button", { type: "button", className: "sort", dataset: { sort: path }, onclick: () => sortBy(path) },
        t(key), sorted ? (sort.desc ? " ▼" : " ▲") : ""));
  }));
  const rows = answer ? [...answer.areas] : [];
  const value = (row) => (sort.key === "area" ? areaWords(row.area) : figure(row.figures, sort.key));
  rows.sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (x == null || y == null) return x == null ? (y == null ? 0 : 1) : -1; // nothing measured: last
    const order = typeof x === "string" ? x.localeCompare(y, currentLanguage()) : x - y;
    return sort.desc ? -order : order;
  });
  $("areas-body").replaceChildren(...rows.map((row) => el("tr", { dataset: { area: row.area } },
    el("th", { scope: "row" }, areaWords(row.area)),
    ...COLUMNS.map(([path, , kind]) => cell(figure(row.figures, path), kind)))));
}

function sortBy(path) {
  sort = { key: path, desc: sort.key === path ? !sort.desc : path !== "area" };
  renderAreas();
}

function renderSmall(id, head, rows, name) {
  const columns = COLUMNS.slice(0, 3);
  $(id).replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, t(head)), ...columns.map(([, key]) => el("th", { className: "num" }, t(key))))),
    el("tbody", {}, ...rows.map((row) => el("tr", {}, el("th", { scope: "row" }, name(row)),
      ...columns.map(([path, , kind]) => cell(figure(row.figures, path), kind))))));
}

// -- charts (inline SVG, drawn to the width they have) --------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawCharts() {
  const report = answer;
  draw("chart-daily", (w) => dailyChart(w, report ? report.days : [], report ? madeOn(report) : ""));
  draw("chart-buckets", (w) => bucketsChart(w, report ? report.totals.answer_buckets : []));
  draw("chart-outcomes", (w) => outcomesChart(w, report ? report.totals.outcomes : {}));
}

function draw(id, chart) {
  const box = $(id).querySelector(".chart-box");
  box.replaceChildren(chart(Math.max(260, Math.floor(box.clientWidth || 600))));
}

function canvas(w, h, name) {
  return svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: "report-svg", role: "img", "aria-label": name });
}

function empty(root, w, h) {
  root.append(svg("text", { x: w / 2, y: h / 2, class: "empty-chart", "text-anchor": "middle" }, t("report.chart.empty")));
  return root;
}

/** The value axis: the base line, and the top and half with their numbers and a faint grid line. */
function axis(root, m, w, h, top) {
  const y = (v) => h - m.bottom - (v / top) * (h - m.top - m.bottom);
  root.append(svg("line", { x1: m.left, y1: y(0), x2: w - m.right, y2: y(0), class: "axis" }));
  for (const v of [...new Set([Math.floor(top / 2), top])].filter((n) => n > 0)) {
    root.append(svg("line", { x1: m.left, y1: y(v), x2: w - m.right, y2: y(v), class: "grid" }));
    root.append(svg("text", { x: m.left - 4, y: y(v) + 4, class: "tick", "text-anchor": "end" }, String(v)));
  }
  return y;
}

/** The centre's local day the report was made on (YYYY-MM-DD): days after it have not happened yet. */
function madeOn(report) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: report.period.timezone }).format(new Date(report.generated_at * 1000));
}

/** Alarms a day as bars, those answered within 60 s as a line that stops at the day the report was made. */
function dailyChart(w, days, today) {
  const h = 200;
  const m = { left: 30, right: 8, top: 10, bottom: 24 };
  const root = canvas(w, h, t("report.chart.daily"));
  const top = Math.max(0, ...days.map((d) => d.alarms));
  if (!top) return empty(root, w, h);
  const y = axis(root, m, w, h, top);
  const step = (w - m.left - m.right) / days.length;
  const every = Math.max(1, Math.ceil(42 / step)); // a day's number every so many bars, 42 px apart at least
  const line = [];
  days.forEach((day, n) => {
    const x = m.left + n * step;
    root.append(svg("rect", { x: (x + step * 0.15).toFixed(1), y: y(day.alarms).toFixed(1), width: (step * 0.7).toFixed(1),
      height: (y(0) - y(day.alarms)).toFixed(1), class: "bar", "data-day": day.day, "data-alarms": day.alarms }));
    if (day.day <= today) line.push(`${(x + step / 2).toFixed(1)},${y(day.answered_within_60s).toFixed(1)}`);
    if (n % every === 0) root.append(svg("text", { x: x + step / 2, y: h - 8, class: "tick", "text-anchor": "middle" }, day.day.slice(5)));
  });
  root.append(svg("polyline", { points: line.join(" "), class: "line" }));
  for (const point of line) {
    const [cx, cy] = point.split(",");
    root.append(svg("circle", { cx, cy, r: Math.min(3, step / 3).toFixed(1), class: "dot" }));
  }
  return root;
}

function bucketsChart(w, buckets) {
  const m = { left: 30, right: 8, top: 16, bottom: 24 };
  const narrow = (w - m.left - m.right) / buckets.length < 64; // the names take turns on two lines
  if (narrow) m.bottom = 38;
  const h = 180 + (narrow ? 14 : 0);
  const root = canvas(w, h, t("report.chart.buckets"));
  const top = Math.max(0, ...buckets);
  if (!top) return empty(root, w, h);
  const y = axis(root, m, w, h, top);
  const step = (w - m.left - m.right) / buckets.length;
  buckets.forEach((count, n) => {
    const x = m.left + n * step;
    root.append(svg("rect", { x: (x + step * 0.15).toFixed(1), y: y(count).toFixed(1), width: (step * 0.7).toFixed(1),
      height: (y(0) - y(count)).toFixed(1), class: n < 3 ? "bar" : "bar late", "data-bucket": n }));
    root.append(svg("text", { x: x + step / 2, y: y(count) - 3, class: "count", "text-anchor": "middle" }, String(count)));
    const below = narrow && n % 2 ? 14 : 0;
    root.append(svg("text", { x: x + step / 2, y: h - 22 + below + (narrow ? 0 : 14), class: "tick", "text-anchor": "middle" }, t(`report.bucket.${n}`)));
  });
  return root;
}

/** About how wide a label is at the charts' 11 px: a Chinese character a full em, anything else about 0.6. */
const textWidth = (text) => [...text].reduce((sum, c) => sum + (c.charCodeAt(0) > 0x2e80 ? 11 : 6.6), 0);

function outcomesChart(w, outcomes) {
  const row = 24;
  const h = row * OUTCOMES.length + 8;
  const names = OUTCOMES.map((key) => t(`report.outcome.${key}`));
  const left = Math.max(...names.map(textWidth)) + 12;
  const root = canvas(w, h, t("report.chart.outcomes"));
  const top = Math.max(0, ...OUTCOMES.map((key) => outcomes[key] || 0));
  if (!top) return empty(root, w, h);
  const width = w - left - 40;
  OUTCOMES.forEach((key, n) => {
    const count = outcomes[key] || 0;
    const y = 4 + n * row;
    root.append(svg("text", { x: left - 6, y: y + 15, class: "tick name", "text-anchor": "end" }, names[n]));
    root.append(svg("rect", { x: left, y: y + 4, width: ((width * count) / top).toFixed(1), height: row - 10, class: `bar outcome-${key}`, "data-outcome": key }));
    root.append(svg("text", { x: left + (width * count) / top + 4, y: y + 15, class: "count" }, String(count)));
  });
  return root;
}

// -- the page -------------------------------------------------------------------------------------------------

/** The months to choose from, this one first, in the page's words; a month asked for in the address is added. */
function fillMonths(chosen) {
  const [year, month] = zoned(serverNow(), config.timezone).date.split("-").map(Number);
  const months = [];
  for (let back = 0; back < MONTHS_BACK; back += 1) {
    const index = year * 12 + (month - 1) - back;
    months.push(`${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`);
  }
  if (chosen && /^\d{4}-\d{2}$/.test(chosen) && !months.includes(chosen)) months.push(chosen);
  $("report-month").replaceChildren(...months.map((value) => el("option", { value }, monthWords(value))));
  $("report-month").value = chosen && months.includes(chosen) ? chosen : months[0];
}

function showMode() {
  const range = $("report-mode").value === "range";
  $("report-month-control").hidden = range;
  $("report-range-control").hidden = !range;
  if (range && !$("report-start").value) {
    const today = zoned(serverNow(), config.timezone).date;
    $("report-start").value = `${today.slice(0, 8)}01`;
    $("report-end").value = today;
  }
}

function showFor(role) {
  if (!session.current) return;
  const allowed = SUPERVISOR_ROLES.has(role);
  $("reports-view").hidden = !allowed;
  $("reports-denied").hidden = allowed;
  $("reports-denied-text").textContent = allowed ? "" : t("report.denied", { role: label("role", role) });
  if (allowed && !answer) load();
  if (!allowed) {
    answer = null;
    render();
  }
}

function start() {
  $("login-view").hidden = true;
  menu.show(); // paints the header, then showFor(role)
}

function showLogin(reasonKey) {
  answer = null;
  render();
  $("reports-view").hidden = true;
  $("reports-denied").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

/** The choice the address names (a reload, a link shared): period or start/end, by, drill. */
function fromAddress() {
  const query = new URLSearchParams(location.search);
  if (["district", "street", "community"].includes(query.get("by"))) $("report-by").value = query.get("by");
  $("report-drills").checked = query.get("drill") === "true";
  if (query.get("start") && query.get("end")) {
    $("report-mode").value = "range";
    $("report-start").value = query.get("start");
    const last = new Date(`${query.get("end")}T00:00:00Z`);
    last.setUTCDate(last.getUTCDate() - 1);
    $("report-end").value = Number.isNaN(last.getTime()) ? "" : last.toISOString().slice(0, 10);
  }
  fillMonths(query.get("period"));
  showMode();
}

async function init() {
  [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    fillMonths($("report-month").value);
    render();
  });
  fromAddress();
  $("report-mode").addEventListener("change", () => {
    showMode();
    load();
  });
  for (const id of ["report-month", "report-start", "report-end", "report-by", "report-drills"]) {
    $(id).addEventListener("change", load);
  }
  for (const button of document.querySelectorAll("[data-format]")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }
  $("report-form").addEventListener("submit", (event) => event.preventDefault());
  window.addEventListener("resize", throttle(drawCharts, 200));
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  if (session.current) start();
  else showLogin(null);
}

init();
