"""An independent DC-09 transmitter: its own process, its own event loop, its own record of ACKs.

    python -m tests.reliability.transmitter --port P --accounts accounts.jsonl --alarms 5000 --acks acks.log

It sends ``--alarms`` distinct ADM-CID SOS alarms (Contact ID ``1101``, zone = the alarm's round), encrypted
with the account's AES key where it has one, over ``--connections`` TCP connections, one frame at a time per
connection like a real transmitter waiting for its ACK, at most ``--rate`` new alarms a second. Alarm ``i``
is account ``i % n`` with sequence number ``i // n + 1``: the pair (account, sequence) is its identity, the
one the receiver's dedup key is built on.

Each ACK (an ``ACK`` or ``*ACK`` echoing the sequence number, decrypted and checked where the alarm was
encrypted) is appended to ``--acks`` as ``account sequence`` and flushed before the next frame is sent.
A frame that got no ACK (connection refused or cut, no reply in ``--timeout`` seconds, NAK or DUH) is sent
again, restamped and repadded as transmitters do, until it is acknowledged. At the end it prints one JSON
object: alarms, ACKs, frames sent, retries, connection failures, seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.dc09 import build_message, decrypt_content
from tests.reliability.accounts import Account, read_accounts

_REPLY = re.compile(rb'\n[0-9A-Fa-f]{8}"(\*?)(ACK|NAK|DUH)"(\d{4})[^\[]*\[([^\r]*)\r')


@dataclass
class Tally:
    acked: int = 0
    sent: int = 0
    retries: int = 0
    refused: int = 0
    negative: int = 0


def acknowledged(reply: bytes, sequence: int, key: bytes | None) -> bool:
    """Whether ``reply`` is the receiver's ACK of this alarm (an encrypted alarm needs an encrypted ACK)."""
    match = _REPLY.search(reply)
    if match is None or match[2] != b"ACK" or int(match[3]) != sequence:
        return False
    if key is None:
        return not match[1]
    if not match[1]:
        return False
    try:
        decrypt_content(key, match[4].decode("ascii"))
    except Exception:
        return False
    return True


async def sender(
    host: str,
    port: int,
    work: asyncio.Queue[int],
    accounts: Sequence[Account],
    log: int,
    wait_s: float,
    tally: Tally,
    pace: list[float],
    rate: float,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        try:
            alarm = work.get_nowait()
        except asyncio.QueueEmpty:
            break
        now = time.monotonic()  # a steady storm: 1/rate between new alarms, no burst after the server was down
        at = max(pace[0], now)
        pace[0] = at + 1 / rate
        if at > now:
            await asyncio.sleep(at - now)
        account = accounts[alarm % len(accounts)]
        sequence = alarm // len(accounts) + 1
        zone = f"{sequence % 1000:03d}"
        attempt = 0
        while True:
            if attempt:
                tally.retries += 1
            attempt += 1
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
                frame = build_message(
                    "ADM-CID", sequence, account.account, f"1101 01 {zone}", key=account.key,
                    timestamp=time.time() if account.key else None,
                )  # fmt: skip
                writer.write(frame)
                tally.sent += 1
                reply = await asyncio.wait_for(reader.readuntil(b"\r"), wait_s)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                tally.refused += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.05)
                continue
            if acknowledged(reply, sequence, account.key):
                os.write(log, f"{account.account} {sequence}\n".encode())
                tally.acked += 1
                break
            tally.negative += 1
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    accounts = read_accounts(args.accounts)
    work: asyncio.Queue[int] = asyncio.Queue()
    for alarm in range(args.alarms):
        work.put_nowait(alarm)
    tally = Tally()
    log = os.open(args.acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    began = time.monotonic()
    pace = [began]
    try:
        await asyncio.gather(
            *(
                sender(args.host, args.port, work, accounts, log, args.timeout, tally, pace, args.rate)
                for _ in range(args.connections)
            )
        )
    finally:
        os.close(log)
    return {
        "alarms": args.alarms,
        "acked": tally.acked,
        "sent": tally.sent,
        "retries": tally.retries,
        "connection_failures": tally.refused,
        "negative_replies": tally.negative,
        "seconds": round(time.monotonic() - began, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="independent DC-09 SOS transmitter (loopback only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--accounts", type=Path, required=True, help="JSON lines: account, key (hex or null)")
    parser.add_argument("--alarms", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=math.inf, help="new alarms per second at most")
    parser.add_argument("--acks", required=True, help="file the ACKs are appended to")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only")
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
