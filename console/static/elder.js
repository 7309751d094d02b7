// Anxin: one elder's file (老人档案) at /elder?id=<elder_id>: who they are, their home, care, contacts, devices,
// vouchers, assessments, health readings as charts, and one timeline of what happened to them, newest first.
//
// Rules
//   1. The file is opened for a reason: the page asks why first (GET /api/elders/{id}/file?why=&words=, which
//      the server journals with the reason) and remembers the answer for this tab (sessionStorage), per elder.
//   2. The timeline is paged (next_before) and filtered by section; drills only when asked.
//   3. Health readings come only to those who read health (supervisors); others are told so, not shown a gap.
//   4. Print: the browser's, with the print stylesheet of elder.css (A4, no buttons, a page per part);
//      "导出PDF": the server's Chinese PDF for a case conference (GET .../file.pdf, journaled the same way).
//   5. Every word through the catalogue; a timeline line says file.kind.<kind> with the entry's short fields.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, actorWords, el, errorText, loadConfig } from "./common.js";
import {
  bindLanguageSelect, currentLanguage, has, label, onLanguageChange, preferredLanguage, setLanguage, setTimeZone, t,
} from "./i18n.js";
import { forgetTelephony, phoneLink, watchTelephony } from "./dial.js";
import { bindStaffLogin } from "./login.js";
import { bindAccountMenu } from "./me.js";
import { explain } from "./reasons.js";

const WHY = ["incident", "follow_up", "care_planning", "case_conference", "assessment", "other"];
const FILTERS = ["all", "alarms", "calls", "services", "visits", "assessments", "notes"];
const STAFF_ROLES = new Set(["operator", "supervisor", "admin"]);
const WHY_KEY = "anxin.file.why";
const PAGE = 50;
// the readings drawn together on one chart (blood pressure); the others each on their own
const TOGETHER = { systolic: "blood_pressure", diastolic: "blood_pressure" };

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
const elderId = new URLSearchParams(location.search).get("id") || "";
let zone = "Asia/Shanghai";
let file = null; // the answer of the first page
let lines = [];
let nextBefore = null;
let section = "all";
let reason = null; // {why, words}

// -- the reason (rule 1) -------------------------------------------------------------------------------------

function remembered() {
  try {
    const all = JSON.parse(sessionStorage.getItem(WHY_KEY)) || {};
    return all[elderId] || null;
  } catch (_) {
    return null;
  }
}

function remember(value) {
  try {
    const all = JSON.parse(sessionStorage.getItem(WHY_KEY)) || {};
    all[elderId] = value;
    sessionStorage.setItem(WHY_KEY, JSON.stringify(all));
  } catch (_) {
    // storage off: the page asks again next time
  }
}

function paintWhy() {
  const checked = document.querySelector("input[name=why]:checked");
  const chosen = checked ? checked.value : (reason && reason.why) || "";
  $("why-choices").replaceChildren(...WHY.map((why) => el("label", { className: "why-choice" },
    el("input", { type: "radio", name: "why", value: why, checked: why === chosen }),
    el("span", {}, t(`file.why.${why}`)))));
}

async function submitWhy(event) {
  event.preventDefault();
  const picked = document.querySelector("input[name=why]:checked");
  const words = $("why-words").value.trim();
  if (!picked || (picked.value === "other" && !words)) {
    $("why-error").textContent = t(picked ? "file.why_words_needed" : "error.why_required");
    if (picked) $("why-words").focus();
    return;
  }
  $("why-error").textContent = "";
  reason = { why: picked.value, words };
  if (await load()) remember(reason);
}

function query(extra = {}) {
  const params = new URLSearchParams({ why: reason.why, words: reason.words || "", ...extra });
  return params.toString();
}

// -- reading ------------------------------------------------------------------------------------------------

async function load() {
  try {
    const drills = $("timeline-drills").checked ? "true" : "false";
    file = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}/file?${query({ section, drills, limit: PAGE })}`);
    lines = file.timeline;
    nextBefore = file.next_before;
    $("why-view").hidden = true;
    $("file-view").hidden = false;
    $("file-error").textContent = "";
    render();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    const target = $("file-view").hidden ? "why-error" : "file-error";
    $(target).textContent = errorText(error);
    if (error instanceof ApiError && error.status === 422) showWhy();
    return false;
  }
}

async function more() {
  if (!nextBefore) return;
  try {
    const drills = $("timeline-drills").checked ? "true" : "false";
    const page = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}/file?${query({ section, drills, limit: PAGE, before: nextBefore })}`);
    lines = lines.concat(page.timeline);
    nextBefore = page.next_before;
    renderTimeline();
  } catch (error) {
    $("file-error").textContent = errorText(error);
  }
}

async function exportPdf() {
  $("file-error").textContent = "";
  try {
    const response = await fetch(`/api/elders/${encodeURIComponent(elderId)}/file.pdf?${query()}`, {
      headers: { Authorization: `Bearer ${session.token}` },
    });
    if (!response.ok) throw new ApiError(response.status, "");
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `elder-${elderId}.pdf` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    $("file-error").textContent = errorText(error);
  }
}

// -- the sections -------------------------------------------------------------------------------------------

let longDate = null;
const when = (epoch) => {
  if (!longDate) {
    longDate = new Intl.DateTimeFormat(currentLanguage(), {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
    });
  }
  return epoch ? longDate.format(new Date(epoch * 1000)) : "—";
};
const blank = (value) => value === null || value === undefined || value === "";
const tel = (phone) => phoneLink(phone, { elderId });

function facts(pairs) {
  return el("dl", { className: "facts" }, pairs.filter(Boolean).flatMap(([term, value]) => [
    el("dt", {}, term), el("dd", {}, blank(value) ? "—" : value),
  ]));
}

function fill(id, ...children) {
  $(id).querySelector(".body").replaceChildren(...children);
}

function render() {
  if (!file) return;
  const elder = file.elder;
  $("file-name").textContent = elder.name;
  document.title = `${elder.name} · ${t("file.title")}`;
  const why = reason ? t(`file.why.${reason.why}`) + (reason.words ? `：${reason.words}` : "") : "";
  $("file-why").textContent = t("file.opened_for", { why });
  $("file-printed").textContent = t("file.printed", { time: when(Date.now() / 1000) });
  fill("sec-identity", facts([
    [t("file.name"), elder.name],
    [t("file.sex"), elder.sex ? t(`file.sex.${elder.sex}`) : null],
    [t("file.birth"), elder.birth_date],
    [t("file.age"), blank(elder.age) ? null : t("record.age", { n: elder.age })],
    [t("file.resident_id"), elder.resident_id],
    [t("file.lives_with"), elder.lives_with ? t(`file.lives_with.${elder.lives_with}`) : null],
    elder.active === false ? [t("file.inactive"), ""] : null,
    elder.merged_into ? [t("file.merged_into", { id: elder.merged_into }), ""] : null,
    elder.merged && elder.merged.length
      ? [t("file.merged", { names: elder.merged.map((m) => m.name || m.elder_id).join("、") }), ""] : null,
  ]));
  fill("sec-home", facts([
    [t("record.phone"), elder.phone ? tel(elder.phone) : null],
    [t("record.address"), elder.address],
    [t("record.community"), elder.community.split("/").join(" / ")],
    [t("file.position"), `${elder.lat.toFixed(5)}, ${elder.lon.toFixed(5)}`],
  ]));
  fill("sec-care", facts([
    [t("record.flags"), elder.risk_flags.length
      ? el("span", { className: "chips" }, elder.risk_flags.map((f) => el("span", { className: `chip risk-${f}` }, label("risk", f))))
      : t("record.no_flags")],
    [t("record.care_level"), blank(elder.care_level) ? null : t("record.care_level_value", { n: elder.care_level })],
    [t("record.medical_notes"), elder.medical_notes || t("record.none")],
    [t("record.access"), elder.access],
    [t("record.caregiver"), elder.caregiver_name || t("record.none")],
    [t("record.entitlement"), elder.entitlement ? label("entitlement", elder.entitlement) : null],
  ]));
  fill("sec-contacts", elder.contacts.length
    ? el("ol", { className: "contacts" }, elder.contacts.map((c) => el("li", {},
      el("span", { className: "contact-name" }, c.name),
      c.relation ? el("span", { className: "contact-relation muted" }, c.relation) : null,
      tel(c.phone),
      c.app ? el("span", { className: "tag" }, t("file.app")) : null)))
    : el("p", { className: "muted" }, t("record.no_contacts")));
  fill("sec-devices", elder.devices.length
    ? el("ul", { className: "devices" }, elder.devices.map((d) => {
      const status = d.status || {};
      return el("li", { dataset: { deviceId: d.device_id } },
        el("span", {}, label("protocol", d.protocol)),
        el("span", { className: "muted" }, d.device_id),
        el("span", {}, blank(status.battery) ? t("record.battery_unknown") : t("record.battery", { n: status.battery })),
        el("span", { className: "muted" }, status.last_seen ? t("record.last_seen", { time: when(status.last_seen) }) : t("record.never_seen")));
    }))
    : el("p", { className: "muted" }, t("record.no_devices")));
  renderVouchers(elder.vouchers);
  renderAssessments(file.assessments);
  renderHealth(file.health);
  renderFilters();
  renderTimeline();
}

const yuan = (fen) => (fen / 100).toFixed(2);

function renderVouchers(vouchers) {
  const current = vouchers.current || {};
  const charges = vouchers.charges || [];
  fill("sec-vouchers",
    el("p", {}, t("file.balance", { month: vouchers.month, yuan: yuan(current.available_fen || 0), allotted: yuan(current.allotted_fen || 0) })),
    el("h4", {}, t("file.charges")),
    charges.length
      ? el("ul", { className: "charges" }, charges.map((c) => el("li", { className: c.voided ? "voided" : "" },
        el("span", { className: "muted" }, c.month),
        el("span", {}, c.item_id),
        el("span", {}, t("file.charge", { voucher: yuan(c.voucher_fen), cash: yuan(c.cash_fen) })))))
      : el("p", { className: "muted" }, t("file.no_charges")));
}

function renderAssessments(assessments) {
  fill("sec-assessments", assessments.length
    ? el("ol", { className: "assessments" }, assessments.map((a) => el("li", {},
      el("span", { className: "muted" }, when(a.ts)),
      el("strong", {}, t("file.assessment_level", { level: labelled("assess.level", a.level) })),
      ...Object.entries(a.grades || {}).map(([k, v]) => el("span", { className: "grade" },
        `${t(`file.grades.${k}`)} ${labelled("assess.grade", v)}`)),
      blank(a.care_level) ? null : el("span", {}, t("record.care_level_value", { n: a.care_level })),
      a.reason ? el("span", {}, labelled("assess.why", a.reason)) : null,
      el("span", { className: "muted" }, t("file.assessor", { name: actorWords(a.assessor, a.assessor_name) })))))
    : el("p", { className: "muted" }, t("file.no_assessments")));
}

// -- health charts (rule 3): a small SVG line chart per reading, axes and units ------------------------------------

function renderHealth(health) {
  const body = $("sec-health").querySelector(".body");
  if (!file.health_shown) {
    body.replaceChildren(el("p", { className: "muted" }, t("file.health_hidden")));
    return;
  }
  const keys = Object.keys(health || {});
  if (!keys.length) {
    body.replaceChildren(el("p", { className: "muted" }, t("file.no_health")));
    return;
  }
  const charts = new Map(); // chart key -> [[name, series]]
  for (const key of keys) {
    const chart = TOGETHER[key] || key;
    if (!charts.has(chart)) charts.set(chart, []);
    charts.get(chart).push([key, health[key]]);
  }
  body.replaceChildren(...[...charts].map(([chart, series]) => lineChart(chart, series)));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function lineChart(chart, series) {
  const W = 320;
  const H = 150;
  const M = { left: 40, right: 10, top: 12, bottom: 28 };
  const points = series.flatMap(([, s]) => s.points);
  const times = points.map((p) => p[0]);
  const values = points.map((p) => p[1]);
  let [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [v0, v1] = [Math.min(...values), Math.max(...values)];
  if (t1 === t0) [t0, t1] = [t0 - 3600, t1 + 3600];
  const pad = (v1 - v0) * 0.1 || Math.max(1, Math.abs(v0) * 0.05);
  [v0, v1] = [v0 - pad, v1 + pad];
  const x = (ts) => M.left + ((ts - t0) / (t1 - t0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - v0) / (v1 - v0)) * (H - M.top - M.bottom);
  const unit = series[0][1].unit;
  const name = has(`file.reading.${chart}`) ? t(`file.reading.${chart}`) : chart;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": `${name} ${unit}` });
  root.append(
    svg("line", { x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom, class: "axis" }),
    svg("line", { x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom, class: "axis" }),
  );
  for (const v of [v0 + pad, (v0 + v1) / 2, v1 - pad]) {
    const shown = Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10;
    root.append(svg("text", { x: M.left - 4, y: y(v) + 3, class: "tick", "text-anchor": "end" }, String(shown)));
    root.append(svg("line", { x1: M.left, y1: y(v), x2: W - M.right, y2: y(v), class: "grid" }));
  }
  // the ends of the time axis: days, or hours within a day or two
  const span = Math.max(...times) - Math.min(...times);
  const day = new Intl.DateTimeFormat(currentLanguage(), span < 2 * 86400
    ? { timeZone: zone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }
    : { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
  root.append(svg("text", { x: M.left, y: H - 8, class: "tick" }, day.format(new Date(Math.min(...times) * 1000))));
  root.append(svg("text", { x: W - M.right, y: H - 8, class: "tick", "text-anchor": "end" }, day.format(new Date(Math.max(...times) * 1000))));
  series.forEach(([key, s], index) => {
    const path = s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: path, class: `series series-${index}`, "data-reading": key }));
    for (const p of s.points) root.append(svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2, class: `dot series-${index}` }));
  });
  const legend = series.length > 1
    ? el("span", { className: "legend" }, series.map(([key], index) => el("span", { className: `key series-${index}` }, t(`file.reading.${key}`))))
    : null;
  return el("figure", { className: "chart", dataset: { chart } },
    el("figcaption", {}, el("strong", {}, name), el("span", { className: "muted" }, unit ? ` (${unit})` : ""), legend),
    root);
}

// -- the timeline (rule 2, rule 5) -----------------------------------------------------------------------

const labelled = (group, code) => (blank(code) ? "" : has(`${group}.${code}`) ? t(`${group}.${code}`) : String(code));

/** A server phrase among a line's words (a note, an outcome) in the reader's language; a person's words as typed. */
const said = (value) => (typeof value === "string" ? explain(value) : value);

/** A line in words, as console/filepdf.py's line_words says it. */
function lineWords(line) {
  const d = line.detail || {};
  const params = {};
  for (const [key, value] of Object.entries(d)) params[key] = Array.isArray(value) ? value.join("、") : value;
  Object.assign(params, {
    text: said(d.text),
    note: said(d.note),
    reason: said(d.reason),
    alarm: labelled("alarm", d.alarm_type),
    status: labelled("assignment", d.status),
    kind: labelled("callkind", d.kind),
    wellbeing: labelled("wellbeing", d.wellbeing),
    // a referral's outcome is a code; an incident's, words (a person's, or the server's phrase)
    outcome: has(`outcome.${d.outcome}`) ? t(`outcome.${d.outcome}`) : said(d.outcome),
    responder: d.responder_name || d.responder_id || "",
    clinic: d.clinic_name || d.clinic_id || "",
    item: (currentLanguage() === "en" ? d.item_en : d.item_zh) || d.item_id || "",
    fields: (d.fields || []).map((field) => labelled("file.field", field)).join("、"),
    level: labelled("assess.level", d.level),
    left: labelled("left_care", d.reason),
    test: d.test ? t("flag.test") : "",
  });
  for (const key of Object.keys(params)) if (blank(params[key])) params[key] = "";
  const key = `file.kind.${line.kind}`;
  return has(key) ? t(key, params).trim() : line.kind;
}

function renderFilters() {
  $("timeline-filters").replaceChildren(...FILTERS.map((name) => el("button", {
    type: "button", className: "filter", dataset: { filter: name }, ariaPressed: String(name === section),
    onclick: () => {
      section = name;
      load();
    },
  }, t(`file.filter.${name}`))));
  for (const button of $("timeline-filters").children) button.setAttribute("aria-pressed", String(button.dataset.filter === section));
}

function renderTimeline() {
  $("timeline").replaceChildren(...lines.map((line) => el("li", {
    className: `line section-${line.section}${line.drill ? " drill" : ""}`,
    dataset: { kind: line.kind, section: line.section, seq: String(line.seq), incidentId: line.incident_id || "" },
  },
  el("time", { className: "when muted" }, when(line.ts)),
  el("span", { className: "what" }, lineWords(line)),
  line.drill ? el("span", { className: "tag" }, t("flag.drill")) : null,
  line.actor ? el("span", { className: "who muted" }, t("file.by", { who: actorWords(line.actor, line.actor_name) })) : null)));
  $("timeline-empty").hidden = lines.length > 0;
  $("timeline-more").hidden = !nextBefore;
}

// -- the page -----------------------------------------------------------------------------------------------

function start() {
  $("login-view").hidden = true;
  menu.show(); // paints the header, then showFor(role)
}

function showWhy() {
  $("why-view").hidden = false;
  $("file-view").hidden = true;
  paintWhy();
  $("why-words").value = (reason && reason.words) || "";
}

function showFor(role) {
  if (!session.current) return;
  if (!STAFF_ROLES.has(role)) {
    $("why-view").hidden = true;
    $("file-view").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = t("error.forbidden");
    return;
  }
  watchTelephony(session);
  if (file) return;
  reason = remembered();
  if (reason) load();
  else showWhy();
}

function showLogin(reasonKey) {
  forgetTelephony();
  file = null;
  lines = [];
  $("why-view").hidden = true;
  $("file-view").hidden = true;
  $("timeline").replaceChildren();
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  zone = config.timezone;
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    longDate = null;
    menu.relabel();
    paintWhy();
    render();
  });
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  $("why-form").addEventListener("submit", submitWhy);
  $("file-print").addEventListener("click", () => window.print());
  $("file-pdf").addEventListener("click", exportPdf);
  $("timeline-more").addEventListener("click", more);
  $("timeline-drills").addEventListener("change", () => load());
  if (session.current) start();
}

init();
