// The service desk's words for the pages: money (integer fen shown in yuan), the centre's wall clock, and a
// catalogue item's name and unit in the page's language. Shared by the desk, the console's order dialog, the
// statements and the caregiver's phone.
"use strict";

import { currentLanguage, t } from "./i18n.js";

/** Integer fen as yuan: 1500 -> "¥15.00" (no float arithmetic). */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "—";
  const sign = fen < 0 ? "-" : "";
  const whole = Math.abs(fen);
  return t("money.yuan", { n: `${sign}${Math.floor(whole / 100)}.${String(whole % 100).padStart(2, "0")}` });
}

/** The wall clock of a time zone at an instant: {date: "YYYY-MM-DD", time: "HH:MM"}. */
export function zoned(epoch, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(epoch * 1000)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

/** UTC seconds of a wall-clock date and time in a time zone (the zone's offset is read at that instant). */
export function epochOf(date, time, zone) {
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi) / 1000;
  let guess = wall;
  for (let i = 0; i < 2; i += 1) {
    const seen = zoned(guess, zone);
    const [sy, smo, sd] = seen.date.split("-").map(Number);
    const [sh, smi] = seen.time.split(":").map(Number);
    guess += wall - Date.UTC(sy, smo - 1, sd, sh, smi) / 1000;
  }
  return guess;
}

/** A catalogue item's name and unit in the page's language. */
export function itemName(item) {
  if (!item) return "—";
  return currentLanguage() === "zh-CN" ? item.name_zh : item.name_en;
}

export function itemUnit(item) {
  return currentLanguage() === "zh-CN" ? item.unit_zh : item.unit_en;
}

/** The service mode an elder's entitlement sets (none on record: paid), as the server decides it. */
export const modeOf = (entitlement) => entitlement || "paid";

