"""The DC-09 accounts a case registered, as JSON lines the transmitter process reads (account, key in hex)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    key: bytes | None


def write_accounts(path: Path, accounts: list[Account]) -> None:
    lines = [json.dumps({"account": a.account, "key": a.key.hex() if a.key else None}) for a in accounts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_accounts(path: Path) -> list[Account]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [Account(r["account"], bytes.fromhex(r["key"]) if r["key"] else None) for r in records]
