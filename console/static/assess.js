// The needs assessment page (能力评估): an assessor's list of who is due, the form of MZ/T 039-2013, and the result.
//
// Rules
//   1. The server scores: the page sends item scores and shows what POST /api/assessment/score (while filling in)
//      and POST /api/elders/{id}/assessments (saving) answer; it never computes a grade or a level itself.
//   2. The form comes from GET /api/assessment/form (items, their scores, domains, reasons, diseases); every word
//      on it comes from the catalogues (assess.item.*, assess.opt.<item>.<score>).
//   3. In a coma (consciousness 3) the other items need not be answered: they are set aside, as the standard says.
//   4. Data is never written as HTML.
"use strict";

import { $, Session, actorWords, el, errorText, loadConfig } from "./common.js";
import {
  ageOn, bindLanguageSelect, fmtDate, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";

const ROLES = ["assessor", "supervisor", "admin"];
const LIVES_WITH = ["alone", "spouse", "children", "relatives", "carer", "others"];
const COMA = 3;
const session = new Session("anxin.assess.session");
const page = { form: null, due: null, found: [], record: null, answers: {}, preview: null, result: null, asked: 0 };

// -- the lists ----------------------------------------------------------------------------------------------

async function loadDue() {
  try {
    page.due = await session.api("GET", "/api/assessments/due?within_days=30");
    renderDue();
  } catch (error) {
    $("assess-error").textContent = errorText(error);
  }
}

function renderDue() {
  const due = page.due || { due: [], total: 0 };
  $("due-count").textContent = t("assess.due_count", { n: due.total });
  $("due").replaceChildren(...due.due.map((line) => elderItem(line, dueWords(line))));
  $("due-empty").hidden = due.due.length > 0;
}

function dueWords(line) {
  const when = line.reason === "initial" ? "" : ` · ${fmtDate(line.due)}`;
  return `${t(`assess.why.${line.reason}`)}${when}${line.overdue && line.reason !== "initial" ? ` · ${t("assess.overdue")}` : ""}`;
}

function elderItem(line, words) {
  const place = (line.community || "").split("/").slice(1).join(" ");
  return el("li", {},
    el("button", { type: "button", className: "elder-pick", dataset: { elderId: line.elder_id },
      onclick: () => open(line.elder_id) },
    el("strong", {}, line.name), " ", el("span", { className: "muted" }, place),
    words ? el("span", { className: line.overdue ? "due overdue" : "due" }, words) : null));
}

async function find(event) {
  event.preventDefault();
  const q = $("find-input").value.trim();
  if (!q) return;
  try {
    page.found = (await session.api("GET", `/api/assessment/elders?q=${encodeURIComponent(q)}`)).elders;
    $("found").replaceChildren(...(page.found.length ? page.found.map((e) => elderItem(e, e.phone || ""))
      : [el("li", { className: "muted" }, t("assess.found_none"))]));
  } catch (error) {
    $("found").replaceChildren(el("li", { className: "error" }, errorText(error)));
  }
}

// -- one elder ----------------------------------------------------------------------------------------------

async function open(elderId) {
  const asked = ++page.asked;
  try {
    const record = await session.api("GET", `/api/elders/${encodeURIComponent(elderId)}/assessments`);
    if (asked !== page.asked) return;
    page.record = record;
    page.answers = {};
    page.preview = null;
    page.result = null;
    $("assess-form").reset();
    $("risk-events").value = String(record.recent_falls || 0);
    $("lives-with").value = record.lives_with || "";
    $("assess-error").textContent = "";
    renderElder();
    renderForm();
    $("assess-form").hidden = false;
    $("result").hidden = true;
    $("elder-head").scrollIntoView({ block: "start" });
  } catch (error) {
    $("assess-error").textContent = errorText(error);
  }
}

function renderElder() {
  const r = page.record;
  $("pick-hint").hidden = Boolean(r);
  $("elder-head").hidden = !r;
  if (!r) return;
  $("elder-name").textContent = r.name;
  const age = r.birth_date ? ageOn(r.birth_date, Date.now() / 1000) : null;
  const facts = [
    age === null ? null : t("assess.age", { age }),
    (r.community || "").split("/").slice(1).join(" "),
    t("assess.care_level", { level: r.care_level === null ? "—" : r.care_level }),
    r.lives_with ? label("lives_with", r.lives_with) : null,
  ].filter(Boolean);
  $("elder-facts").textContent = facts.join(" · ");
  $("elder-due").textContent = r.due ? t("assess.next_due", {
    why: t(`assess.why.${r.due.reason}`),
    when: r.due.reason === "initial" ? t("assess.now") : fmtDate(r.due.due),
  }) : "";
  $("elder-due").className = r.due && r.due.overdue ? "due overdue" : "due";
  $("history-count").textContent = `(${r.assessments.length})`;
  $("history").replaceChildren(...r.assessments.map((a) => el("li", {},
    el("strong", {}, `${fmtDate(a.ts)} · ${t(`assess.level.${a.level}`)}`), " ",
    el("span", { className: "muted" }, `${t(`assess.why.${a.reason}`)} · ${actorWords(a.assessor, a.assessor_name)}`),
    el("div", { className: "muted" }, page.form.domains.filter((d) => d in a.grades)
      .map((d) => `${t(`assess.domain.${d}`)} ${t(`assess.grade.${a.grades[d]}`)}`).join(" · ")))));
}

// -- the form -----------------------------------------------------------------------------------------------

function renderForm() {
  const form = page.form;
  $("reason").replaceChildren(el("option", { value: "" }, t("assess.reason_pick")),
    ...form.reasons.map((r) => el("option", { value: r }, t(`assess.why.${r}`))));
  const due = page.record && page.record.due;
  $("reason").value = due ? due.reason : "";
  $("lives-with").replaceChildren(el("option", { value: "" }, t("assess.lives_with_unknown")),
    ...LIVES_WITH.map((w) => el("option", { value: w }, label("lives_with", w))));
  $("lives-with").value = (page.record && page.record.lives_with) || "";
  $("diseases").replaceChildren(...form.diseases.map((d) => el("label", { className: "check" },
    el("input", { type: "checkbox", name: "disease", value: d }), " ", t(`assess.disease.${d}`))));
  $("domains").replaceChildren(...form.domains.map((domain) => el("fieldset", { className: "domain", dataset: { domain } },
    el("legend", {}, t(`assess.domain.${domain}`), " ", el("span", { className: "grade muted", dataset: { grade: domain } })),
    ...form.items.filter((i) => i.domain === domain).map(itemBlock))));
  renderSummary();
}

function itemBlock(item) {
  const name = `item-${item.item}`;
  return el("div", { className: "item", dataset: { item: item.item }, role: "radiogroup", "aria-label": t(`assess.item.${item.item}`) },
    el("p", { className: "item-name" }, t(`assess.item.${item.item}`)),
    ...item.scores.map((score) => el("label", { className: "option" },
      el("input", { type: "radio", name, value: String(score), onchange: () => answer(item.item, score) }),
      el("span", { className: "score" }, t("assess.points", { n: score })), " ",
      el("span", {}, t(`assess.opt.${item.item}.${score}`)))));
}

function answer(item, score) {
  page.answers[item] = score;
  const coma = page.answers.consciousness === COMA;
  for (const block of document.querySelectorAll(".item")) {
    const aside = coma && block.dataset.item !== "consciousness";
    block.classList.toggle("aside", aside);
    for (const input of block.querySelectorAll("input")) input.disabled = aside;
  }
  preview();
}

function needed() {
  const coma = page.answers.consciousness === COMA;
  return page.form.items.filter((i) => !(i.item in page.answers) && !(coma && i.item !== "consciousness"));
}

function sent() {
  const coma = page.answers.consciousness === COMA;
  return Object.fromEntries(Object.entries(page.answers).filter(([item]) => !coma || item === "consciousness"));
}

async function preview() {
  renderSummary();
  if (needed().length) return;
  const body = { answers: sent(), diagnosis: $("diagnosis").checked, risk_events: riskEvents() };
  try {
    page.preview = await session.api("POST", "/api/assessment/score", body);
  } catch (error) {
    page.preview = null;
    $("assess-error").textContent = errorText(error);
  }
  renderSummary();
}

function riskEvents() {
  const n = Number.parseInt($("risk-events").value, 10);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 99) : 0;
}

function renderSummary() {
  const left = page.form ? needed().length : 0;
  $("left").textContent = left ? t("assess.left", { n: left }) : "";
  const p = left ? null : page.preview;
  for (const node of document.querySelectorAll("[data-grade]")) {
    const domain = node.dataset.grade;
    node.textContent = p && domain in p.grades
      ? `${domain in p.totals ? t("assess.total", { n: p.totals[domain] }) + " · " : ""}${t(`assess.grade.${p.grades[domain]}`)}`
      : "";
  }
  if (!p) {
    $("summary").replaceChildren();
    return;
  }
  $("summary").replaceChildren(...[
    el("p", { className: `level level-${p.level}` }, t("assess.level_is", { level: t(`assess.level.${p.level}`) })),
    p.level !== p.preliminary ? el("p", { className: "muted" }, t("assess.raised", {
      from: t(`assess.level.${p.preliminary}`), why: p.changes.map((c) => t(`assess.change.${c}`)).join("、"),
    })) : null,
    el("p", { className: "muted" }, t("assess.sets_care_level", { n: p.care_level })),
  ].filter(Boolean));
}

async function save(event) {
  event.preventDefault();
  $("assess-error").textContent = "";
  if (!$("reason").value) {
    $("assess-error").textContent = t("assess.reason_needed");
    $("reason").focus();
    return;
  }
  const missing = needed();
  if (missing.length) {
    $("assess-error").textContent = t("assess.answer_all", { item: t(`assess.item.${missing[0].item}`) });
    const first = document.querySelector(`.item[data-item="${missing[0].item}"] input`);
    if (first) first.focus();
    return;
  }
  const body = {
    reason: $("reason").value, answers: sent(), diagnosis: $("diagnosis").checked, risk_events: riskEvents(),
    lives_with: $("lives-with").value || null, note: $("note").value.trim(),
    diseases: [...document.querySelectorAll("input[name=disease]:checked")].map((i) => i.value),
  };
  $("save").disabled = true;
  try {
    const elderId = page.record.elder_id;
    page.result = await session.api("POST", `/api/elders/${encodeURIComponent(elderId)}/assessments`, body);
    page.record = page.result.record;
    renderElder();
    renderResult();
    $("assess-form").hidden = true;
    loadDue();
  } catch (error) {
    $("assess-error").textContent = errorText(error);
  } finally {
    $("save").disabled = false;
  }
}

function renderResult() {
  const r = page.result;
  if (!r) return;
  const care = r.care_level;
  $("result").replaceChildren(
    el("h2", {}, t("assess.saved")),
    el("p", { className: `level level-${r.level}` }, t("assess.level_is", { level: t(`assess.level.${r.level}`) })),
    el("p", {}, t("assess.care_changed", { before: care.before === null ? "—" : care.before, after: care.after })),
    ...(r.triage.length ? r.triage.map((line) => el("p", { className: "triage" }, t("assess.triage_changed", {
      alarm: label("alarm", line.alarm_type), before: line.before, after: line.after,
    }))) : [el("p", { className: "muted" }, t("assess.triage_same"))]),
    el("button", { type: "button", onclick: () => open(page.record.elder_id) }, t("assess.again")));
  $("result").hidden = false;
}

// -- login ----------------------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    const who = await session.login($("login-username").value.trim(), $("login-password").value);
    if (!ROLES.includes(who.role)) {
      session.end();
      $("login-error").textContent = t("assess.not_assessor");
      return;
    }
    $("login-password").value = "";
    start();
  } catch (error) {
    $("login-error").textContent = errorText(error);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function start() {
  $("login-view").hidden = true;
  $("assess-view").hidden = false;
  $("logout-button").hidden = false;
  $("who").textContent = session.current.name || session.current.username;
  try {
    page.form = await session.api("GET", "/api/assessment/form");
  } catch (error) {
    $("assess-error").textContent = errorText(error);
    return;
  }
  loadDue();
}

function showLogin(reasonKey) {
  page.record = null;
  page.due = null;
  $("assess-view").hidden = true;
  $("logout-button").hidden = true;
  $("login-view").hidden = false;
  $("who").textContent = "";
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

function rerender() {
  if (!page.form) return;
  renderDue();
  if (page.record) {
    renderElder();
    if (!$("assess-form").hidden) {
      const answers = { ...page.answers };
      renderForm();
      for (const [item, score] of Object.entries(answers)) {
        const input = document.querySelector(`input[name="item-${item}"][value="${score}"]`);
        if (input) input.checked = true;
      }
      page.answers = answers;
      renderSummary();
    }
    renderResult();
  }
}

async function init() {
  const [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(rerender);
  $("login-form").addEventListener("submit", login);
  $("login-submit").disabled = false;
  $("logout-button").addEventListener("click", () => session.logout());
  $("find-form").addEventListener("submit", find);
  $("assess-form").addEventListener("submit", save);
  $("diagnosis").addEventListener("change", preview);
  $("risk-events").addEventListener("change", preview);
  session.onEnd = showLogin;
  if (session.current && ROLES.includes(session.current.role)) start();
}

init();
