// The server explains itself in short English phrases (priority reasons, ranking reasons, why an incident
// needs manual dispatch, automatic notes and outcomes); the journal keeps them as they are. This table
// turns each known phrase into the operator's language. A text that matches no row is shown as it is:
// it was typed by a person.
"use strict";

import { fmtDistance, label, t } from "./i18n.js";

const distance = (value, unit) => fmtDistance(Number(value) * (unit === "km" ? 1000 : 1));
/** "(household: 李建国, 王秀英)" after a call's note: the landline's elders, none of them picked. */
const household = (names) => (names ? t("reason.household", { names: names.split(", ").join(t("list.and")) }) : "");

const FACTORS = [
  [/^lives alone$/, () => t("factor.living_alone")],
  [/^disabled$/, () => t("factor.disabled")],
  [/^aged (\d+)$/, (m) => t("factor.aged", { n: m[1] })],
  [/^care level (\d+)$/, (m) => t("factor.care_level", { n: m[1] })],
];

const PHRASES = [
  [/^(\w+): base priority (\d)$/, (m) => t("reason.base_priority", { type: label("alarm", m[1]), n: m[2] })],
  [/^raised one level: (.+)$/, (m) => t("reason.raised", {
    factors: m[1].split(", ").map((f) => translateWith(FACTORS, f)).join(t("list.and")),
  })],
  [/^raised one level for (.+?): (.+)$/, (m) => t("reason.raised_for", {
    name: m[1], factors: m[2].split(", ").map((f) => translateWith(FACTORS, f)).join(t("list.and")),
  })],
  [/^own caregiver \(五定\)$/, () => t("reason.own_caregiver")],
  [/^too far to go first, ranked by arrival time$/, () => t("reason.own_too_far")],
  [/^has skill (\w+)$/, (m) => t("reason.has_skill", { skill: label("skill", m[1]) })],
  [/^lacks skill (\w+), first as the elder's own caregiver$/,
    (m) => t("reason.lacks_skill", { skill: label("skill", m[1]) })],
  [/^lacks skill (\w+): nobody with it is free nearer$/,
    (m) => t("reason.lacks_skill_nearer", { skill: label("skill", m[1]) })],
  [/^([\d.]+) (m|km) by (\w+), ETA (\d+) min$/, (m) => t("reason.travel", {
    distance: distance(m[1], m[2]), travel: label("travel", m[3]), eta: t("unit.min", { n: m[4] }),
  })],
  [/^green channel \(绿色通道\)$/, () => t("reason.green_channel")],
  [/^no opening hours recorded$/, () => t("reason.no_hours")],
  [/^open now \((.+)\)$/, (m) => t("reason.open_now", { hours: m[1] })],
  [/^(\d+) offers declined or expired$/, (m) => t("reason.offers_failed", { n: m[1] })],
  [/^location unknown$/, () => t("reason.location_unknown")],
  [/^the responder sent after the hand-over is not coming$/, () => t("reason.handover_nobody")],
  [/^no free responder with skill (\w+) within ([\d.]+) km$/,
    (m) => t("reason.nobody_free", { skill: label("skill", m[1]), distance: distance(m[2], "km") })],
  [/^no free responder with skill (\w+) within ([\d.]+) km, nor anyone within ([\d.]+) km$/,
    (m) => t("reason.nobody_free_anyone", {
      skill: label("skill", m[1]), distance: distance(m[2], "km"), near: distance(m[3], "km"),
    })],
  [/^no free responder within ([\d.]+) km$/, (m) => t("reason.nobody_free_any", { distance: distance(m[1], "km") })],
  [/^accepted by another responder$/, () => t("reason.taken_by_another")],
  [/^caregiver (\S+) done(?:: ([\s\S]*))?$/, (m, names) => {
    const done = t("reason.caregiver_done", { name: names(m[1]) });
    return m[2] ? `${done}${t("list.colon")}${m[2]}` : done;
  }],
  [/^hotline call from (\S+) on line (.*?)(?: \(household: (.+)\))?$/,
    (m) => t("reason.hotline_call", { caller: m[1], line: m[2] || "—" }) + household(m[3])],
  [/^missed hotline call from (\S+) on line ([^:]*?)(?:: call back)?(?: \(household: (.+)\))?$/,
    (m) => t("reason.missed_call", { caller: m[1], line: m[2] || "—" }) + household(m[3])],
  [/^call from (\S+)(?:: ([\s\S]*))?$/, (m) => {
    const call = t("reason.call_from", { caller: m[1] });
    return m[2] ? `${call}${t("list.colon")}${m[2]}` : call;
  }],
  [/^caller (\S+)(?:\n([\s\S]*))?$/, (m) => {
    const caller = t("reason.caller", { caller: m[1] });
    return m[2] ? `${caller}${t("list.separator")}${m[2]}` : caller;
  }],
  [/^incident placed elsewhere$/, () => t("reason.placed_elsewhere")],
  [/^incident closed$/, () => t("reason.incident_closed")],
  [/^no report from (\S+) device (\S+) within (\d+) s(?: \(last seen (\d+) s ago\))?$/, (m) => {
    const text = t("reason.no_report", { protocol: label("protocol", m[1]), device: m[2], n: m[3] });
    return m[4] ? `${text}${t("list.separator")}${t("reason.last_seen", { n: m[4] })}` : text;
  }],
  [/^device reported again$/, () => t("reason.device_back")],
  [/^all devices restored$/, () => t("reason.all_devices_restored")],
  [/^device reported restore \((.*)\)$/, (m) => t("reason.device_restore", { code: m[1] })],
  [/^device unbound$/, () => t("reason.device_unbound")],
  [/^test passed$/, () => t("reason.test_passed")],
  [/^raised during a test call: handled as a real alarm$/, () => t("reason.real_in_test")],
  [/^operator dispatched (\S+)$/, (m, names) => t("reason.operator_dispatched", { name: names(m[1]) })],
  [/^incident cancelled$/, () => t("reason.incident_cancelled")],
  [/^incident resolved$/, () => t("reason.incident_resolved")],
  [/^responder went off duty$/, () => t("reason.went_off_duty")],
];

function translateWith(table, text, names) {
  for (const [pattern, render] of table) {
    const match = pattern.exec(text);
    if (match) return render(match, names);
  }
  return text;
}

/** A server phrase in the current language; `names` turns a responder id into a name. */
export function explain(text, names = (id) => id) {
  if (text === null || text === undefined) return "";
  return translateWith(PHRASES, String(text), names);
}

export const explainAll = (texts, names) => (texts || []).map((text) => explain(text, names)).join(t("list.separator"));
