// The registry page's 合并重复档案 (supervisors and admins): one person registered twice made one record.
//
// From an elder's form: find the other record (the registry search, GET /api/elders?q=), or take one the
// duplicate check named when a save was refused (409 possible_duplicate). Both are shown side by side, with what
// the merge will do, as the server does it (dispatch.engine merge_elders): the other's devices move to the kept
// record, its contacts whose phone the kept one lacks are added after the kept one's, the kept record's empty
// fields are filled from it, and the other record leaves care (kept and readable, no longer matched). Two
// different resident identity numbers are two people: the merge is refused before it is asked. Confirmed, it is
// POST /api/elders/{keep}/merge {"other": id} (one registry.elders_merged entry); the kept record is shown.
//
// A new elder refused as a probable duplicate has no record yet: merging it saves it first as typed (with
// ?confirm_distinct=true, so the journal keeps what was typed) and merges it at once into the one registered.
"use strict";

import { $, el, errorText } from "./common.js";
import { t } from "./i18n.js";
import { placeWords } from "./me.js";

/** The kept record's fields a merge fills when empty (dispatch.engine MERGE_FILLS). */
const FILLS = ["phone", "birth_date", "resident_id", "risk_flags", "care_level", "medical_notes", "caregiver_id",
  "entitlement", "access", "lives_with"];
/** The rows of the side-by-side view. */
const ROWS = ["name", "elder_id", "birth_date", "resident_id", "phone", "address", "community", "devices",
  "contacts"];
const SEARCH_DELAY_MS = 250;

const empty = (value) => value === null || value === undefined || value === ""
  || (Array.isArray(value) && value.length === 0);

/** Digits only, without a leading +86 (dispatch.registry normalise_phone): the form phones are compared in. */
function phoneKey(phone) {
  const digits = String(phone || "").replace(/\D/g, "");
  return digits.startsWith("86") && digits.length === 13 ? digits.slice(2) : digits;
}

/** What merging `other` into `keep` does, as the server will: devices, contacts added, fields filled. */
export function mergePlan(keep, other) {
  const phones = new Set((keep.contacts || []).map((c) => phoneKey(c.phone)));
  const contacts = [];
  for (const contact of other.contacts || []) {
    if (phones.has(phoneKey(contact.phone))) continue;
    phones.add(phoneKey(contact.phone));
    contacts.push(contact);
  }
  return {
    devices: (other.devices || []).map((d) => d.device_id),
    contacts,
    filled: FILLS.filter((name) => empty(keep[name]) && !empty(other[name])),
  };
}

/** The merge bound to the page's session; `say(key, params)` shows the page's notice, `opened(elder)` shows
 * the kept record in the form once merged. */
export function bindMerge(session, { say, opened }) {
  let current = null; // the record on the form (null: none, or a new one)
  let pair = null; // {keep, other, unsaved}: the records compared
  let found = [];
  let searchTimer = 0;

  // -- finding the other record ------------------------------------------------------------------------------

  async function runSearch() {
    const q = $("merge-find").value.trim();
    if (!q || !current) {
      found = [];
      renderFound();
      return;
    }
    try {
      const answer = await session.api("GET", `/api/elders?q=${encodeURIComponent(q)}&limit=10`);
      if ($("merge-find").value.trim() !== q) return; // typed on meanwhile
      found = answer.elders.filter((e) => current && e.elder_id !== current.elder_id);
      $("merge-error").textContent = "";
      renderFound();
    } catch (error) {
      $("merge-error").textContent = errorText(error);
    }
  }

  function renderFound() {
    $("merge-found").replaceChildren(...found.map((e) => el("li", { className: "merge-candidate", dataset: { elderId: e.elder_id } },
      el("span", {}, `${e.name} · ${e.elder_id}${e.phone ? ` · ${e.phone}` : ""}${e.address ? ` · ${e.address}` : ""}`),
      el("button", { type: "button", className: "merge-pick", onclick: () => compare(current.elder_id, e.elder_id) },
        t("registry.merge_pick")))));
    const q = $("merge-find").value.trim();
    $("merge-none").hidden = !q || found.length > 0;
    $("merge-none").textContent = q ? t("registry.found_none", { q }) : "";
  }

  // -- side by side --------------------------------------------------------------------------------------------

  /** Shows `keep` and `other` side by side: each an elder id (read now) or, for `other`, a new elder's form as
   * typed (`unsaved`). */
  async function compare(keep, other, { unsaved = false } = {}) {
    $("merge-error").textContent = "";
    try {
      const read = (ref) => (typeof ref === "string"
        ? session.api("GET", `/api/elders/${encodeURIComponent(ref)}`) : Promise.resolve(ref));
      const [kept, gone] = await Promise.all([read(keep), read(other)]);
      pair = { keep: kept, other: { devices: [], ...gone }, unsaved };
      paint();
      $("merge-panel").hidden = false;
      $("merge-compare").scrollIntoView({ block: "nearest" });
    } catch (error) {
      $("merge-error").textContent = errorText(error);
      $("merge-panel").hidden = false;
    }
  }

  /** A row's value in words; contacts one a line. */
  function words(elder, row) {
    if (row === "devices") return (elder.devices || []).map((d) => d.device_id).join(t("list.and")) || "—";
    if (row === "contacts") return (elder.contacts || []).map((c) => `${c.name} ${c.phone}`).join("\n") || "—";
    if (row === "community") return empty(elder.community) ? "—" : placeWords(elder.community);
    return empty(elder[row]) ? "—" : String(elder[row]);
  }

  function cell(elder, row) {
    return el("td", {}, ...words(elder, row).split("\n").map((line) => el("div", {}, line)));
  }

  function rowLabel(row) {
    return row === "devices" ? t("registry.devices_heading") : t(`file.field.${row}`);
  }

  function paint() {
    if (!pair) return;
    const { keep, other, unsaved } = pair;
    $("merge-keep-head").textContent = t("registry.merge_keep", { name: keep.name, id: keep.elder_id });
    $("merge-other-head").textContent = t(unsaved ? "registry.merge_other_new" : "registry.merge_other",
      { name: other.name, id: other.elder_id });
    $("merge-rows").replaceChildren(...ROWS.map((row) => {
      const differs = row !== "elder_id" && row !== "devices" && words(keep, row) !== words(other, row);
      return el("tr", { className: differs ? "merge-differs" : "", dataset: { row } },
        el("th", { scope: "row" }, rowLabel(row)), cell(keep, row), cell(other, row));
    }));
    const plan = mergePlan(keep, other);
    const moves = [
      plan.devices.length ? t("registry.merge_devices", { devices: plan.devices.join(t("list.and")) })
        : t("registry.merge_devices_none"),
      plan.contacts.length ? t("registry.merge_contacts", { contacts: plan.contacts.map((c) => `${c.name} ${c.phone}`)
        .join(t("list.and")) }) : t("registry.merge_contacts_none"),
      plan.filled.length ? t("registry.merge_filled", { fields: plan.filled.map((f) => t(`file.field.${f}`))
        .join(t("list.and")) }) : t("registry.merge_filled_none"),
      t(unsaved ? "registry.merge_leaves_new" : "registry.merge_leaves", { name: other.name, id: other.elder_id }),
    ];
    $("merge-moves").replaceChildren(...moves.map((words) => el("li", {}, words)));
    const blocked = blockedBy(keep, other);
    $("merge-blocked").textContent = blocked || "";
    $("merge-blocked").hidden = !blocked;
    $("merge-confirm").disabled = Boolean(blocked);
    $("merge-swap").hidden = unsaved;
    $("merge-compare").hidden = false;
  }

  /** Why the server would refuse this merge, in words (its own codes' words); null when it would not. */
  function blockedBy(keep, other) {
    for (const elder of [keep, other]) {
      if (elder.active === false) return t("error.merge_inactive", { elder: elder.name });
    }
    if (keep.resident_id && other.resident_id && keep.resident_id !== other.resident_id) {
      return t("error.merge_distinct", { keep: keep.name, other: other.name });
    }
    return null;
  }

  async function confirm() {
    if (!pair) return;
    const { keep, other, unsaved } = pair;
    $("merge-error").textContent = "";
    $("merge-confirm").disabled = true;
    try {
      if (unsaved) {
        const { devices: _, ...typed } = other;
        await session.api("PUT", `/api/elders/${encodeURIComponent(other.elder_id)}?confirm_distinct=true`, typed);
      }
      const answer = await session.api("POST", `/api/elders/${encodeURIComponent(keep.elder_id)}/merge`,
        { other: other.elder_id });
      const merged = answer.merged;
      close();
      opened(answer.elder);
      say("registry.merged", {
        other: other.name, other_id: other.elder_id, keep: keep.name, keep_id: keep.elder_id,
        devices: merged.devices.length, contacts: merged.contacts.length,
        fields: merged.filled.length ? merged.filled.map((f) => t(`file.field.${f}`)).join(t("list.and")) : "—",
      });
    } catch (error) {
      $("merge-error").textContent = errorText(error);
      $("merge-confirm").disabled = false;
    }
  }

  function swap() {
    if (!pair || pair.unsaved) return;
    pair = { keep: pair.other, other: pair.keep, unsaved: false };
    paint();
  }

  function close() {
    pair = null;
    found = [];
    $("merge-find").value = "";
    $("merge-found").replaceChildren();
    $("merge-none").hidden = true;
    $("merge-compare").hidden = true;
    $("merge-error").textContent = "";
    showFinder();
  }

  function showFinder() {
    const may = Boolean(current && current.active);
    $("merge-search").hidden = !may;
    $("merge-panel").hidden = !may && !pair;
  }

  $("merge-find").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
  });
  $("merge-confirm").addEventListener("click", confirm);
  $("merge-swap").addEventListener("click", swap);
  $("merge-cancel").addEventListener("click", close);

  return {
    /** The form shows `elder` (null: a new one, or none); `may`: the person may merge (supervisors, admins). */
    forRecord(elder, may) {
      current = may ? elder : null;
      close();
    },
    compare,
    relabel() {
      renderFound();
      paint();
    },
  };
}
