// The live feed of /ws/console for the console and the supervisor view.
//
// The first connection gets a snapshot (open incidents, responders, calls) and then journal entries. The
// last sequence number seen is kept; after any close the feed reconnects with after=SEQ (back-off 0.5 s
// doubling to 5 s) and the server replays what was missed, so nothing that happened while the connection
// was down is lost. An entry at or below the last sequence number is a repeat and is dropped. A large
// snapshot comes in pages (the first says how many, "snapshot_part" brings the others); the page sees it whole.
// The feed asks for batches (batch=1): after the snapshot a frame is an array of messages, each taken in order
// as if it had come alone; a frame that is a single object is taken as it is.
"use strict";

import { clearStatus, showStatus } from "./banner.js";
import { t } from "./i18n.js";

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5000;
const LAGGING = 4000;

export class ConsoleFeed {
  /**
   * @param {object} handlers
   *   token()            the bearer token, or null when logged out
   *   onSnapshot(msg)    the first message of a fresh connection
   *   onEntry(entry)     each journal entry, in order, once
   *   onState(state, info)  "connecting" | "online" | "offline" ({code, delayMs, lagging})
   *   onRefused()        a handshake that never opened (maybe an expired token)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.lastSeq = null;
    this.socket = null;
    this.opened = false;
    this.backoffMs = BACKOFF_FIRST_MS;
    this.timer = 0;
    this.running = false;
    this.pages = null; // a snapshot in several pages, gathered until its last
  }

  start() {
    this.running = true;
    this.backoffMs = BACKOFF_FIRST_MS;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "logout");
    this.socket = null;
    this.lastSeq = null;
    clearStatus();
  }

  connect() {
    const token = this.handlers.token();
    if (!this.running || !token) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let url = `${scheme}//${location.host}/ws/console?batch=1&token=${encodeURIComponent(token)}`;
    if (this.lastSeq !== null) url += `&after=${this.lastSeq}`;
    this.handlers.onState("connecting", {});
    const socket = new WebSocket(url);
    this.socket = socket;
    this.opened = false;
    this.pages = null;
    socket.onopen = () => {
      this.opened = true;
      this.backoffMs = BACKOFF_FIRST_MS;
      this.handlers.onState("online", { resumed: this.lastSeq !== null });
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return; // not JSON: nothing a console can use
      }
      for (const each of Array.isArray(message) ? message : [message]) {
        if (socket !== this.socket) return;
        try {
          this.receive(each);
        } catch (error) {
          console.error("anxin: a live message could not be shown", error); // the rest of the frame still is
        }
      }
    };
    socket.onclose = (event) => {
      if (socket === this.socket) this.closed(event);
    };
  }

  receive(message) {
    if (message.type === "snapshot" && (message.parts || 1) > 1) {
      this.pages = message; // the first of several pages: the rest follow as "snapshot_part"
    } else if (message.type === "snapshot_part") {
      const whole = this.pages;
      if (!whole || whole.seq !== message.seq) return;
      for (const name of ["incidents", "calls", "responders"]) whole[name].push(...(message[name] || []));
      if (message.part === whole.parts) {
        this.pages = null;
        this.receive({ ...whole, parts: 1 });
      }
    } else if (message.type === "snapshot") {
      this.lastSeq = message.seq;
      this.handlers.onSnapshot(message);
    } else if (message.type === "entry") {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) return;
      this.lastSeq = message.seq;
      this.handlers.onEntry(message);
    } else if (message.type === "status") {
      showStatus(message); // the server's own trouble (a full disk): no sequence number, never a resume point
    }
  }

  closed(event) {
    this.socket = null;
    if (!this.running) return;
    if (!this.opened) this.handlers.onRefused();
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.handlers.onState("offline", { code: event.code, delayMs, lagging: event.code === LAGGING });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delayMs);
  }
}

/**
 * The header's connection badge (``status``, the page's #conn-status) for a feed's last state: online,
 * connecting, offline (nobody logged in), or lost and retrying in so many seconds.
 */
export function paintConnection(status, { state, info }, loggedIn) {
  status.dataset.state = state;
  if (state === "online") status.textContent = t("conn.online");
  else if (state === "connecting") status.textContent = t("conn.connecting");
  else if (!loggedIn) status.textContent = t("conn.offline");
  else status.textContent = t("conn.lost_retry", { s: ((info.delayMs || 0) / 1000).toFixed(1) });
}
