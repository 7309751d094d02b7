// Anxin pages: the small things every page needs. DOM building, the session, the HTTP API, the server's
// clock and the deployment's settings.
//
// Rules
//   1. Data is never written as HTML: el() puts every text in a text node.
//   2. Clocks run on server time: the offset to the local clock comes from each HTTP Date header.
//   3. A 401 from the API ends the session (the page shows its login again).
"use strict";

import { has, t } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

/** A grouped technical incident in words, "power cut? Lantian street, 412 devices" (still affected; once it
 * is over, every device it had); null for any other incident. */
export function groupText(view) {
  const group = view.group;
  if (!group) return null;
  const count = view.open ? group.affected : group.devices;
  return t(`group.${view.alarm_type}${count === 1 ? "_one" : ""}`, { street: group.street_name, count });
}

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "className") node.className = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// -- the server's clock -------------------------------------------------------------------------------

let offsetS = 0; // server clock minus local clock

export const serverNow = () => Date.now() / 1000 + offsetS;

export function noteServerDate(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  // The header has whole seconds: take the middle of the second.
  if (!Number.isNaN(date)) offsetS = (date + 500 - Date.now()) / 1000;
}

// -- errors and the session ---------------------------------------------------------------------------

/** A refusal of the API: the HTTP status, the server's English detail, and the code and params the pages
 * translate (see console/errors.py and dispatch/errors.py: every code has a key "error.<code>"). */
export class ApiError extends Error {
  constructor(status, detail, { field = null, code = null, params = null } = {}) {
    super(detail || "");
    this.status = status;
    this.field = field;
    this.code = code;
    this.params = params || {};
  }
}

// Parameters that are raw codes of a vocabulary: their words come from the catalogue. The group of a state
// depends on what the error is about (an incident's state or an assignment's).
const ASSIGNMENT_STATE_CODES = new Set(["replace_needs_confirmation", "responder_busy", "offer_closed"]);

/** The vocabularies of a machine's states and events, for illegal_transition (default: an incident's). */
const MACHINE_WORDS = {
  assignment: ["assignment", "event"],
  service_order: ["orderstate", "orderaction"],
  follow_up: ["followupstate", "followupevent"],
};

function stateGroup(code, params) {
  if (code === "illegal_transition") return (MACHINE_WORDS[params.machine] || ["state"])[0];
  if (code === "follow_up_done") return "followupstate";
  return ASSIGNMENT_STATE_CODES.has(code) ? "assignment" : "state";
}

/** An actor of the journal ("operator:wang", "system") in words, without the reasons table. */
export function actorWords(actor, name) {
  if (!actor) return "—";
  const at = actor.indexOf(":");
  const role = at === -1 ? actor : actor.slice(0, at);
  const who = name || (at === -1 ? "" : actor.slice(at + 1));
  return has(`actor.${role}`) ? t(`actor.${role}`, { name: who }) : who || actor;
}

function paramWords(code, params) {
  const words = { ...params };
  const word = (group, value) => (has(`${group}.${value}`) ? t(`${group}.${value}`) : String(value));
  if (typeof params.state === "string") words.state = word(stateGroup(code, params), params.state);
  if (typeof params.event === "string") words.event = word((MACHINE_WORDS[params.machine] || [null, "event"])[1], params.event);
  if (typeof params.machine === "string") words.machine = word("machine", params.machine);
  if (typeof params.kind === "string") words.kind = word(code.startsWith("call") ? "callkind" : "kind", params.kind);
  if (typeof params.status === "string") words.status = word("assignment", params.status);
  if (typeof params.field === "string") words.field = word("field", params.field);
  if (typeof params.skill === "string") words.skill = word("skill", params.skill);
  if (typeof params.item === "string") words.item = word("assess.item", params.item);
  if (typeof params.by === "string") words.by = actorWords(params.by);
  for (const [key, value] of Object.entries(words)) if (value === null || value === undefined) words[key] = "—";
  return words;
}

/** A refusal in the user's words: from its code when the catalogue knows it, else the status and detail. */
export function codeText(code, params, detail, status) {
  // a parameter the server did not send shows as a dash, never as "{name}"
  if (code && has(`error.${code}`)) return t(`error.${code}`, paramWords(code, params || {})).replace(/\{\w+\}/g, "—");
  const what = t(`error.status.${status in STATUS_KEYS ? status : "other"}`);
  return detail ? `${what}${t("list.colon")}${detail}` : what;
}

/** An error as the user reads it: what went wrong in their language. */
export function errorText(error) {
  if (!(error instanceof ApiError)) return t("error.network");
  if (error.status === 401 && !error.code) return t("error.unauthorized");
  return codeText(error.code, error.params, error.message, error.status);
}
const STATUS_KEYS = { 403: 1, 404: 1, 409: 1, 422: 1 };

export async function readError(response) {
  let detail = "";
  let extra = {};
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail) && body.detail.length) detail = body.detail[0].msg || "";
    extra = { field: body.field || null, code: body.code || null, params: body.params || null };
  } catch (_) {
    // not JSON: the status says enough
  }
  return new ApiError(response.status, detail, extra);
}

/** Why a session ended, by the code of the 401 that ended it (the page's login says it). */
const ENDED = {
  token_expired: "login.expired",
  token_revoked: "error.token_revoked", // logged out elsewhere, a new password, new rights
  account_disabled: "login.disabled",
};

/** Where the staff pages (the console and the supervisor view) keep their login: one for both, so a link from
 * one to the other needs no second login. The caregiver phone keeps its own ("anxin.phone.session"). */
export const STAFF_SESSION = "anxin.staff.session";

/** A login kept in sessionStorage under a key: the staff pages share one, the phone has its own. */
export class Session {
  constructor(key) {
    this.key = key;
    this.current = null;
    this.onEnd = () => {};
    try {
      const stored = JSON.parse(sessionStorage.getItem(key));
      if (stored && stored.token && stored.expiresAt > Date.now()) this.current = stored;
    } catch (_) {
      // a damaged entry is the same as none
    }
  }

  get token() {
    return this.current ? this.current.token : null;
  }

  async login(username, password) {
    const response = await fetch("/api/auth/token", {
      method: "POST", body: new URLSearchParams({ username, password }),
    });
    noteServerDate(response);
    if (!response.ok) throw await readError(response);
    const answer = await response.json();
    this.current = {
      token: answer.access_token,
      role: answer.role,
      responderId: answer.responder_id,
      username,
      name: answer.name || null,
      scopes: answer.scopes || [],
      expiresAt: Date.now() + answer.expires_in * 1000,
    };
    sessionStorage.setItem(this.key, JSON.stringify(this.current));
    return this.current;
  }

  /** Takes in what GET /api/me says now (an admin may have renamed the person or changed their scopes). */
  remember(me) {
    if (!this.current) return;
    this.current = { ...this.current, name: me.name || null, role: me.role, scopes: me.scopes || [] };
    sessionStorage.setItem(this.key, JSON.stringify(this.current));
  }

  /** Logs out: the server revokes the token (POST /api/auth/logout), then the page forgets it. The page
   * forgets it even when the server cannot be reached. */
  async logout() {
    const token = this.token;
    if (token) {
      try {
        await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      } catch (_) {
        // offline: the token still ends here, and expires on the server by itself
      }
    }
    this.end();
  }

  end(reasonKey) {
    sessionStorage.removeItem(this.key);
    const had = this.current !== null;
    this.current = null;
    if (had) this.onEnd(reasonKey);
  }

  expired() {
    return this.current !== null && Date.now() > this.current.expiresAt;
  }

  async api(method, path, body) {
    if (!this.current) throw new ApiError(401, "");
    const headers = { Authorization: `Bearer ${this.current.token}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    noteServerDate(response);
    if (response.status === 401) {
      const error = await readError(response);
      this.end(ENDED[error.code] || "error.unauthorized");
      throw error;
    }
    if (!response.ok) throw await readError(response);
    return response.status === 204 ? null : response.json();
  }
}

// -- the deployment -----------------------------------------------------------------------------------

let configPromise = null;

/** GET /api/config once: time zone, answer target, map tiles. */
export function loadConfig() {
  if (!configPromise) {
    configPromise = fetch("/api/config").then((response) => {
      noteServerDate(response);
      if (!response.ok) throw new Error(`config: HTTP ${response.status}`);
      return response.json();
    }).catch(() => ({ timezone: "Asia/Shanghai", answer_target_s: 60, offer_timeout_s: 45, map_tiles: null }));
  }
  return configPromise;
}

// -- small helpers ------------------------------------------------------------------------------------

/** Runs fn at most once per animation frame; the timer covers background tabs, where frames stop. */
export function perFrame(fn) {
  let scheduled = false;
  let frame = 0;
  let timer = 0;
  const run = () => {
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    scheduled = false;
    fn();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    frame = requestAnimationFrame(run);
    timer = setTimeout(run, 250);
  };
}

/** Runs fn at most once per `ms`, and once more after the last call (a trailing edge). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = 0;
  return () => {
    const wait = last + ms - Date.now();
    clearTimeout(timer);
    if (wait <= 0) {
      last = Date.now();
      fn();
    } else {
      timer = setTimeout(() => {
        last = Date.now();
        fn();
      }, wait);
    }
  };
}

const EARTH_M = 6371008.8;
const rad = (deg) => (deg * Math.PI) / 180;

/** Great-circle distance in metres (the map's and the lists' "how far"). */
export function distanceM(lat1, lon1, lat2, lon2) {
  const a = Math.sin(rad(lat2 - lat1) / 2) ** 2
    + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

export const hasPosition = (thing) => thing && typeof thing.lat === "number" && typeof thing.lon === "number";
