// The banner of the server's own trouble: a disk running low, or full (the service record cannot be written).
//
// The server sends {"type": "status", "storage": {state, free_mb, reason, since}} to every console when the
// state changes, and on every connect while it is not ok. "full" is loud and stays until the server says ok:
// link tests and heartbeats are then no longer acknowledged and only alarms are tried.
"use strict";

import { t } from "./i18n.js";

let last = null;

function banner() {
  let node = document.getElementById("storage-banner");
  if (!node) {
    node = document.createElement("div");
    node.id = "storage-banner";
    node.setAttribute("role", "alert");
    node.hidden = true;
    const header = document.getElementById("topbar");
    if (header) header.after(node);
    else document.body.prepend(node);
  }
  return node;
}

export function showStatus(message) {
  const storage = message && message.storage;
  if (!storage) return;
  last = storage;
  const node = banner();
  node.dataset.state = storage.state;
  if (storage.state === "ok") {
    node.hidden = true;
    node.textContent = "";
    return;
  }
  const key = storage.state === "full" ? "storage.full" : "storage.low";
  node.textContent = t(key, { mb: Math.round(storage.free_mb) });
  node.title = storage.reason || "";
  node.hidden = false;
}

export function clearStatus() {
  last = null;
  const node = document.getElementById("storage-banner");
  if (node) node.hidden = true;
}

export function lastStatus() {
  return last;
}
