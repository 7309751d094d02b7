"""Click-to-call and the PBX's state over HTTP (console.telephony), and the hotline events a PBX posts.

The PBX here is a small object of the test standing in for the core's :class:`~dispatch.commands.Telephony`
seam (the real link is tested over TCP with the AMI adapter); everything else is real: the app, its accounts, a
SQLite data folder, the journal.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from console.errors import ALL_CODES
from console.telephony import DIAL_BURST, DIAL_WINDOW_S, REDIAL_S
from dispatch.clock import ManualClock
from dispatch.commands import Dial
from dispatch.views import DESK_RING_MAX_S
from tests.conftest import elder, seed, settings_for
from tests.console.test_api import account, auth, token

CATALOGUES = Path(__file__).parents[2] / "console" / "static" / "i18n"


class Pbx:
    """A PBX that is connected or not, and accepts or refuses originates, keeping what it was asked."""

    def __init__(self, *, connected: bool = True, refuse: str | None = None) -> None:
        self._connected = connected
        self.refuse = refuse
        self.asked: list[Dial] = []

    @property
    def connected(self) -> bool:
        return self._connected

    async def originate(self, dial: Dial) -> None:
        self.asked.append(dial)
        if self.refuse is not None:
            raise RuntimeError(self.refuse)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    with socket.socket() as probe:  # a port nothing listens on: the server's own link to it stays down
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = settings_for(
        tmp_path / "data",
        pbx_host="127.0.0.1",
        pbx_port=closed_port,
        pbx_username="anxin",
        pbx_extensions={"8101": "op", "8102": "op2", "8109": "boss"},
    )
    asyncio.run(
        seed(settings, elders=[elder("e1"), elder("e9", phone="13505960009", community="芗城区/东铺头街道/社区")])
    )
    with TestClient(app_for(settings, clock)) as test_client:
        yield test_client


@pytest.fixture
def pbx(client: TestClient) -> Pbx:
    found = Pbx()
    client.app.state.core.telephony = found  # type: ignore[attr-defined]  # the app's state is untyped
    return found


@pytest.fixture
def tokens(client: TestClient) -> dict[str, str]:
    admin = token(client)
    made = {"admin": admin, "op": account(client, admin, "op", "operator"),
            "op3": account(client, admin, "op3", "operator"),
            "boss": account(client, admin, "boss", "supervisor")}  # fmt: skip
    body = {"username": "near", "password": "password-123", "role": "operator", "scopes": ["龙文区/蓝田街道"]}
    assert client.post("/api/accounts", json=body, headers=auth(admin)).status_code == 201
    made["near"] = token(client, "near", "password-123")
    return made


def head(client: TestClient) -> int:
    seq: int = client.app.state.core.journal.durable_seq  # type: ignore[attr-defined]
    return seq


def test_the_telephony_state_names_the_readers_extension(client: TestClient, tokens: dict[str, str]) -> None:
    answer = client.get("/api/telephony", headers=auth(tokens["op"])).json()
    assert answer == {"configured": True, "connected": False, "extension": "8101", "can_dial": False}
    client.app.state.core.telephony = Pbx()  # type: ignore[attr-defined]
    assert client.get("/api/telephony", headers=auth(tokens["op"])).json()["can_dial"] is True
    assert client.get("/api/telephony", headers=auth(tokens["op3"])).json() == {
        "configured": True, "connected": True, "extension": None, "can_dial": False,
    }  # fmt: skip
    assert client.get("/api/telephony", headers=auth(tokens["admin"])).json()["can_dial"] is False  # admins don't


def test_a_dial_is_on_record_before_the_pbx_is_asked(client: TestClient, tokens: dict[str, str], pbx: Pbx) -> None:
    body = {"number": "135-0596 0001", "elder_id": "e1"}
    answer = client.post("/api/calls/dial", json=body, headers=auth(tokens["op"]))
    assert answer.status_code == 201, answer.text
    call_id = answer.json()["call_id"]
    assert answer.json() == {"call_id": call_id, "state": "dialing"}
    assert pbx.asked == [Dial(call_id, "8101", "13505960001", "op")]
    record = client.get(f"/api/calls/{call_id}", headers=auth(tokens["op"])).json()
    assert record["direction"] == "out" and record["outcome"] == "ringing" and record["elder_id"] == "e1"
    assert record["dialed_by"] == "op"
    # then the PBX's events about it, as its adapter would post them
    admin = auth(tokens["admin"])
    for step in ({"event": "answered", "extension": "8101"}, {"event": "ended", "cause": "16 Normal Clearing"}):
        posted = client.post("/api/hotline/events", json={"call_id": call_id, "caller": "13505960001", **step},
                             headers=admin)  # fmt: skip
        assert posted.status_code == 200, posted.text
    record = client.get(f"/api/calls/{call_id}", headers=auth(tokens["op"])).json()
    assert record["outcome"] == "answered" and record["cause"] == "16 Normal Clearing"


def test_a_refused_originate_ends_the_call_failed(client: TestClient, tokens: dict[str, str], pbx: Pbx) -> None:
    pbx.refuse = "Extension does not exist"
    answer = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=auth(tokens["boss"]))
    assert answer.status_code == 502 and answer.json()["code"] == "pbx_refused", answer.text
    (dial,) = pbx.asked
    record = client.get(f"/api/calls/{dial.call_id}", headers=auth(tokens["boss"])).json()
    assert record["outcome"] == "failed" and record["cause"] == "originate failed: Extension does not exist"
    assert dial.extension == "8109" and dial.operator == "boss"


def test_refusals_write_nothing(client: TestClient, tokens: dict[str, str]) -> None:
    before = head(client)
    op, op3 = auth(tokens["op"]), auth(tokens["op3"])
    # no PBX at all, then a PBX whose link is down
    no_pbx = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op)
    assert no_pbx.status_code == 503 and no_pbx.json()["code"] == "pbx_not_connected"
    client.app.state.core.telephony = Pbx(connected=False)  # type: ignore[attr-defined]
    down = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op)
    assert down.status_code == 503 and down.json()["code"] == "pbx_not_connected"
    client.app.state.core.telephony = Pbx()  # type: ignore[attr-defined]
    no_extension = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op3)
    assert no_extension.status_code == 409 and no_extension.json()["code"] == "no_extension"
    for number in ("12", "1" * 33, "call me", "+-"):
        bad = client.post("/api/calls/dial", json={"number": number}, headers=op)
        assert bad.status_code == 422 and bad.json()["code"] == "bad_number", bad.text
    for about in ({"elder_id": "nobody"}, {"call_id": "nope"}, {"incident_id": "INC-99"}):
        missing = client.post("/api/calls/dial", json={"number": "13505960002", **about}, headers=op)
        assert missing.status_code == 404, missing.text
    admin = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=auth(tokens["admin"]))
    assert admin.status_code == 403  # an administrator keeps the registry, not the hotline
    assert head(client) == before


def test_what_is_out_of_reach_is_as_if_it_did_not_exist(client: TestClient, tokens: dict[str, str], pbx: Pbx) -> None:
    """An operator of 蓝田街道 calls neither an elder of another district nor back a call from there."""
    admin = auth(tokens["admin"])
    settings = client.app.state.core.settings  # type: ignore[attr-defined]
    settings.pbx_extensions["8110"] = "near"
    far = {"event": "ringing", "call_id": "far-1", "caller": "13505960009"}
    assert client.post("/api/hotline/events", json=far, headers=admin).status_code == 200
    before = head(client)
    near = auth(tokens["near"])
    for about in ({"elder_id": "e9"}, {"call_id": "far-1"}):
        refused = client.post("/api/calls/dial", json={"number": "13505960009", **about}, headers=near)
        assert refused.status_code == 404, refused.text
    assert head(client) == before and not pbx.asked
    served = client.post("/api/calls/dial", json={"number": "13505960001", "elder_id": "e1"}, headers=near)
    assert served.status_code == 201, served.text


def test_a_stuck_button_does_not_dial_fifty_times(
    client: TestClient, tokens: dict[str, str], pbx: Pbx, clock: ManualClock
) -> None:
    op = auth(tokens["op"])

    def over() -> None:  # the call just placed ends (a wrong number, no answer): the desk phone is free again
        ended = {"call_id": pbx.asked[-1].call_id, "caller": pbx.asked[-1].number, "event": "ended"}
        assert client.post("/api/hotline/events", json=ended, headers=auth(tokens["admin"])).status_code == 200

    statuses = [client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op).status_code
                for _ in range(50)]  # fmt: skip
    assert statuses.count(201) == 1 and len(pbx.asked) == 1
    over()
    again = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op)
    assert again.status_code == 429 and again.json()["code"] == "dial_throttled"
    assert int(again.headers["Retry-After"]) == REDIAL_S
    clock.advance(REDIAL_S)
    assert client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op).status_code == 201
    over()
    # other numbers: a few in a row, then a pause
    for n in range(DIAL_BURST - 2):
        assert client.post("/api/calls/dial", json={"number": f"1350596000{n + 3}"}, headers=op).status_code == 201
        over()
    burst = client.post("/api/calls/dial", json={"number": "13505960008"}, headers=op)
    assert burst.status_code == 429
    clock.advance(DIAL_WINDOW_S)
    assert client.post("/api/calls/dial", json={"number": "13505960008"}, headers=op).status_code == 201
    # another operator is not held up by the first one's button
    assert (
        client.post("/api/calls/dial", json={"number": "13505960002"}, headers=auth(tokens["boss"])).status_code == 201
    )


def test_hotline_events_take_queues_extensions_transfers_and_causes(client: TestClient, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    steps: list[dict[str, Any]] = [
        {"event": "ringing"},
        {"event": "queued", "queue": "hotline"},
        {"event": "answered", "extension": "8101"},
        {"event": "transferred", "extension": "8102"},
        {"event": "ended", "cause": "16 Normal Clearing"},
    ]
    for step in steps:
        posted = client.post("/api/hotline/events", json={"call_id": "h-1", "caller": "13505960001", **step},
                             headers=admin)  # fmt: skip
        assert posted.status_code == 200, posted.text
    record = client.get("/api/calls/h-1", headers=admin).json()
    assert record["queue"] == "hotline" and record["extension"] == "8101" and record["answered_by"] == "op"
    assert [t["extension"] for t in record["transfers"]] == ["8102"] and record["transfers"][0]["operator"] == "op2"
    assert record["outcome"] == "transferred" and record["cause"] == "16 Normal Clearing"
    unknown = client.post("/api/hotline/events", json={"event": "parked", "call_id": "h-2", "caller": "1"},
                          headers=admin)  # fmt: skip
    assert unknown.status_code == 422


def test_the_supervisor_sees_the_calls_today(client: TestClient, tokens: dict[str, str], clock: ManualClock) -> None:
    admin = auth(tokens["admin"])
    for step in ({"event": "ringing"}, {"event": "queued", "queue": "hotline"}, {"event": "ended"}):
        client.post("/api/hotline/events", json={"call_id": "k-1", "caller": "13505960001", **step}, headers=admin)
    figures = client.get("/api/kpis", headers=auth(tokens["boss"])).json()["calls_today"]
    assert figures["offered"] == 1 and figures["abandoned"] == 1 and figures["target_s"] == 60.0


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_every_telephony_code_has_its_sentence(language: str) -> None:
    catalogue = json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8"))
    for code in ("bad_number", "no_extension", "pbx_not_connected", "pbx_refused", "dial_throttled"):
        assert code in ALL_CODES and f"error.{code}" in catalogue
    for key in ("calls_missed", "calls_transferred", "calls_outbound", "calls_abandoned"):
        assert f"report.f.{key}" in catalogue


def test_a_desk_phone_on_a_call_does_not_dial_again_until_the_call_is_over(
    client: TestClient, tokens: dict[str, str], pbx: Pbx, clock: ManualClock
) -> None:
    op, admin = auth(tokens["op"]), auth(tokens["admin"])
    first = client.post("/api/calls/dial", json={"number": "13505960001"}, headers=op)
    assert first.status_code == 201, first.text
    call_id = first.json()["call_id"]
    clock.advance(REDIAL_S + DIAL_WINDOW_S)  # past the pace: only the desk phone holds it back
    again = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op)
    assert again.status_code == 409 and again.json()["code"] == "extension_busy", again.text
    assert again.json()["params"] == {"call": call_id} and len(pbx.asked) == 1
    other_desk = client.post("/api/calls/dial", json={"number": "13505960002"}, headers=auth(tokens["boss"]))
    assert other_desk.status_code == 201
    ended = {"call_id": call_id, "caller": "13505960001", "event": "ended", "cause": "16 Normal Clearing"}
    assert client.post("/api/hotline/events", json=ended, headers=admin).status_code == 200
    assert client.post("/api/calls/dial", json={"number": "13505960002"}, headers=op).status_code == 201
    # a call placed whose end the PBX never reported holds the desk only as long as a phone may ring
    clock.advance(DESK_RING_MAX_S + 1)
    stuck = client.post("/api/calls/dial", json={"number": "13505960005"}, headers=op)
    assert stuck.status_code == 201, stuck.text
    for dial in pbx.asked[-2:]:
        over = {"call_id": dial.call_id, "caller": dial.number, "event": "ended"}
        assert client.post("/api/hotline/events", json=over, headers=admin).status_code == 200
    # an inbound call answered at the operator's extension holds the desk too, until it ends
    clock.advance(REDIAL_S + DIAL_WINDOW_S)
    ring = {"call_id": "pbx-1.1", "caller": "13505960009", "event": "ringing"}
    assert client.post("/api/hotline/events", json=ring, headers=admin).status_code == 200
    assert client.post("/api/calls/dial", json={"number": "13505960003"}, headers=op).status_code == 201
    clock.advance(REDIAL_S + DIAL_WINDOW_S)
    last = pbx.asked[-1].call_id
    assert client.post("/api/hotline/events", json={**ended, "call_id": last}, headers=admin).status_code == 200
    answered = {**ring, "event": "answered", "extension": "8101"}
    assert client.post("/api/hotline/events", json=answered, headers=admin).status_code == 200
    busy = client.post("/api/calls/dial", json={"number": "13505960004"}, headers=op)
    assert busy.status_code == 409 and busy.json()["params"] == {"call": "pbx-1.1"}
    record = client.get("/api/calls/pbx-1.1", headers=op).json()
    assert record["handler_user"] == "op"  # the console of the operator at 8101 takes it; the others list it


@pytest.mark.parametrize(
    "number",
    ["+", "++86", "+ 86", "1" * 40, "１２３４５", "١٢٣٤٥", "۱۲۳۴۵", "१२३४५", "135\u00a00596", "135\x000596",
     "135\r\n0596", "*123#", "135,0596", "0x1f", "1e10", "", " ", "--", "+86+135"],
)  # fmt: skip
def test_odd_numbers_are_refused_before_anything_is_written(
    client: TestClient, tokens: dict[str, str], pbx: Pbx, number: str
) -> None:
    """Only ASCII digits reach the PBX's dialplan: full-width, Arabic-Indic, Devanagari digits (str.isdigit's),
    control characters and dial codes are a bad number, and nothing is on record."""
    before = head(client)
    answer = client.post("/api/calls/dial", json={"number": number}, headers=auth(tokens["op"]))
    assert answer.status_code == 422, answer.text
    assert head(client) == before and not pbx.asked


@pytest.mark.parametrize("number", ["+86 135-0596-0001", "120", "+" + "1" * 32])
def test_numbers_as_people_write_them_are_dialled_as_digits(
    client: TestClient, tokens: dict[str, str], pbx: Pbx, number: str
) -> None:
    answer = client.post("/api/calls/dial", json={"number": number}, headers=auth(tokens["op"]))
    assert answer.status_code == 201, answer.text
    (dial,) = pbx.asked
    assert dial.number == number.replace(" ", "").replace("-", "")


def test_a_huge_or_odd_dial_body_is_refused(client: TestClient, tokens: dict[str, str], pbx: Pbx) -> None:
    before = head(client)
    op = {**auth(tokens["op"]), "content-type": "application/json"}
    huge = client.post("/api/calls/dial", content=b'{"number": "' + b"1" * (10 << 20) + b'"}', headers=op)
    assert huge.status_code in (413, 422), huge.text
    for body in ({"number": 13505960001}, {"number": ["13505960001"]}, {"number": "13505960001", "extension": "8102"},
                 {"number": "13505960001", "elder_id": "e" * 129}):  # fmt: skip
        odd = client.post("/api/calls/dial", json=body, headers=op)
        assert odd.status_code == 422, (body, odd.text)
    assert head(client) == before and not pbx.asked


def test_a_service_key_reports_every_kind_of_call_event(client: TestClient, tokens: dict[str, str]) -> None:
    """The PBX's own service key (grant "hotline") posts the new kinds; it places no call and reads no record."""
    admin = auth(tokens["admin"])
    body = {"username": "pbx", "name": "PBX", "role": "service", "grants": ["hotline"], "scopes": ["*"]}
    assert client.post("/api/accounts", json=body, headers=admin).status_code == 201
    key = client.post("/api/accounts/pbx/keys", json={"label": "asterisk"}, headers=admin).json()["key"]
    pbx_key = auth(key)
    steps: list[dict[str, Any]] = [
        {"event": "ringing", "line": "12349"},
        {"event": "queued", "queue": "hotline"},
        {"event": "answered", "extension": "8101"},
        {"event": "transferred", "extension": "9999"},  # an extension nobody is mapped to
        {"event": "queued", "queue": "late"},  # out of order: nothing written
        {"event": "ended", "cause": "x" * 200},
        {"event": "answered", "extension": "8102"},  # after the end: nothing written
    ]
    for step in steps:
        posted = client.post("/api/hotline/events", json={"call_id": "s-1", "caller": "13505960001", **step},
                             headers=pbx_key)  # fmt: skip
        assert posted.status_code == 200, posted.text
    record = client.get("/api/calls/s-1", headers=admin).json()
    assert record["outcome"] == "transferred" and record["queue"] == "hotline" and record["answered_by"] == "op"
    assert record["transfers"][0]["extension"] == "9999" and record["transfers"][0]["operator"] is None
    for too_long in ({"cause": "x" * 201}, {"queue": "q" * 65}, {"extension": "8" * 33}, {"caller": "1" * 33}):
        refused = client.post("/api/hotline/events", json={"event": "ended", "call_id": "s-2", "caller": "1",
                                                           **too_long}, headers=pbx_key)  # fmt: skip
        assert refused.status_code == 422, refused.text
    assert client.post("/api/calls/dial", json={"number": "13505960001"}, headers=pbx_key).status_code == 403
    assert client.get("/api/calls/s-1", headers=pbx_key).status_code == 403
