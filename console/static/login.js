// The staff login form shared by the console and the supervisor view (the phone page has its own).
"use strict";

import { $, ApiError, errorText } from "./common.js";
import { t } from "./i18n.js";
import { unlockAudio } from "./sound.js";

/** Logs in with the page's form; caregivers are sent to their phone page, clinics to theirs. */
export function bindStaffLogin(session, start) {
  $("login-submit").disabled = false; // the button stays off until this handler is there
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    unlockAudio(); // the click is the user's gesture that lets the page beep later
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const who = await session.login($("login-username").value.trim(), $("login-password").value);
      if (who.role === "caregiver" || who.role === "family" || who.role === "clinic" || who.role === "assessor") {
        session.end();
        const where = { family: "login.family_use_phone", clinic: "login.clinic_use_page",
          assessor: "login.assessor_use_page" }[who.role];
        $("login-error").textContent = t(where || "login.caregiver_use_phone");
        return;
      }
      $("login-password").value = "";
      start();
    } catch (error) {
      // a wrong password says so; a disabled or locked account says why (errorText, from the code)
      const wrong = error instanceof ApiError && error.status === 401 && (!error.code || error.code === "login_failed");
      $("login-error").textContent = wrong ? t("login.wrong") : errorText(error);
    } finally {
      $("login-submit").disabled = false;
    }
  });
}
