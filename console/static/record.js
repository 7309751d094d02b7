// The elder's record as the operator reads it: who, where, what is known, whom to call, the devices and the
// recent incidents. Fetched with GET /api/elders/{id}, which the server journals (health data is
// sensitive), so a page asks for it only when an operator opens an incident or a known caller rings.
"use strict";

import { el, serverNow } from "./common.js";
import { ageOn, fmtDateTime, label, t } from "./i18n.js";
import { phoneLink } from "./dial.js";
import { explain } from "./reasons.js";

const AGE_RISK = 80;
const LOW_BATTERY = 20;


function flags(record, age) {
  const chips = record.risk_flags.map((flag) => el("span", { className: `chip risk-${flag}` }, label("risk", flag)));
  if (age !== null && age >= AGE_RISK) chips.push(el("span", { className: "chip risk-aged" }, t("risk.aged_80")));
  return chips.length ? chips : [el("span", { className: "muted" }, t("record.no_flags"))];
}

function contacts(record, dial) {
  if (!record.contacts.length) return el("p", { className: "muted" }, t("record.no_contacts"));
  return el("ol", { className: "contacts" }, record.contacts.map((c) => el("li", {},
    el("span", { className: "contact-name" }, c.name),
    c.relation ? el("span", { className: "contact-relation" }, c.relation) : null,
    phoneLink(c.phone, dial))));
}

function deviceLine(device) {
  const status = device.status;
  const battery = status && status.battery !== null && status.battery !== undefined ? status.battery : null;
  const low = battery !== null && battery < LOW_BATTERY;
  return el("li", { className: "device", dataset: { deviceId: device.device_id } },
    el("span", {}, label("protocol", device.protocol)),
    el("span", { className: "muted" }, device.device_id),
    el("span", { className: low ? "battery low" : "battery" },
      battery === null ? t("record.battery_unknown") : t("record.battery", { n: battery })),
    el("span", { className: "muted" }, status && status.last_seen
      ? t("record.last_seen", { time: fmtDateTime(status.last_seen) }) : t("record.never_seen")),
    device.drill ? el("span", { className: "tag" }, t("flag.drill")) : null);
}

function recent(record, exclude) {
  const items = (record.recent_incidents || []).filter((i) => i.incident_id !== exclude);
  if (!items.length) return el("p", { className: "muted" }, t("record.no_incidents"));
  return el("ul", { className: "recent" }, items.map((i) => el("li", { dataset: { incidentId: i.incident_id } },
    el("span", { className: "muted" }, fmtDateTime(i.opened_at)),
    el("span", {}, label("alarm", i.alarm_type)),
    el("span", {}, label("state", i.state)),
    el("span", { className: "muted" }, i.outcome ? explain(i.outcome) : ""))));
}

/** The elder's name as a link to their whole file (/elder, a tab of its own that keeps this login: rel=opener
 * lets the new tab copy the session's storage). */
export function fileLink(elderId, text) {
  return el("a", {
    className: "file-link", href: `/elder?id=${encodeURIComponent(elderId)}`, target: "_blank", rel: "opener",
    title: t("file.link_title"), dataset: { elderId },
  }, text);
}

function facts(pairs) {
  return el("dl", { className: "facts" }, pairs.filter(Boolean).flatMap(([term, value]) => [
    el("dt", {}, term), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value),
  ]));
}

/**
 * Fills `container` with the record. `compact` is the hotline pop-up: the essentials only.
 * `responderName(id)` names the elder's own caregiver; `exclude` leaves the incident on screen out of the
 * recent ones; `callId` and `incidentId` go with a click-to-call of the elder's numbers (dial.js).
 */
export function renderRecord(container, record, {
  compact = false, responderName = (id) => id, exclude = null, callId = null, incidentId = null,
} = {}) {
  const dial = { elderId: record.elder_id, callId, incidentId };
  const age = ageOn(record.birth_date, serverNow());
  const heading = el("h3", { className: "record-name" }, fileLink(record.elder_id, record.name),
    age !== null ? el("span", { className: "record-age" }, t("record.age", { n: age })) : null);
  const main = [
    [t("record.phone"), record.phone ? phoneLink(record.phone, dial) : null],
    [t("record.address"), record.address],
    !compact && [t("record.community"), record.community.split("/").join(" / ")],
    [t("record.flags"), el("span", { className: "chips" }, flags(record, age))],
    [t("record.care_level"), record.care_level === null ? null : t("record.care_level_value", { n: record.care_level })],
    [t("record.medical_notes"), record.medical_notes || t("record.none")],
    record.access ? [t("record.access"), record.access] : null,
    !compact && [t("record.entitlement"), record.entitlement ? label("entitlement", record.entitlement) : null],
    !compact && [t("record.caregiver"), record.caregiver_id ? responderName(record.caregiver_id) : t("record.none")],
  ];
  const parts = [heading, facts(main), el("h4", {}, t("record.contacts")), contacts(record, dial)];
  if (!compact) {
    parts.push(el("h4", {}, t("record.devices")));
    parts.push(record.devices.length
      ? el("ul", { className: "devices" }, record.devices.map(deviceLine))
      : el("p", { className: "muted" }, t("record.no_devices")));
    parts.push(el("h4", {}, t("record.recent")), recent(record, exclude));
  }
  container.dataset.elderId = record.elder_id;
  container.replaceChildren(...parts);
}

export function renderNoRecord(container, message) {
  delete container.dataset.elderId;
  container.replaceChildren(el("p", { className: "muted" }, message));
}
