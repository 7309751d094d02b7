// Alerts without audio files: a beep made with WebAudio, and the phone's vibration where there is one.
//
// Browsers start audio only after the user touched the page, so every page calls unlockAudio() from its
// first click or key press (the login button will do). Each alert is counted on <html data-alerts="N">,
// whether or not the speaker could play it, so a test can see that the page tried.
"use strict";

let context = null;
let count = 0;

export function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!context) context = new Context();
  if (context.state === "suspended") context.resume().catch(() => {});
}

export function listenForUnlock() {
  for (const kind of ["pointerdown", "keydown", "touchstart"]) {
    document.addEventListener(kind, unlockAudio, { passive: true });
  }
}

/** `times` short tones of `hz`; urgent alarms use more of them. */
export function beep({ times = 1, hz = 880, ms = 160, gapMs = 110 } = {}) {
  count += 1;
  document.documentElement.dataset.alerts = String(count);
  if (!context || context.state !== "running") return;
  const start = context.currentTime + 0.02;
  for (let i = 0; i < times; i += 1) {
    const at = start + (i * (ms + gapMs)) / 1000;
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "square";
    oscillator.frequency.value = hz;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + ms / 1000);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + ms / 1000 + 0.02);
  }
}

export function vibrate(pattern) {
  if (typeof navigator.vibrate === "function") navigator.vibrate(pattern);
}
