"""The server's own English phrases in the reader's words, for what the server lays out itself (the elder's file as
a PDF, :mod:`console.filepdf`).

What it owns
    :data:`PHRASES`, the rows of the pages' ``static/reasons.js`` that an elder's file can hold: the automatic
    notes of calls and check-ins and the outcomes of technical and test incidents ("hotline call from ... on line
    ...", "device reported restore (...)", "test passed"); and :func:`explain`, which says one of them in words.

Rules
    1. One table in two languages of code: each row's pattern is its reasons.js row's regular expression, character
       for character (tests/console/test_phrases.py compares them, so a row changed on one side fails there), and
       its words are the catalogue's keys, so the page and the PDF say the same.
    2. A text that matches no row was typed by a person: it is given back as it is.
    3. Pure: the words come from the caller (``say``: a catalogue lookup with its parameters; ``name``: a code of
       a group in words), so the module holds no words and reads no file.

Never
    Never translate a person's words; never keep words of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: a catalogue lookup: ``say("reason.call_from", caller="...")``
Say = Callable[..., str]
#: a code of a group in words: ``name("protocol", "sia-dc09")``
Name = Callable[[str, object], str]
Render = Callable[[re.Match[str], Say, Name], str]


def _household(names: str | None, say: Say) -> str:
    """The landline's elders named after a call's note ("(household: 李建国, 王秀英)")."""
    return say("reason.household", names=say("list.and").join(names.split(", "))) if names else ""


def _then(first: str, rest: str | None, joint: str) -> str:
    return f"{first}{joint}{rest}" if rest else first


def _no_report(m: re.Match[str], say: Say, name: Name) -> str:
    text = say("reason.no_report", protocol=name("protocol", m[1]), device=m[2], n=m[3])
    return _then(text, say("reason.last_seen", n=m[4]) if m[4] else None, say("list.separator"))


#: (the reasons.js row's pattern, its words), in reasons.js's order (rule 1)
PHRASES: tuple[tuple[str, Render], ...] = (
    (r"^hotline call from (\S+) on line (.*?)(?: \(household: (.+)\))?$",
     lambda m, say, _: say("reason.hotline_call", caller=m[1], line=m[2] or "—") + _household(m[3], say)),
    (r"^missed hotline call from (\S+) on line ([^:]*?)(?:: call back)?(?: \(household: (.+)\))?$",
     lambda m, say, _: say("reason.missed_call", caller=m[1], line=m[2] or "—") + _household(m[3], say)),
    (r"^call from (\S+)(?:: ([\s\S]*))?$",
     lambda m, say, _: _then(say("reason.call_from", caller=m[1]), m[2], say("list.colon"))),
    (r"^caller (\S+)(?:\n([\s\S]*))?$",
     lambda m, say, _: _then(say("reason.caller", caller=m[1]), m[2], say("list.separator"))),
    (r"^no report from (\S+) device (\S+) within (\d+) s(?: \(last seen (\d+) s ago\))?$", _no_report),
    (r"^device reported again$", lambda m, say, _: say("reason.device_back")),
    (r"^all devices restored$", lambda m, say, _: say("reason.all_devices_restored")),
    (r"^device reported restore \((.*)\)$", lambda m, say, _: say("reason.device_restore", code=m[1])),
    (r"^device unbound$", lambda m, say, _: say("reason.device_unbound")),
    (r"^test passed$", lambda m, say, _: say("reason.test_passed")),
    (r"^raised during a test call: handled as a real alarm$", lambda m, say, _: say("reason.real_in_test")),
)  # fmt: skip

_COMPILED = tuple((re.compile(pattern), render) for pattern, render in PHRASES)


def explain(text: str, say: Say, name: Name) -> str:
    """A server phrase in the catalogue's words; any other text as it is (rule 2)."""
    for pattern, render in _COMPILED:
        match = pattern.match(text)
        if match is not None:
            return render(match, say, name)
    return text
