// The registry page's second tab (admins only): caregivers, volunteers and clinics. Find one (by kind, by name
// or id), create or edit every field of the registry's responder: skills, travel mode, base position, phone,
// community, provider from the service catalogue, on call; for a clinic its hours (24h or HH:MM-HH:MM) and green
// channel.
//
// The list is GET /api/responders (those of the admin's area, as the console lists them: where they are now);
// the form reads the record as saved, GET /api/responders/{id} (where they are based, their phone, on_call), and
// saves it with PUT /api/responders/{id}. A new responder's id must be free: the list is read again first (it
// holds everyone of the admin's area; an id of elsewhere the server refuses, 404), so a save never overwrites
// someone else. The providers are the service catalogue's (GET /api/services).
// A responder cannot be removed from the registry: nothing journals a responder leaving yet.
"use strict";

import { $, el, errorText } from "./common.js";
import { currentLanguage, label, t } from "./i18n.js";
import { placeWords } from "./me.js";

const KINDS = ["caregiver", "volunteer", "clinic"];
const SKILLS = ["life_care", "nursing", "medical", "comfort"];
const TRAVEL = ["walk", "bike", "car"];
const HOURS = /^(24h|\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})$/i; // the server checks the times themselves
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The tab bound to the page's session; `say(key, params)` shows the page's notice. */
export function bindResponders(session, say) {
  let all = []; // GET /api/responders as last read
  let providers = [];
  let record = null; // the responder being edited as the server last answered (null: a new one)
  let opening = 0; // counts what the form was asked to show; only the latest is shown
  let loaded = false;

  async function load() {
    const [listed, services] = await Promise.all([
      session.api("GET", "/api/responders"), session.api("GET", "/api/services"),
    ]);
    all = listed.responders;
    providers = services.providers;
    loaded = true;
    fillChoices();
    renderList();
  }

  function fillChoices() {
    const keep = (id, options) => {
      const select = $(id);
      const value = select.value;
      select.replaceChildren(...options);
      if (value && [...select.options].some((o) => o.value === value)) select.value = value;
    };
    keep("r-kind-filter", [el("option", { value: "" }, t("registry.r_kind_all")),
      ...KINDS.map((k) => el("option", { value: k }, label("kind", k)))]);
    keep("r-kind", KINDS.map((k) => el("option", { value: k }, label("kind", k))));
    keep("r-travel", TRAVEL.map((v) => el("option", { value: v }, label("travel", v))));
    keep("r-provider", providers.map((p) => el("option", { value: p.provider_id }, providerName(p.provider_id))));
    const checked = new Set(checkedSkills());
    $("r-skills").replaceChildren(el("legend", {}, t("registry.r_skills")), ...SKILLS.map((s) =>
      el("label", {}, el("input", { type: "checkbox", name: "skill", value: s, checked: checked.has(s) }), " ",
        el("span", {}, label("skill", s)))));
  }

  function providerName(providerId) {
    const provider = providers.find((p) => p.provider_id === providerId);
    if (!provider) return providerId;
    return currentLanguage() === "zh-CN" ? provider.name_zh : provider.name_en;
  }

  // -- the list ------------------------------------------------------------------------------------------------

  function chosen() {
    const kind = $("r-kind-filter").value;
    const q = $("r-find").value.trim().toLowerCase();
    return all.filter((r) => (!kind || r.kind === kind)
      && (!q || r.name.toLowerCase().includes(q) || r.responder_id.toLowerCase().includes(q)));
  }

  function renderList() {
    const shown = chosen();
    $("responders-body").replaceChildren(...shown.map((r) => el("tr", { className: "responder", dataset: { responderId: r.responder_id } },
      el("td", {}, r.name),
      el("td", {}, r.responder_id),
      el("td", {}, label("kind", r.kind)),
      el("td", {}, r.kind === "clinic" ? clinicWords(r) : r.skills.map((s) => label("skill", s)).join(t("list.and"))),
      el("td", {}, placeWords(r.community, true)),
      el("td", {}, providerName(r.provider)),
      el("td", {}, el("button", { type: "button", className: "responder-edit", onclick: () => openResponder(r.responder_id) },
        t("registry.edit"))))));
    $("responders").hidden = shown.length === 0;
    $("responders-empty").hidden = !loaded || shown.length > 0;
  }

  function clinicWords(r) {
    const hours = r.hours ? t("registry.r_hours_is", { hours: r.hours }) : t("registry.r_hours_always");
    return r.green_channel ? `${hours}${t("list.and")}${t("registry.r_green_channel")}` : hours;
  }

  // -- the form ------------------------------------------------------------------------------------------------

  /** The form shows what was asked for last: a record read late does not cover a newer 新增 or choice. */
  async function openResponder(responderId) {
    const ticket = ++opening;
    $("responders-error").textContent = "";
    try {
      const responder = await session.api("GET", `/api/responders/${encodeURIComponent(responderId)}`);
      if (ticket === opening) showForm(responder, false);
    } catch (error) {
      if (ticket === opening) $("responders-error").textContent = errorText(error);
    }
  }

  function openNew() {
    opening += 1;
    showForm({ kind: "caregiver", skills: [], travel: "walk", provider: "centre", on_call: false, green_channel: false },
      true);
    say(null);
    $("r-id").focus();
  }

  function showForm(responder, creating) {
    record = creating ? null : responder;
    const value = (v) => (v === null || v === undefined ? "" : String(v));
    $("responder-form").reset();
    $("responder-error").textContent = "";
    $("responder-panel").hidden = false;
    $("r-id").value = value(responder.responder_id);
    $("r-id").readOnly = !creating;
    $("r-name").value = value(responder.name);
    $("r-kind").value = responder.kind;
    $("r-phone").value = value(responder.phone);
    $("r-community").value = value(responder.community);
    $("r-lat").value = value(responder.lat);
    $("r-lon").value = value(responder.lon);
    $("r-travel").value = responder.travel || "walk";
    $("r-provider").value = responder.provider || "centre";
    $("r-on-call").checked = Boolean(responder.on_call);
    $("r-hours").value = value(responder.hours);
    $("r-green-channel").checked = Boolean(responder.green_channel);
    for (const box of document.querySelectorAll("#r-skills input")) box.checked = (responder.skills || []).includes(box.value);
    paintHeading();
    showKindFields();
    $("responder-panel").scrollIntoView({ block: "nearest" });
  }

  function paintHeading() {
    $("responder-heading").textContent = record
      ? t("registry.edit_heading", { name: record.name, id: record.responder_id }) : t("registry.r_new_heading");
  }

  /** A clinic has hours and a green channel; a caregiver or volunteer skills, a travel mode and on call. */
  function showKindFields() {
    const clinic = $("r-kind").value === "clinic";
    for (const node of document.querySelectorAll("#responder-form .for-clinic")) node.hidden = !clinic;
    for (const node of document.querySelectorAll("#responder-form .for-person")) node.hidden = clinic;
  }

  function checkedSkills() {
    return [...document.querySelectorAll("#r-skills input:checked")].map((box) => box.value);
  }

  function number(id) {
    const text = $(id).value.trim();
    return text === "" ? null : Number(text);
  }

  function body() {
    const text = (id) => $(id).value.trim();
    const clinic = text("r-kind") === "clinic";
    return {
      responder_id: text("r-id"),
      name: text("r-name"),
      kind: text("r-kind"),
      skills: clinic ? [] : checkedSkills(),
      lat: number("r-lat"),
      lon: number("r-lon"),
      phone: text("r-phone") || null,
      community: text("r-community"),
      travel: text("r-travel"),
      hours: clinic ? text("r-hours") || null : null,
      green_channel: clinic && $("r-green-channel").checked,
      provider: text("r-provider") || "centre",
      on_call: !clinic && $("r-on-call").checked,
    };
  }

  /** What the form can tell before asking the server, in the words of the field; null when nothing. */
  function refusal(sent) {
    const missing = ["responder_id", "name", "community"].find((key) => !sent[key]);
    if (missing) return t("registry.required", { field: t(`registry.r_${missing}`) });
    if (!ID.test(sent.responder_id)) return t("registry.r_id_form");
    if (sent.lat === null || sent.lon === null) return t("registry.required", { field: t("registry.lat") });
    if (sent.community.split("/").filter((p) => p.trim()).length !== 3) return t("registry.r_community_form");
    if (sent.kind !== "clinic" && !sent.skills.length) return t("registry.r_skills_none");
    if (sent.hours && !HOURS.test(sent.hours)) return t("registry.r_hours_form");
    return null;
  }

  async function save(event) {
    event.preventDefault();
    const sent = body();
    const refused = refusal(sent);
    $("responder-error").textContent = refused || "";
    if (refused) return;
    $("responder-save").disabled = true;
    try {
      if (!record && await taken(sent.responder_id)) {
        $("responder-error").textContent = t("registry.r_id_taken", { id: sent.responder_id });
        return;
      }
      await session.api("PUT", `/api/responders/${encodeURIComponent(sent.responder_id)}`, sent);
      const words = record ? "registry.saved" : "registry.r_created";
      await load();
      await openResponder(sent.responder_id);
      say(words, { name: sent.name, id: sent.responder_id });
    } catch (error) {
      $("responder-error").textContent = errorText(error);
    } finally {
      $("responder-save").disabled = false;
    }
  }

  /** Whether a new responder's id is someone's already, as the list says now. */
  async function taken(responderId) {
    all = (await session.api("GET", "/api/responders")).responders;
    return all.some((r) => r.responder_id === responderId);
  }

  function close() {
    $("responder-panel").hidden = true;
    record = null;
  }

  $("r-find").addEventListener("input", renderList);
  $("r-kind-filter").addEventListener("change", renderList);
  $("new-responder").addEventListener("click", openNew);
  $("r-kind").addEventListener("change", showKindFields);
  $("responder-form").addEventListener("submit", save);
  $("responder-close").addEventListener("click", close);

  return {
    /** Reads the list (again) when the tab is shown. */
    show() {
      load().catch((error) => {
        $("responders-error").textContent = errorText(error);
      });
    },
    /** Nothing read for the last person stays in the page. */
    forget() {
      all = [];
      loaded = false;
      close();
      $("r-find").value = "";
      $("responders-body").replaceChildren();
    },
    relabel() {
      fillChoices();
      renderList();
      if (!$("responder-panel").hidden) paintHeading();
    },
  };
}
