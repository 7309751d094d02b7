"""The HTTP edges (console.limits, console.app's handlers): bodies over the limit, JSON that is not JSON, input
that never reaches the core as a 500, and one error shape for every refusal.

Over a real ``anxin serve`` process for the memory and the wire (raw sockets, /proc/<pid>/status), and over the
app in-process (Starlette's TestClient, as test_api and test_errors do) for the answers.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from anxin.server import app_for
from console.errors import ALL_CODES
from console.limits import json_problem
from dispatch.errors import JournalError
from tests.conftest import settings_for
from tests.console.test_api import account, auth, client, token
from tests.process import ServerProcess

__all__ = ["client"]  # the fixture, shared with test_api

MB = 1 << 20
ALARM = {"elder_id": "e1", "alarm_type": "sos", "lat": 24.51, "lon": 117.7}
NOT_JSON = [
    ('{"elder_id": "e1", "alarm_type": "sos", "lat": NaN, "lon": 117.7}', "lat"),
    ('{"elder_id": "e1", "alarm_type": "sos", "lat": Infinity, "lon": 117.7}', "lat"),
    ('{"elder_id": "e1", "alarm_type": "sos", "lat": 24.5, "lon": -Infinity}', "lon"),
    ('{"elder_id": "e1", "alarm_type": "sos", "lat": 1e999, "lon": 117.7}', "lat"),
    ('{"elder_id": "e1", "alarm_type": "sos", "note": "\\ud800"}', "note"),
    ('{"elder_id": "e1\\udfff", "alarm_type": "sos"}', "elder_id"),
]


def shaped(body: dict[str, object]) -> None:
    """The API's one error shape, with a known code."""
    assert {"detail", "code", "params", "field"} <= set(body), body
    assert body["code"] in ALL_CODES, body
    assert isinstance(body["params"], dict)


# -- over a real server: the memory a large body costs ----------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("edges") / "data").start()
    yield process
    process.stop()


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB: now, and the peak."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def post_large(port: int, size: int, *, chunked: bool) -> tuple[int, int, float]:
    """POST a ``size``-byte body to /api/alarms with no token, as fast as the server takes it; (the status, the
    bytes sent before the connection ended or the answer came, the seconds to the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = f"POST /api/alarms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    started = time.perf_counter()
    sock.sendall(head.encode())
    answer = bytearray()
    sent = 0

    def send() -> None:
        nonlocal sent
        piece = b"[" + b"1," * (32 * 1024)
        try:
            while sent < size and not answer:
                data = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
                sock.sendall(data)
                sent += len(piece)
        except OSError:
            pass  # the server answered and closed: what it did not read never reached it

    sender = threading.Thread(target=send)
    sender.start()
    while b"\r\n\r\n" not in answer:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    took = time.perf_counter() - started
    sender.join(60)
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, sent, took


def test_large_bodies_are_refused_without_the_memory(server: ServerProcess) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    floor = min(_timed(lambda: httpx.get(f"{server.url}/healthz")) for _ in range(5))  # this run's speed
    before, _ = rss_kb(pid)
    results: list[tuple[int, int, float]] = []
    for chunked in (False, True):
        threads = [
            threading.Thread(target=lambda c=chunked: results.append(post_large(server.port, 50 * MB, chunked=c)))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    after, peak = rss_kb(pid)
    print(f"\n4+4 x 50 MB: RSS {before} -> {after} kB, peak {peak} kB; healthz floor {floor * 1000:.1f} ms")
    for status, sent, took in results:
        print(f"  413 after {took * 1000:.1f} ms, {sent / MB:.1f} MB sent")
        assert status == 413
        assert sent < 40 * MB  # the rest was never read
        assert took < max(2.0, 100 * floor)
    assert after - before < 8 * 1024 and peak - before < 8 * 1024  # kB: a few MB at most, not 4 x 50 MB


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def test_a_declared_length_over_the_limit_is_answered_before_any_body(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer
    assert b"connection: close" in head.lower()
    refusal = json.loads(body)
    shaped(refusal)
    assert refusal["code"] == "body_too_large" and refusal["params"] == {"limit": MB}


def test_a_websocket_message_over_its_limit_closes_the_connection(server: ServerProcess) -> None:
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    admin = httpx.post(f"{server.url}/api/auth/token", data={"username": "admin", "password": "test-admin-pw"})
    ws_url = f"{server.ws}/ws/console?token={admin.json()['access_token']}"

    async def send_large() -> int | None:
        async with connect(ws_url, max_size=None) as ws:
            await ws.recv()  # the snapshot
            await ws.send("x" * (256 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd is not None else None

    assert asyncio.run(send_large()) == 1009  # message too big


# -- in-process: the answers -----------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_before_authentication(client: TestClient) -> None:
    large = b'{"note": "' + b"x" * (MB + 10) + b'"}'
    for url in ("/api/alarms", "/api/auth/token", "/api/elders/e1"):
        refused = client.request("PUT" if "elders" in url else "POST", url, content=large,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
        assert refused.status_code == 413, refused.text
        shaped(refused.json())
        assert refused.json()["code"] == "body_too_large"
        assert len(refused.content) < 500  # nothing echoed


def test_a_roster_may_be_larger_than_the_default(client: TestClient) -> None:
    admin = token(client)
    roster = {"roster": [{"responder_id": "c1", "on": True, "lat": 24.511, "lon": 117.70}] * 30_000}
    body = json.dumps(roster).encode()
    assert MB < len(body) < 4 * MB
    answered = client.post(
        "/api/responders/duty", content=body, headers={**auth(admin), "Content-Type": "application/json"}
    )
    assert answered.status_code != 413, answered.text  # refused for its length in lines, if at all, not its bytes
    shaped(answered.json()) if answered.status_code >= 400 else None


@pytest.mark.parametrize(("body", "field"), NOT_JSON)
def test_json_that_is_not_json_gets_422_naming_where(client: TestClient, body: str, field: str) -> None:
    head = {**auth(token(client)), "Content-Type": "application/json"}
    refused = client.post("/api/alarms", content=body, headers=head)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    shaped(answer)
    assert answer["code"] == "validation" and answer["field"] == field
    assert "\\ud8" not in refused.text and "1e999" not in json.dumps(answer["params"])


def test_not_json_on_other_routes(client: TestClient) -> None:
    admin = token(client)
    head = {**auth(admin), "Content-Type": "application/json"}
    elder = client.get("/api/elders/e1", headers=auth(admin)).json()
    elder = {key: value for key, value in elder.items() if key in _elder_fields(client, admin)}
    cases = [
        ("POST", "/api/auth/token", '{"username": "admin", "password": NaN}', "password"),
        ("PUT", "/api/elders/e1", json.dumps(elder)[:-1] + ', "lat": 1e999}', "lat"),
        ("PUT", "/api/elders/e1", json.dumps({**elder, "name": "\udc00"}, ensure_ascii=True), "name"),
        (
            "POST",
            "/api/responders/duty",
            '{"roster": [{"responder_id": "c1", "on": true, "lat": NaN}]}',
            "roster.0.lat",
        ),
        ("POST", "/api/hotline/events", '{"event": "ringing", "call_id": "x\\ud800", "caller": "1"}', "call_id"),
    ]
    for method, url, body, field in cases:
        refused = client.request(method, url, content=body, headers=head)
        assert refused.status_code == 422, (url, refused.text)
        shaped(refused.json())
        assert refused.json()["field"] == field, refused.text


def _elder_fields(client: TestClient, admin: str) -> set[str]:
    schema = client.get("/openapi.json", headers=auth(admin)).json()["components"]["schemas"]["Elder"]
    return set(schema["properties"])


def test_a_body_that_is_no_json_at_all(client: TestClient) -> None:
    head = {**auth(token(client)), "Content-Type": "application/json"}
    for body in ("not json", '{"elder_id": ', "\x00\xff"):
        refused = client.post("/api/alarms", content=body.encode("latin-1"), headers=head)
        assert refused.status_code in (400, 422), refused.text
        shaped(refused.json())
        if refused.status_code == 422:
            assert refused.json()["field"] is None and refused.json()["detail"].startswith("body:")


def test_surrogates_and_nul_in_paths_queries_and_forms_are_not_500(client: TestClient) -> None:
    admin = token(client)
    head = auth(admin)
    urls = [
        "/api/incidents/%ED%A0%80", "/api/incidents/a%00b", "/api/elders/%ED%A0%80", "/api/elders/e%00",
        "/api/elders?q=%ED%A0%80", "/api/elders?q=a%00b", "/api/calls/%ED%A0%80", "/api/journal?after=%00",
        "/api/places?q=%00", "/api/incidents?state=%ED%A0%80",
    ]  # fmt: skip
    for url in urls:
        answered = client.get(url, headers=head)
        assert answered.status_code < 500, (url, answered.text)
        if answered.status_code >= 400:
            shaped(answered.json())
    for username in ("%ED%A0%80", "a%00b"):
        login = client.post("/api/auth/token", content=f"username={username}&password=x%ED%A0%80",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert login.status_code == 401, login.text
        shaped(login.json())


def test_an_unhandled_exception_is_a_uniform_500(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("a bug, secret detail")

    app = app_for(settings_for(tmp_path / "data"))
    app.add_api_route("/api/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as plain:
        answered = plain.get("/api/broken")
    assert answered.status_code == 500
    assert answered.headers["content-type"] == "application/json"
    shaped(answered.json())
    assert answered.json()["code"] == "internal" and "secret" not in answered.text


def test_login_on_a_failed_journal_or_storage_is_503(client: TestClient) -> None:
    accounts = client.app.state.accounts  # type: ignore[attr-defined]
    account(client, token(client), "op", "operator")
    # storage refusing writes, as a full or read-only disk does: a right password cannot store its token
    client.portal.call(accounts._db.execute, "PRAGMA query_only = ON")  # type: ignore[union-attr]
    refused = client.post("/api/auth/token", data={"username": "op", "password": "password-123"})
    assert refused.status_code == 503, refused.text
    shaped(refused.json())
    assert refused.json()["code"] == "journal_unavailable"
    client.portal.call(accounts._db.execute, "PRAGMA query_only = OFF")  # type: ignore[union-attr]
    # the journal failed (what a failed commit leaves): a wrong password cannot be put on record
    client.app.state.core.journal._fail(JournalError("journal commit failed: database or disk is full"))  # type: ignore[attr-defined]
    wrong = client.post("/api/auth/token", data={"username": "op", "password": "wrong"})
    assert wrong.status_code == 503, wrong.text
    shaped(wrong.json())
    assert wrong.json()["code"] == "journal_unavailable"


def test_the_strict_json_check_costs_microseconds_on_an_alarm() -> None:
    body = json.dumps(ALARM).encode()
    runs = 20_000

    def per_call(work: object) -> float:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(runs):
                work(body)  # type: ignore[operator]
            samples.append((time.perf_counter() - started) / runs)
        return statistics.median(samples)

    floor = per_call(json.loads)  # parsing the same body once, as FastAPI does anyway
    check = per_call(json_problem)
    print(f"\nstrict JSON check {check * 1e6:.2f} µs a small body; json.loads {floor * 1e6:.2f} µs")
    assert json_problem(body) is None
    assert check < max(floor, 1e-6) * 2 and check < 20e-6
