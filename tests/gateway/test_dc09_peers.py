"""The DC-09 codec against independent implementations of the protocol.

(a) ``my-dc09-spt``, a transmitter, sends plain and encrypted ADM-CID and SIA-DCS messages and NULL polls over
    real TCP and UDP sockets to a small asyncio receiver inside the test, which feeds the bytes to
    :class:`Dc09Codec` and writes its replies back. my-dc09-spt reports success in three ways, all checked:
    ``send_msg`` returns (it raises "None of the paths are working" when no ACK came back), ``state()`` marks
    the path ok, and it logs ``Receiver has answered ('ACK', <offset>)``, the offset being the difference
    between our ACK's timestamp and its clock (so it parsed the timestamp too).
(b) ``pysiaalarm``'s parser (``SIAEvent.from_line``, the entry point of its servers) reads the captured vectors
    and frames from ``build_message``; its reading of account, sequence, code, zone, content and timestamp
    must agree with ours. It takes keys as ASCII text (the text's bytes are the AES key) and needs an ``L``
    field; the frames below respect that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from my_dc09_spt.comm.transpathtcp import TransPathTCP
from my_dc09_spt.dc09_spt import dc09_spt
from my_dc09_spt.msg.dc05_msg import dc05_msg
from my_dc09_spt.msg.dc09_msg import dc09_msg
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.errors import EventFormatError
from pysiaalarm.event import NAKEvent
from pysiaalarm.utils import ResponseType

from gateway.dc09 import Dc09Codec, build_message, encode_frame, format_time
from gateway.events import Decoded, DeviceEvent
from tests.fuzz.fuzz_dc09 import check_decoded

VECTORS = [
    json.loads(line) for line in (Path(__file__).parent / "vectors" / "dc09-vectors.jsonl").read_text().splitlines()
]
ACCOUNT = "1234AB"
PLAIN_ACCOUNT = "9012EF"  # has no key: a keyed account speaks encrypted only (gateway.dc09 rule 7)
KEY_TEXT = {16: "0123456789ABCDEF", 24: "0123456789ABCDEF01234567", 32: "0123456789ABCDEF0123456789ABCDEF"}
KEYS = {size: text.encode("ascii") for size, text in KEY_TEXT.items()}


# -- (a) my-dc09-spt as the transmitter ------------------------------------------------------------------------


@dataclass
class Receiver:
    """What the test receiver saw; ``skew`` moves its clock relative to the transmitter's."""

    keys: dict[str, bytes] = field(default_factory=dict)
    skew: float = 0.0
    tcp_port: int = 0
    udp_port: int = 0
    decoded: list[Decoded] = field(default_factory=list)

    def now(self) -> float:
        return time.time() + self.skew

    def handle(self, decoded: Decoded) -> bytes | None:
        check_decoded(decoded, self.now())
        self.decoded.append(decoded)
        return decoded.reply  # a real transport stores the events first, then sends this

    @property
    def events(self) -> list[DeviceEvent]:
        return [event for decoded in self.decoded for event in decoded.events]


class _UdpReceiver(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.codec = Dc09Codec(receiver.keys.get)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        for decoded in self.codec.datagram(data, self.receiver.now()):
            reply = self.receiver.handle(decoded)
            if reply is not None:
                self.transport.sendto(reply, addr)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A DC-09 receiver on TCP and UDP ports of 127.0.0.1, driven by Dc09Codec."""
    rec = Receiver(keys={ACCOUNT: KEYS[16], "5678CD": KEYS[32]})
    handlers: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        codec = Dc09Codec(rec.keys.get)
        try:
            while data := await reader.read(4096):
                for decoded in codec.receive_data(data, rec.now()):
                    reply = rec.handle(decoded)
                    if reply is not None:
                        writer.write(reply)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _UdpReceiver(rec), local_addr=("127.0.0.1", 0)
    )
    rec.tcp_port = server.sockets[0].getsockname()[1]
    rec.udp_port = udp.get_extra_info("sockname")[1]
    try:
        yield rec
    finally:
        server.close()
        await server.wait_closed()
        udp.close()
        if handlers:
            await asyncio.wait(handlers, timeout=5)


def answers(caplog: pytest.LogCaptureFixture) -> list[tuple[str, float | None]]:
    """What my-dc09-spt logged as the receiver's answers: (ACK/NAK/DUH, its clock offset to ours)."""
    return [record.args[0] for record in caplog.records if record.msg == "Receiver has answered %s"]  # type: ignore[index,misc]


@pytest.mark.parametrize("transport", ["TCP", "UDP"])
@pytest.mark.parametrize("key_size", [None, 16, 32], ids=["plain", "aes128", "aes256"])
async def test_my_dc09_spt_messages_are_acked_and_decoded(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, transport: str, key_size: int | None
) -> None:
    caplog.set_level(logging.INFO)
    account = {None: PLAIN_ACCOUNT, 16: ACCOUNT, 32: "5678CD"}[key_size]
    port = receiver.tcp_port if transport == "TCP" else receiver.udp_port
    spt = dc09_spt(account, receiver=0x5678, line=0)
    spt.set_path("main", "primary", "127.0.0.1", port, key=KEYS[key_size] if key_size else None, type=transport)

    await asyncio.to_thread(
        spt.send_msg, "ADM-CID", {"code": 101, "q": 1, "area": 1, "zone": 15, "lat": "24.5100", "lon": "117.7000"}
    )
    await asyncio.to_thread(spt.send_msg, "SIA-DCS", {"code": "MA", "area": 2, "zone": 3})
    await asyncio.to_thread(spt.send_msg, "ADM-CID", {"code": 101, "q": 3, "area": 1, "zone": 15})

    state = spt.state()
    assert state["main primary path ok"] == 1 and state["msgs sent"] == 3 and state["msgs queued"] == 0
    got = answers(caplog)
    assert [kind for kind, _ in got] == ["ACK"] * 3
    assert all(offset is not None and abs(offset) < 3 for _, offset in got)  # it read our ACK's timestamp

    assert [d.error for d in receiver.decoded] == [None] * 3
    seen = [(e.device_id, e.code, e.zone, e.kind, e.alarm_type, e.detail["encrypted"]) for e in receiver.events]
    encrypted = key_size is not None
    assert seen == [
        (account, "CID:1101", "015", "alarm", "sos", encrypted),
        (account, "SIA:MA", "3", "alarm", "medical", encrypted),  # it sends the zone as given: NMA3
        (account, "CID:3101", "015", "restore", "sos", encrypted),
    ]
    first = receiver.events[0]
    assert (first.lat, first.lon, first.detail["partition"], first.detail["receiver"]) == (24.51, 117.7, "01", "5678")
    assert receiver.events[1].detail["area"] == "2"
    if encrypted:  # an encrypted message carries the transmitter's clock, which is ours here
        assert all(abs(e.device_time - time.time()) < 5 for e in receiver.events)  # type: ignore[operator]


@pytest.mark.parametrize("transport", ["TCP", "UDP"])
@pytest.mark.parametrize("key_size", [None, 16], ids=["plain", "aes128"])
async def test_my_dc09_spt_null_polls_are_acked(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, transport: str, key_size: int | None
) -> None:
    caplog.set_level(logging.INFO)
    port = receiver.tcp_port if transport == "TCP" else receiver.udp_port
    account = ACCOUNT if key_size else PLAIN_ACCOUNT
    spt = dc09_spt(account, line=0)
    spt.set_path("main", "primary", "127.0.0.1", port, key=KEYS[key_size] if key_size else None, type=transport)
    spt.start_poll(3600, retry_delay=0.05)
    try:
        for _ in range(200):
            if spt.state().get("poll count"):
                break
            await asyncio.sleep(0.02)
    finally:
        await asyncio.to_thread(spt.stop_poll)
    assert spt.state()["main primary path ok"] == 1
    assert [kind for kind, _ in answers(caplog)] == ["ACK"]
    [event] = receiver.events
    assert (event.device_id, event.kind, event.code, event.detail["sequence"]) == (account, "checkin", "NULL", "0000")


@pytest.mark.parametrize("transport", ["TCP", "UDP"])
async def test_my_dc09_spt_plain_alarm_for_a_keyed_account_gets_duh(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """The downgrade, sent by an independent transmitter: a plain SOS for an account we hold a key for is never
    ACKed; the transmitter sees DUH and its message stays unsent; we keep one tamper event per try."""
    caplog.set_level(logging.INFO)
    port = receiver.tcp_port if transport == "TCP" else receiver.udp_port
    spt = dc09_spt(ACCOUNT, line=0)
    spt.set_path("main", "primary", "127.0.0.1", port, key=None, type=transport)
    with pytest.raises(Exception, match="None of the paths are working"):  # my-dc09-spt: not delivered
        await asyncio.to_thread(spt.send_msg, "ADM-CID", {"code": 101, "q": 1, "area": 1, "zone": 15})
    got = [kind for kind, _ in answers(caplog)]
    assert got and set(got) == {"DUH"}
    assert receiver.decoded and all(d.error == "plain_keyed" for d in receiver.decoded)
    assert {(e.kind, e.code, e.alarm_type) for e in receiver.events} == {("alarm", "DC09:PLAIN", "tamper")}


async def test_my_dc09_spt_adopts_our_clock_from_a_nak(receiver: Receiver) -> None:
    """Our NAK carries our time; the transmitter reads its clock offset from it and resends, which we ACK.

    my-dc09-spt 0.2.2's ``transfer_msg`` does the resend itself but hands the second answer to ``dc09answer``
    as bytes instead of text, which raises inside it; so the test drives the same two steps with its own
    message (``dc09_msg``) and transport (``TransPathTCP``) classes.
    """
    receiver.skew = 120.0  # our clock runs two minutes ahead of the transmitter's
    event = dc05_msg.dc05event(ACCOUNT, {"code": 101, "q": 1, "zone": 15})
    message = dc09_msg(ACCOUNT, KEYS[16], None, 0, 0)

    def exchange(block: str) -> str:
        connection = TransPathTCP("127.0.0.1", receiver.tcp_port)
        connection.connect()
        try:
            answer = connection.sendAndReceive(block.encode(), 512)
        finally:
            connection.disconnect()
        assert answer is not None
        return answer.decode()

    kind, offset = message.dc09answer(7, await asyncio.to_thread(exchange, message.dc09block(7, "ADM-CID", event)))
    assert kind == "NAK" and offset is not None and abs(offset - 120) < 3
    message.set_offset(offset)
    kind, offset = message.dc09answer(7, await asyncio.to_thread(exchange, message.dc09block(7, "ADM-CID", event)))
    assert kind == "ACK" and offset is not None and abs(offset - 120) < 3  # our ACK carries our time too
    assert [d.error for d in receiver.decoded] == ["timestamp", None]
    assert receiver.decoded[0].events == () and receiver.events[0].code == "CID:1101"


async def test_my_dc09_spt_sees_duh_as_not_delivered(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    """A message under a key we do not hold gets DUH; the transmitter must not count it as delivered."""
    caplog.set_level(logging.INFO)
    spt = dc09_spt(ACCOUNT, line=0)
    spt.set_path("main", "primary", "127.0.0.1", receiver.tcp_port, key=KEYS[32], type="TCP")  # we hold KEYS[16]
    with pytest.raises(Exception, match="None of the paths are working"):
        await asyncio.to_thread(spt.send_msg, "ADM-CID", {"code": 101, "q": 1, "zone": 15})
    assert answers(caplog) == [("DUH", None)]
    assert [d.error for d in receiver.decoded] == ["decrypt"] and receiver.events == []


# -- (b) pysiaalarm's parser ---------------------------------------------------------------------------------------

NOW = 1_718_000_000.0


def pysia_accounts(account: str, key_text: str | None) -> dict[str, SIAAccount]:
    return {account: SIAAccount(account, key_text)}


def vector_cases() -> list[tuple[bytes, dict[str, SIAAccount] | None, dict[str, bytes]]]:
    cases = []
    for vector in VECTORS:
        if vector["frame"][9:].startswith(('"ACK"', '"*ACK"', '"NAK"')):
            continue  # receiver replies: see test_pysiaalarm_also_refuses_receiver_replies
        accounts, keys = None, {}
        if vector["aes_key_hex"]:
            # pysiaalarm reads a key as ASCII text; this vector's key is hex (16 bytes), so its bytes are
            # handed to pysiaalarm's account directly.
            account = SIAAccount("080027E62A64", "0" * 16)
            account.key_b = bytes.fromhex(vector["aes_key_hex"])
            accounts, keys = {"080027E62A64": account}, {"080027E62A64": account.key_b}
        cases.append((vector["frame"].encode(), accounts, keys))
    return cases


def built_cases() -> list[tuple[bytes, dict[str, SIAAccount] | None, dict[str, bytes]]]:
    cases = []
    for size in (None, 16, 24, 32):
        key, accounts = (KEYS[size], pysia_accounts(ACCOUNT, KEY_TEXT[size])) if size else (None, None)
        keys = {ACCOUNT: key} if key else {}
        common: dict[str, Any] = {"key": key, "timestamp": NOW, "receiver": "C0FFD", "prefix": "12"}
        cases += [
            (build_message("ADM-CID", 21, ACCOUNT, "1101 01 015", **common), accounts, keys),
            (build_message("ADM-CID", 22, ACCOUNT, "3602 00 000", extended=["E115000"], **common), accounts, keys),
            (build_message("SIA-DCS", 23, ACCOUNT, "Nri1/MA01", position=(24.51, 117.7), **common), accounts, keys),
            (build_message("SIA-DCS", 24, ACCOUNT, "NYT0002", **common), accounts, keys),
            (build_message("NULL", 25, ACCOUNT, **common), accounts, keys),
        ]
    cases.append((build_message("ADM-CID", 26, ACCOUNT, "1100 01 004", prefix="0"), None, {}))  # no timestamp
    return cases


PARSE_CASES = vector_cases() + built_cases()


def ours(frame: bytes, keys: dict[str, bytes]) -> Decoded:
    """Our decoding with the timestamp window wide open: here the parsing is compared, not the clocks."""
    window = (-1e10, 1e10)
    [decoded] = Dc09Codec(keys.get, window=window).receive_data(frame, NOW)
    check_decoded(decoded, NOW, window)
    return decoded


@pytest.mark.parametrize(("frame", "accounts", "keys"), PARSE_CASES, ids=range(len(PARSE_CASES)))
def test_pysiaalarm_reads_what_we_read(
    frame: bytes, accounts: dict[str, SIAAccount] | None, keys: dict[str, bytes]
) -> None:
    decoded = ours(frame, keys)
    assert decoded.error is None
    theirs = SIAEvent.from_line(frame.decode().strip(), accounts)
    event = decoded.events[0]
    detail = event.detail
    assert theirs.valid_message  # their CRC check agrees
    assert theirs.account == event.device_id
    assert theirs.sequence == detail["sequence"]
    assert theirs.line == f"L{detail['prefix']}"
    if detail["receiver"] is not None:
        assert theirs.receiver == f"R{detail['receiver']}"
    if detail["encrypted"]:  # pysiaalarm keeps the random padding in front of the content
        assert theirs.content is not None and theirs.content.endswith("|" + detail["content"])
    else:
        assert theirs.content == detail["content"]
    if event.device_time is None:
        assert theirs.timestamp is None
    else:
        assert theirs.timestamp is not None and theirs.timestamp.timestamp() == event.device_time  # type: ignore[union-attr]
    if detail["token"] == "ADM-CID":
        assert (theirs.event_qualifier, theirs.event_type, theirs.partition, theirs.ri) == (
            detail["qualifier"],
            detail["event"],
            detail["partition"],
            event.zone,
        )
        assert theirs.x_data == ("".join(f"{k}{v}" for k, v in detail["extended"].items()) or None)
    elif detail["token"] == "SIA-DCS":
        assert f"SIA:{theirs.code}" == event.code
        assert (theirs.ri, theirs.message) == (detail.get("area"), event.zone)  # pysiaalarm: ri = area
        blocks = {x.identifier: x.value for x in theirs.extended_data or []}
        if event.lat is not None:
            assert (float(blocks["Y"]), float(blocks["X"])) == (event.lat, event.lon)
    else:  # NULL: pysiaalarm reports it as an automatic test "RP"
        assert (theirs.code, event.code, event.kind) == ("RP", "NULL", "checkin")


def test_pysiaalarm_also_refuses_receiver_replies() -> None:
    """The ACK and NAK vectors are not device messages: we ignore them, pysiaalarm does not parse them."""
    replies = [v["frame"] for v in VECTORS if v["frame"][9:].startswith(('"ACK"', '"*ACK"', '"NAK"'))]
    assert len(replies) == 4
    for frame in replies:
        assert ours(frame.encode(), {}).error == "reply"
        with pytest.raises(EventFormatError):
            SIAEvent.from_line(frame.strip(), None)


def test_pysiaalarm_agrees_on_a_bad_crc() -> None:
    frame = bytearray(build_message("ADM-CID", 1, ACCOUNT, "1101 01 015"))
    frame[-3] ^= 0x01
    assert ours(bytes(frame), {}).error == "crc"
    theirs = SIAEvent.from_line(bytes(frame).decode().strip(), pysia_accounts(ACCOUNT, None))
    assert not theirs.valid_message and theirs.response is None  # no reply from either


@pytest.mark.parametrize(("offset", "accepted"), [(10, True), (-30, True), (30, False), (-50, False)])
def test_pysiaalarm_agrees_on_the_timestamp_window(offset: int, accepted: bool) -> None:
    """Both use +20 s / -40 s around their clock; pysiaalarm reads the wall clock, hence the margins."""
    now = time.time()
    frame = build_message("SIA-DCS", 31, ACCOUNT, "NMA01", key=KEYS[16], timestamp=now + offset)
    decoded = Dc09Codec({ACCOUNT: KEYS[16]}.get).receive_data(frame, now)[0]
    theirs = SIAEvent.from_line(frame.decode().strip(), pysia_accounts(ACCOUNT, KEY_TEXT[16]))
    assert (decoded.error is None) == accepted
    assert theirs.response == (ResponseType.ACK if accepted else ResponseType.NAK)


def test_where_pysiaalarm_differs() -> None:
    """Known differences, kept visible.

    1. pysiaalarm's own NAK puts L before R ("NAK"0000L0R0A0[]); the captured receivers (Swissdotnet's test
       suite, a Visonic receiver) and we send "NAK"0000R0L0A0[] as the standard writes it.
    2. pysiaalarm's ADM-CID pattern allows one extended block, so it refuses a Contact ID message with a
       position ([X..][Y..]), which we decode.
    3. pysiaalarm does not act on a wrong LEN (it ACKs); we treat it like a bad CRC: not correctly received,
       no reply, the transmitter repeats it.
    """
    captured = {v["frame"][9:26] for v in VECTORS if '"NAK"' in v["frame"]}
    ours_nak = encode_frame(f'"NAK"0000R0L0A0[]_{format_time(NOW)}').decode()
    assert captured == {ours_nak[9:26]} == {'"NAK"0000R0L0A0[]'}
    assert NAKEvent().create_response().decode()[9:26] == '"NAK"0000L0R0A0[]'

    frame = build_message("ADM-CID", 41, ACCOUNT, "1101 01 015", timestamp=NOW, position=(24.51, 117.7))
    assert ours(frame, {}).events[0].lat == 24.51
    with pytest.raises(EventFormatError):
        SIAEvent.from_line(frame.decode().strip(), pysia_accounts(ACCOUNT, None))

    good = build_message("ADM-CID", 42, ACCOUNT, "1101 01 015")
    wrong_length = good[:5] + b"%04X" % (int(good[5:9], 16) + 1) + good[9:]
    assert ours(wrong_length, {}).error == "length"
    theirs = SIAEvent.from_line(wrong_length.decode().strip(), pysia_accounts(ACCOUNT, None))
    assert theirs.response == ResponseType.ACK
