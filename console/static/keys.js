// Working the queue without a mouse. The keys are listed on the page (console.html, "keys-help").
//
//   J or ↓   next incident in the queue          K or ↑   previous one
//   N        next alarm nobody acknowledged (most urgent first, wrapping round)
//   Enter, O open the incident under the cursor   A        acknowledge it
//   D        dispatch to the first proposed responder not yet tried (asks first when that would replace
//            a responder who accepted, is on the way or on scene)
//   I        a new incident, by hand
//   /        search any responder                 Esc      leave a field, close the form, then the panel
//
// Keys typed into a field, with Ctrl / Alt / Meta held, or while a dialog is open, are left alone.
"use strict";

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

export function bindQueueKeys(queue) {
  const step = (delta) => {
    const ids = queue.queue();
    if (!ids.length) return;
    const at = ids.indexOf(queue.cursor());
    const next = at === -1 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + delta));
    queue.moveCursor(ids[next]);
  };

  const nextUnanswered = () => {
    const ids = queue.queue();
    const at = ids.indexOf(queue.cursor());
    const order = [...ids.slice(at + 1), ...ids.slice(0, at + 1)];
    const found = order.find((id) => queue.unanswered(id));
    if (found) queue.moveCursor(found);
  };

  const actions = {
    j: () => step(1),
    ArrowDown: () => step(1),
    k: () => step(-1),
    ArrowUp: () => step(-1),
    n: nextUnanswered,
    Enter: () => queue.cursor() && queue.open(queue.cursor()),
    o: () => queue.cursor() && queue.open(queue.cursor()),
    a: () => queue.cursor() && queue.acknowledge(queue.cursor()),
    d: () => queue.dispatch(),
    i: () => queue.newIncident(),
    "/": () => queue.search(),
  };

  document.addEventListener("keydown", (event) => {
    if (!queue.active() || event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key === "Escape") {
      if (typing(event.target)) event.target.blur(); // first out of the field, then the form or panel
      else queue.escape();
      return;
    }
    if (typing(event.target)) return;
    if (event.key === "Enter" && event.target instanceof HTMLElement && event.target.closest("button, a")) return;
    const action = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });
}
