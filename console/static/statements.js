// Anxin monthly statements (/statements): the delivered services of a month in the reader's part of the
// network, per elder, per provider or per community, with the total; printed on A4 (console.css @media print)
// or downloaded as CSV (GET /api/statements with Accept: text/csv: UTF-8 with a BOM, yuan, the total last).
//
// For supervisors and admins (the API admits only them); anyone else is told so and reads nothing.
"use strict";

import { $, ApiError, STAFF_SESSION, Session, el, errorText, loadConfig, noteServerDate, serverNow } from "./common.js";
import {
  bindLanguageSelect, currentLanguage, fmtDateTime, label, onLanguageChange, preferredLanguage, setLanguage,
  setTimeZone, t,
} from "./i18n.js";
import { bindStaffLogin } from "./login.js";
import { SUPERVISOR_ROLES, bindAccountMenu, scopeWords } from "./me.js";
import { yuan, zoned } from "./servicewords.js";

const session = new Session(STAFF_SESSION);
const menu = bindAccountMenu(session, { onChange: (who) => showFor(who.role) });
let answer = null;
let config = null;

function query() {
  const month = $("statement-month").value;
  const by = $("statement-by").value;
  return `/api/statements?month=${encodeURIComponent(month)}&by=${encodeURIComponent(by)}`;
}

let asked = 0; // the latest request: an answer to an earlier choice that arrives later is dropped

async function load() {
  if (!session.current || !SUPERVISOR_ROLES.has(session.current.role) || !$("statement-month").value) return;
  $("statement-error").textContent = "";
  const mine = ++asked;
  let got = null;
  try {
    got = await session.api("GET", query());
  } catch (error) {
    if (mine !== asked) return;
    if (!(error instanceof ApiError && error.status === 401)) $("statement-error").textContent = errorText(error);
  }
  if (mine !== asked) return;
  answer = got;
  render();
}

function keyWords(row, by) {
  if (by === "elder") return row.name ? t("statement.elder_key", { name: row.name, id: row.key }) : row.key;
  if (by === "provider") return row.key === "centre" ? t("statement.centre") : row.name || row.key;
  return row.key.split("/").join(" ");
}

function render() {
  const by = answer ? answer.by : $("statement-by").value;
  $("statement-key-head").textContent = t(`statement.by_${by}`);
  $("statement-heading").textContent = answer
    ? t("statement.heading", { month: answer.month, by: t(`statement.by_${by}`) }) : "";
  $("statement-scope").textContent = session.current ? t("statement.scope", { scope: scopeWords(session.current.scopes) }) : "";
  const rows = answer ? answer.rows : [];
  $("statement-body").replaceChildren(...rows.map((row) => el("tr", { dataset: { key: row.key } },
    el("td", {}, keyWords(row, by)),
    el("td", { className: "num" }, String(row.deliveries)),
    el("td", { className: "num" }, yuan(row.total_fen)),
    el("td", { className: "num" }, yuan(row.voucher_fen)),
    el("td", { className: "num" }, yuan(row.cash_fen)))));
  const total = answer ? answer.total : null;
  $("statement-total-deliveries").textContent = total ? String(total.deliveries) : "";
  $("statement-total-fen").textContent = total ? yuan(total.total_fen) : "";
  $("statement-total-voucher").textContent = total ? yuan(total.voucher_fen) : "";
  $("statement-total-cash").textContent = total ? yuan(total.cash_fen) : "";
  $("statement-total").dataset.totalFen = total ? String(total.total_fen) : "";
  $("statement-empty").hidden = !answer || rows.length > 0;
  $("statement-printed").textContent = answer ? t("statement.made", { time: fmtDateTime(serverNow()) }) : "";
}

/** The CSV as the server writes it (its BOM, its Chinese headers on a Chinese page), saved as a file. */
async function download() {
  if (!session.current) return;
  $("statement-error").textContent = "";
  try {
    const response = await fetch(query(), {
      headers: { Authorization: `Bearer ${session.token}`, Accept: "text/csv", "Accept-Language": currentLanguage() },
    });
    noteServerDate(response);
    if (!response.ok) throw new ApiError(response.status, "");
    const blob = await response.blob();
    const link = $("statement-download");
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    link.href = URL.createObjectURL(blob);
    link.download = name ? name[1] : "statement.csv";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    $("statement-error").textContent = errorText(error);
  }
}

const MONTHS_BACK = 24;

/** The months to choose from, this one first, in the page's words (the browser's own month input speaks the
 * browser's language); a month asked for in the address is added when older. */
function fillMonths(asked) {
  const [year, month] = zoned(serverNow(), config.timezone).date.split("-").map(Number);
  const months = [];
  for (let back = 0; back < MONTHS_BACK; back += 1) {
    const index = year * 12 + (month - 1) - back;
    months.push(`${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`);
  }
  if (asked && /^\d{4}-\d{2}$/.test(asked) && !months.includes(asked)) months.push(asked);
  const words = (value) => t("statement.month_is", { year: value.slice(0, 4), month: value.slice(5) });
  $("statement-month").replaceChildren(...months.map((value) => el("option", { value }, words(value))));
  $("statement-month").value = asked && months.includes(asked) ? asked : months[0];
}

function showFor(role) {
  if (!session.current) return;
  const allowed = SUPERVISOR_ROLES.has(role);
  $("statements-view").hidden = !allowed;
  $("statements-denied").hidden = allowed;
  $("statements-denied-text").textContent = allowed ? "" : t("statement.denied", { role: label("role", role) });
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
  $("statements-view").hidden = true;
  $("statements-denied").hidden = true;
  menu.hide();
  $("login-view").hidden = false;
  $("login-error").textContent = reasonKey ? t(reasonKey) : "";
}

async function init() {
  [config] = await Promise.all([loadConfig(), setLanguage(preferredLanguage())]);
  setTimeZone(config.timezone);
  bindLanguageSelect($("lang-select"));
  onLanguageChange(() => {
    menu.relabel();
    fillMonths($("statement-month").value);
    render();
  });
  fillMonths(new URLSearchParams(location.search).get("month"));
  $("statement-month").addEventListener("change", load);
  $("statement-by").addEventListener("change", load);
  $("statement-print").addEventListener("click", () => window.print());
  $("statement-csv").addEventListener("click", download);
  $("statement-form").addEventListener("submit", (event) => event.preventDefault());
  bindStaffLogin(session, start);
  session.onEnd = showLogin;
  if (session.current) start();
  else showLogin(null);
}

init();
