// A hotline call's record in a few words, as the PBX told it: in or out (呼入/呼出), the queue it waited in
// and how long it rang before someone answered, who answered at which extension, where it was transferred,
// what became of it (接通, 转接, 排队放弃, 未接, 未接通, 呼叫失败 ...) and the PBX's hangup cause.
//
// Rules
//   1. The server's call view (dispatch.views.call_view) says it all: direction, queue, wait_s, extension,
//      answered_by, transfers, outcome, cause, dialed_by, about_call. Nothing is inferred here; a key the view
//      does not have (an older server) shows nothing, never a guess.
//   2. Codes are words from the catalogue: calldir.<direction>, calloutcome.<outcome>, the hangup cause's Q.850
//      number (cause.q850.<n>; one the catalogue lacks shows as the PBX said it); an outcome the call's state
//      already says (ringing, queued, talking) is not repeated.
"use strict";

import { el } from "./common.js";
import { fmtDuration, fmtTime, label, t } from "./i18n.js";

/** Outcomes the call's state already says (振铃中, 排队中, 通话中): not said twice. */
const SAID_BY_STATE = new Set(["ringing", "queued", "talking"]);

/** How a call ended, or is going, in words ("" when the view does not say). */
export const outcomeWords = (call) => (call.outcome ? label("calloutcome", call.outcome) : "");

/** Someone at an extension: "王芳（分机 8101）", "分机 8101", or the name alone. */
function atExtension(name, extension) {
  if (name && extension) return t("callrec.person_ext", { name, extension });
  if (extension) return t("callrec.ext", { extension });
  return name || "";
}

/** The parts of the record, each a small element (classes call-dir, call-outcome, call-queue, ...). */
export function callFacts(call) {
  const parts = [];
  if (call.direction) {
    parts.push(el("span", { className: `chip call-dir call-dir-${call.direction}`, dataset: { direction: call.direction } },
      label("calldir", call.direction)));
  }
  if (call.outcome && !SAID_BY_STATE.has(call.outcome)) {
    parts.push(el("span", { className: "call-outcome", dataset: { outcome: call.outcome } }, outcomeWords(call)));
  }
  if (call.queue) parts.push(el("span", { className: "call-queue" }, t("callrec.queue", { queue: call.queue })));
  if (typeof call.wait_s === "number") {
    parts.push(el("span", { className: "call-wait" }, t("callrec.wait", { wait: fmtDuration(call.wait_s) })));
  }
  const answerer = atExtension(call.answered_by, call.extension);
  if (answerer && call.answered_at && call.direction !== "out") {
    parts.push(el("span", { className: "call-answerer" }, t("callrec.answered_by", { who: answerer })));
  }
  for (const transfer of call.transfers || []) {
    parts.push(el("span", { className: "call-transfer" }, t("callrec.transfer", {
      who: atExtension(transfer.operator, transfer.extension) || "—", time: fmtTime(transfer.at),
    })));
  }
  if (call.direction === "out" && call.dialed_by) {
    parts.push(el("span", { className: "call-dialed-by" }, t("callrec.dialed_by", { name: call.dialed_by })));
  }
  if (call.about_call) parts.push(el("span", { className: "call-about", title: call.about_call }, t("callrec.about")));
  if (call.cause) {
    parts.push(el("span", { className: "call-cause", title: call.cause }, t("callrec.cause", { cause: causeWords(call.cause) })));
  }
  return parts;
}

/** The PBX's hangup cause in the reader's words: its ITU-T Q.850 number ("16 Normal Clearing") or the link's
 * own words ("ended while the PBX link was down", "originate failed: ..."); as the PBX said it otherwise. */
export function causeWords(cause) {
  const text = String(cause);
  const number = /^(\d+)\b/.exec(text);
  const key = number ? `cause.q850.${number[1]}`
    : text.startsWith("ended while the PBX link was down") ? "cause.link_down"
      : text.startsWith("originate failed") ? "cause.originate_failed" : null;
  const words = key ? t(key) : key;
  return words && words !== key ? words : text;
}
