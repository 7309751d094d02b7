// Anxin pages: the small things every page needs. DOM building, the session, the HTTP API, the server's
// clock and the deployment's settings.
//
// Rules
//   1. Data is never written as HTML: el() puts every text in a text node.
//   2. Clocks run on server time: the offset to the local clock comes from each HTTP Date header.
//   3. A 401 from the API ends the session (the page shows its login again).
"use strict";

import { t } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

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

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.field = field || null;
  }
}

/** An error as the user reads it: what went wrong in their language, the server's detail after it. */
export function errorText(error) {
  if (!(error instanceof ApiError)) return t("error.network");
  if (error.status === 401) return t("error.unauthorized");
  const what = t(`error.status.${error.status in STATUS_KEYS ? error.status : "other"}`);
  const field = error.field ? ` [${error.field}]` : "";
  return error.message ? `${what}${t("list.colon")}${error.message}${field}` : what;
}
const STATUS_KEYS = { 403: 1, 404: 1, 409: 1, 422: 1 };

export async function readError(response) {
  let detail = "";
  let field = null;
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail) && body.detail.length) detail = body.detail[0].msg || "";
    field = body.field || null;
  } catch (_) {
    // not JSON: the status says enough
  }
  return new ApiError(response.status, detail, field);
}

/** A login kept in sessionStorage under one key per page (operators and phones never share one). */
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
      expiresAt: Date.now() + answer.expires_in * 1000,
    };
    sessionStorage.setItem(this.key, JSON.stringify(this.current));
    return this.current;
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
      this.end("login.expired");
      throw new ApiError(401, "");
    }
    if (!response.ok) throw await readError(response);
    return response.json();
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
