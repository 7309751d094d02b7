"""The one mapping from protocol codes to Anxin alarm types. Documented in docs/device-codes.md (drawn from
each protocol's spec, see gateway/registry.py).

Every codec looks its codes up here, so "what does a 101 mean" has one answer. A code maps to an event kind
("alarm", "checkin", "info") and, for alarms, an Anxin alarm type; the triage rule (dispatch.triage) turns
the alarm type into a priority. Contact ID qualifier 1 is a new event, 3 a restore (the condition cleared),
6 a previously reported condition still present (treated as new).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    kind: str  # "alarm" | "checkin" | "info"
    alarm_type: str | None
    label: str


def _alarm(alarm_type: str, label: str) -> CodeMeaning:
    return CodeMeaning("alarm", alarm_type, label)


#: Contact ID event codes (ADM-CID), as personal-alarm units use them.
CONTACT_ID: dict[str, CodeMeaning] = {
    "100": _alarm("medical", "medical alarm"),
    "101": _alarm("sos", "personal emergency (pendant)"),
    "102": _alarm("missed_checkin", "fail to report in"),
    "110": _alarm("fire", "fire alarm"),
    "120": _alarm("sos", "panic alarm"),
    "147": _alarm("missed_checkin", "sensor supervision failure"),
    "301": _alarm("mains_loss", "AC power loss"),
    "302": _alarm("low_battery", "low system battery"),
    "381": _alarm("missed_checkin", "RF supervision loss"),
    "384": _alarm("low_battery", "RF device low battery"),
    "602": CodeMeaning("checkin", None, "periodic test report"),
    "641": _alarm("inactivity", "senior watch / inactivity"),
    "661": CodeMeaning("info", None, "nurse or carer arrived"),
}

#: SIA DC-03 event codes (SIA-DCS) that matter for personal alarms.
SIA: dict[str, CodeMeaning] = {
    "MA": _alarm("medical", "medical alarm"),
    "MH": CodeMeaning("restore", "medical", "medical alarm restore"),
    "QA": _alarm("sos", "emergency alarm"),
    "QH": CodeMeaning("restore", "sos", "emergency alarm restore"),
    "PA": _alarm("sos", "panic alarm"),
    "FA": _alarm("fire", "fire alarm"),
    "FH": CodeMeaning("restore", "fire", "fire alarm restore"),
    "YT": _alarm("low_battery", "system battery trouble"),
    "YR": CodeMeaning("restore", "low_battery", "system battery restored"),
    "AT": _alarm("mains_loss", "AC trouble"),
    "AR": CodeMeaning("restore", "mains_loss", "AC restored"),
    "RP": CodeMeaning("checkin", None, "automatic test"),
    "HB": CodeMeaning("checkin", None, "heartbeat"),
}

#: A plain DC-09 message for an account that has an AES key (gateway.dc09 rule 7): the technical "tamper"
#: condition (someone speaks for the device without its key), one open condition per device until resolved.
DC09_PLAIN_KEYED = _alarm("tamper", "plain frame for an encrypted account")

#: 3G/4G watch status bits (the 32-bit status field of UD / AL frames) that raise alarms.
WATCH_STATUS_BITS: dict[int, CodeMeaning] = {
    0: _alarm("low_battery", "low battery"),
    14: _alarm("mains_loss", "power cut"),
    16: _alarm("sos", "SOS"),
    17: _alarm("low_battery", "low battery"),
    20: _alarm("watch_removed", "watch removed"),
    21: _alarm("fall", "fall down"),
    22: _alarm("fall", "fall down"),
}

#: GT06 alarm bytes (the alarm/language field of alarm packets).
GT06_ALARMS: dict[int, CodeMeaning] = {
    0x01: _alarm("sos", "SOS"),
    0x02: _alarm("mains_loss", "power cut"),
    0x0C: _alarm("watch_removed", "tampering"),
    0x0E: _alarm("low_battery", "low external battery"),
    0x0F: _alarm("low_battery", "low battery"),
    0x13: _alarm("watch_removed", "tampering"),
    0x19: _alarm("low_battery", "low battery"),
    0x23: _alarm("fall", "fall"),
    0x25: _alarm("watch_removed", "tampering"),
}

#: GT06 terminal-information alarm field that raises alarms: the value of bits 3-5 of the terminal-information
#: byte (100 SOS, 011 low battery, 111 removed; 001 vibration, 010 power cut, 110 geofence raise nothing).
GT06_TERMINAL_BITS: dict[int, CodeMeaning] = {
    3: _alarm("low_battery", "low battery"),
    4: _alarm("sos", "SOS"),
    7: _alarm("watch_removed", "removed"),
}

#: GT06 modular packet (0x70, long form) event module 0x2B values that raise alarms.
GT06_MODULAR_EVENTS: dict[int, CodeMeaning] = {
    0x11: _alarm("low_battery", "low battery"),
    0x12: _alarm("low_battery", "low power"),
    0x13: _alarm("mains_loss", "power cut"),
    0x14: _alarm("watch_removed", "removed"),
}


def contact_id(qualifier: str, event: str) -> tuple[str, str | None, str]:
    """(kind, alarm_type, label) for a Contact ID qualifier and event code; unknown codes are "info"."""
    meaning = CONTACT_ID.get(event)
    if meaning is None:
        return "info", None, f"Contact ID {event}"
    if meaning.kind == "alarm" and qualifier == "3":
        return "restore", meaning.alarm_type, f"{meaning.label} restored"
    return meaning.kind, meaning.alarm_type, meaning.label


def sia(code: str) -> tuple[str, str | None, str]:
    meaning = SIA.get(code)
    if meaning is None:
        return "info", None, f"SIA {code}"
    return meaning.kind, meaning.alarm_type, meaning.label
