"""``anxin backup``, ``anxin verify --backup`` and ``anxin restore`` against a real server taking real alarms.

One server per module runs on an imported city while pendants send SIA DC-09 SOS frames and link tests over TCP
(a thread, opening incidents all along); ``anxin backup`` runs as a subprocess in the middle of that traffic. The
archive is then verified, restored into a new folder, served from (and the server killed with SIGKILL), tampered
with, and restored where it must be refused; a target that cannot be written gets a clear message and no file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import socket
import sqlite3
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatch.anchor import create_key
from gateway.dc09 import build_message
from simulators import city
from tests.conftest import free_port
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin, import_city

pytestmark = pytest.mark.process


@dataclass
class Pendants:
    """The city's DC-09 pendants pressing SOS and polling, over TCP, from a thread, until stopped."""

    port: int
    devices: list[tuple[str, bytes | None]]
    acked: int = 0
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Pendants:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def wait_for(self, acked: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while self.acked < acked:
            assert time.monotonic() < deadline, f"only {self.acked} of {acked} frames acknowledged"
            time.sleep(0.05)

    def _run(self) -> None:
        sequence = 0
        while not self._stop.is_set():
            for account, key in self.devices:
                if self._stop.is_set():
                    return
                sequence = sequence % 9999 + 1
                sos = build_message("ADM-CID", sequence, account, "1101 01 001", key=key, timestamp=time.time())
                poll = build_message("NULL", sequence, account, key=key, timestamp=time.time())
                for frame in (sos, poll):
                    self.sent += 1
                    if b"ACK" in self._send(frame):
                        self.acked += 1

    def _send(self, frame: bytes) -> bytes:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=10) as link:
            link.sendall(frame)
            return link.recv(4096)
        return b""


def dc09_devices(devices: Path) -> list[tuple[str, bytes | None]]:
    with devices.open(encoding="utf-8") as handle:
        return [
            (row["device_id"], bytes.fromhex(row["aes_key"]) if row["aes_key"] else None)
            for row in csv.DictReader(handle)
            if row["protocol"] == "sia-dc09"
        ]


@dataclass
class Made:
    """The module's server, its data folder, and the archive made while its pendants were sending."""

    data: Path
    server: ServerProcess
    archive: Path
    manifest: dict[str, Any]
    root: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    root = tmp_path_factory.mktemp("backup")
    files = city.generate(root / "city", seed=11, elders=60, caregivers=8, clinics=1)
    data = import_city(root / "data", files)
    port = free_port()
    server = ServerProcess(data, ANXIN_DC09_PORT=str(port)).start()
    pendants = Pendants(port, dc09_devices(files["devices"])).start()
    try:
        pendants.wait_for(40)  # incidents open and alarms attach while the backup runs
        before = pendants.acked
        done = anxin("backup", "--data", str(data), "--out", str(root))
        assert done.returncode == 0, done.stdout + done.stderr
        pendants.wait_for(before + 40)  # and go on after it
    finally:
        pendants.stop()
    archive = next(root.glob("anxin-backup-*.tar"))
    yield Made(data, server, archive, read_manifest(archive), root)
    server.stop()


def read_manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        manifest: dict[str, Any] = json.load(handle)
        return manifest


def chain(db: Path, upto: int | None = None) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, hash FROM journal WHERE seq <= ? ORDER BY seq", (upto or 1 << 62,))
        return [(int(seq), str(digest)) for seq, digest in rows]
    finally:
        conn.close()


def opened_incidents(db: Path, upto: int) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT json_extract(payload, '$.incident_id') FROM journal WHERE kind = 'incident.opened' AND seq <= ?",
            (upto,),
        ).fetchall()
        return {str(row[0]) for row in rows}
    finally:
        conn.close()


def test_the_archive_made_under_traffic_lists_its_files_and_the_journal_head(made: Made) -> None:
    manifest = made.manifest
    head = manifest["journal"]["head_seq"]
    assert manifest["format"] == "anxin-backup" and manifest["version"] == 1
    assert {f["name"]: f["kind"] for f in manifest["files"]} == {
        "anxin.sqlite3": "sqlite",
        "chain-key.checkpoints": "checkpoints",
    }  # the key only with --with-key
    assert opened_incidents(made.data / "anxin.sqlite3", head), "the backup was taken with incidents on record"
    assert chain(made.data / "anxin.sqlite3")[-1][0] > head, "the server went on writing after the backup"
    assert chain(made.data / "anxin.sqlite3", head)[-1] == (head, manifest["journal"]["head_hash"])
    assert manifest["anchor"]["checked"] and 0 < manifest["anchor"]["last_seq"] <= head
    assert os.stat(made.archive).st_mode & 0o777 == 0o600  # the registry holds health data
    assert not [p for p in made.root.iterdir() if p.name.startswith(".")], "no partial or staging file is left"


def test_verify_accepts_the_archive_with_the_servers_key(made: Made) -> None:
    done = anxin("verify", "--backup", str(made.archive), "--data", str(made.data))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "journal ok:" in done.stdout and "anchor ok:" in done.stdout


def test_restore_serve_and_the_record_holds_everything_up_to_the_manifests_head(made: Made, tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    key = Path(f"{made.data}.chain-key")
    done = anxin("restore", str(made.archive), "--data", str(restored), "--key", str(key))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"start it with: anxin serve --data {restored}" in done.stdout
    assert anxin("verify", "--data", str(restored)).returncode == 0
    head, head_hash = made.manifest["journal"]["head_seq"], made.manifest["journal"]["head_hash"]
    original = made.data / "anxin.sqlite3"
    server = ServerProcess(restored).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            token = client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            incidents = client.get("/api/incidents", params={"limit": 5000}, headers=headers).json()["incidents"]
            elders = client.get("/api/elders", headers=headers).json()
    finally:
        server.kill()
    assert {i["incident_id"] for i in incidents} == opened_incidents(original, head)
    assert elders["total"] == 60
    after = chain(restored / "anxin.sqlite3")
    assert after[:head] == chain(original, head)  # the same entries, the same hashes, up to the head
    assert after[head - 1] == (head, head_hash)


def tampered(made: Made, where: Path, *, rehash_manifest: bool) -> tuple[Path, int]:
    """A copy of the archive with one journal entry's payload changed (its hash left as it was); the manifest's
    SHA-256 recomputed (someone who knows the format) or not; and the seq changed."""
    unpacked = where / "unpacked"
    unpacked.mkdir()
    with tarfile.open(made.archive) as tar:
        tar.extractall(unpacked, filter="data")
    conn = sqlite3.connect(unpacked / "anxin.sqlite3")
    seq = int(conn.execute("SELECT min(seq) FROM journal WHERE kind = 'incident.opened'").fetchone()[0])
    conn.executescript("DROP TRIGGER journal_no_update;")
    conn.execute("UPDATE journal SET payload = replace(payload, 'sos', 'fall') WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()
    manifest = json.loads((unpacked / "manifest.json").read_text())
    if rehash_manifest:
        body = (unpacked / "anxin.sqlite3").read_bytes()
        for entry in manifest["files"]:
            if entry["name"] == "anxin.sqlite3":
                entry["size"] = len(body)
                entry["sha256"] = hashlib.sha256(body).hexdigest()
    target = where / "tampered.tar"
    with tarfile.open(target, "w") as tar:
        raw = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
        for entry in manifest["files"]:
            tar.add(unpacked / entry["name"], arcname=entry["name"])
    return target, seq


def test_a_tampered_archive_is_refused_by_restore_and_verify_names_the_first_bad_entry(
    made: Made, tmp_path: Path
) -> None:
    archive, seq = tampered(made, tmp_path, rehash_manifest=True)
    checked = anxin("verify", "--backup", str(archive), "--data", str(made.data))
    assert checked.returncode == 1
    assert f"journal BROKEN: journal chain broken at seq {seq}: content does not match its hash" in checked.stdout
    restored = tmp_path / "restored"
    done = anxin("restore", str(archive), "--data", str(restored), "--key", f"{made.data}.chain-key")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"seq {seq}" in done.stderr and "nothing was restored" in done.stderr
    assert not (restored / "anxin.sqlite3").exists()
    assert not Path(f"{restored}.chain-key").exists()


def test_a_tampered_archive_restored_with_force_moves_nothing_aside(made: Made, tmp_path: Path) -> None:
    """The folder (say the live one, its server stopped) and its key stay where they were when the archive does
    not check: moving them aside first left an empty folder for the next ``anxin serve`` to start afresh in."""
    archive, seq = tampered(made, tmp_path, rehash_manifest=True)
    live = tmp_path / "live"
    live.mkdir()
    (live / "notes.txt").write_text("the folder's own\n")
    key = Path(f"{live}.chain-key")
    key.write_text(os.urandom(32).hex() + "\n")  # another key: in the way, to be moved aside by --force
    done = anxin("restore", str(archive), "--data", str(live), "--force", "--key", f"{made.data}.chain-key")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"seq {seq}" in done.stderr and "nothing was restored" in done.stderr
    assert sorted(p.name for p in live.iterdir() if p.name != "anxin.lock") == ["notes.txt"]  # the lock it held
    assert key.is_file() and not list(tmp_path.glob("*before-restore*"))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder is left"
    forced = anxin("restore", str(made.archive), "--data", str(live), "--force", "--key", f"{made.data}.chain-key")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert (next(tmp_path.glob("live.before-restore-*")) / "notes.txt").read_text() == "the folder's own\n"
    assert next(tmp_path.glob("live.chain-key.before-restore-*")).is_file()
    assert anxin("verify", "--data", str(live)).returncode == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder is left"


def test_an_archive_from_elsewhere_places_nothing_but_databases(made: Made, tmp_path: Path) -> None:
    """A manifest may call anything a database: a lock file (placed over the one restore holds, a server could
    start meanwhile), ``server.url`` (where ``anxin export`` sends its key) or a WAL are refused by name, and a
    file that is not SQLite by its first bytes; the rest of the archive is sound and checks."""
    with tarfile.open(made.archive) as tar:
        members = {name: tar.extractfile(name).read() for name in tar.getnames()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    planted = {"anxin.lock": b"SQLite format 3\x00 a lock", "server.url": b"http://elsewhere.example\n",
               "anxin.sqlite3-wal": b"SQLite format 3\x00", "extra.sqlite3": b"not a database at all"}  # fmt: skip
    for name, body in planted.items():
        manifest["files"].append({"name": name, "kind": "sqlite", "size": len(body),
                                  "sha256": hashlib.sha256(body).hexdigest()})  # fmt: skip
    crafted = tmp_path / "crafted.tar"
    with tarfile.open(crafted, "w") as tar:
        for name, body in {"manifest.json": json.dumps(manifest).encode(), **members, **planted}.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    key = f"{made.data}.chain-key"
    checked = anxin("verify", "--backup", str(crafted), "--key", key)
    assert checked.returncode == 1, checked.stdout
    for name in planted:
        assert f"backup BROKEN: {name} is listed as a database, but anxin backup never takes it" in checked.stdout
    restored = tmp_path / "restored"
    done = anxin("restore", str(crafted), "--data", str(restored), "--key", key)
    assert done.returncode == 1 and "nothing was restored" in done.stderr, done.stdout + done.stderr
    placed = [p.name for p in restored.iterdir()] if restored.exists() else []
    assert placed in ([], ["anxin.lock"])  # at most restore's own lock, empty or its pid: nothing was placed
    assert not placed or not (restored / "anxin.lock").read_bytes().startswith(b"SQLite")


def test_an_archive_changed_behind_its_manifest_says_which_file(made: Made, tmp_path: Path) -> None:
    archive, seq = tampered(made, tmp_path, rehash_manifest=False)
    checked = anxin("verify", "--backup", str(archive), "--data", str(made.data))
    assert checked.returncode == 1
    assert "backup BROKEN: anxin.sqlite3's SHA-256" in checked.stdout
    assert f"chain broken at seq {seq}" in checked.stdout


def test_restore_refuses_a_non_empty_folder_and_a_folder_a_server_holds(made: Made, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("someone's\n")
    refused = anxin("restore", str(made.archive), "--data", str(busy))
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    held = anxin("restore", str(made.archive), "--data", str(made.data), "--force")
    assert held.returncode == 2 and "a server is running" in held.stderr
    forced = anxin("restore", str(made.archive), "--data", str(busy), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    aside = next(tmp_path.glob("busy.before-restore-*"))
    assert (aside / "notes.txt").read_text() == "someone's\n"  # moved aside, never deleted
    assert (busy / "anxin.sqlite3").is_file()


def test_with_key_the_archive_carries_it_and_restores_anchored(made: Made, tmp_path: Path) -> None:
    done = anxin("backup", "--data", str(made.data), "--out", str(tmp_path / "keyed.tar"), "--with-key")
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(tmp_path / "keyed.tar") as tar:
        assert tar.getmember("chain-key").mode == 0o600
    own = anxin("verify", "--backup", str(tmp_path / "keyed.tar"), "--data", str(made.data))
    assert own.returncode == 0 and "carried in the archive" not in own.stdout  # the server's key, where it is
    (elsewhere := tmp_path / "elsewhere").mkdir()  # a machine replaced whole: no key but the archive's
    carried = anxin("verify", "--backup", str(tmp_path / "keyed.tar"), "--data", str(elsewhere))
    assert carried.returncode == 0 and "checked with the key carried in the archive" in carried.stdout
    assert "--key FILE" in carried.stdout  # the way to the server's key
    (other := tmp_path / "other").mkdir()  # another server's key where the settings name one: it is the judge
    create_key(Path(f"{other}.chain-key"))
    forged = anxin("verify", "--backup", str(tmp_path / "keyed.tar"), "--data", str(other))
    assert forged.returncode != 0 and "carried in the archive" not in forged.stdout, forged.stdout
    server = anxin("verify", "--backup", str(tmp_path / "keyed.tar"), "--key", f"{made.data}.chain-key")
    assert server.returncode == 0 and "carried in the archive" not in server.stdout
    restored = tmp_path / "restored"
    assert anxin("restore", str(tmp_path / "keyed.tar"), "--data", str(restored)).returncode == 0
    assert os.stat(f"{restored}.chain-key").st_mode & 0o777 == 0o600
    verified = anxin("verify", "--data", str(restored))
    assert verified.returncode == 0 and "anchor ok:" in verified.stdout


@contextlib.contextmanager
def mounted(where: Path, options: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs for the unwritable target (needs root): {done.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.parametrize(("options", "reason"), [("size=64k", "No space left on device"),
                                                 ("ro", "Read-only file system")])  # fmt: skip
def test_a_target_that_cannot_be_written_gets_a_clear_message_and_no_file(
    made: Made, tmp_path: Path, options: str, reason: str
) -> None:
    with mounted(tmp_path / "target", options) as target:
        done = anxin("backup", "--data", str(made.data), "--out", str(target / "full.tar"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"cannot write the backup {target / 'full.tar'}: " in done.stderr and reason in done.stderr
        assert "Traceback" not in done.stderr
        assert list(target.iterdir()) == []  # no half file, no staging copy


def test_a_missing_folder_named_with_a_slash_is_refused_not_written_as_a_file(made: Made, tmp_path: Path) -> None:
    missing = tmp_path / "backup" / "anxin"
    done = anxin("backup", "--data", str(made.data), "--out", f"{missing}/")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{missing}/: no such folder" in done.stderr and "Traceback" not in done.stderr
    assert not missing.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kept", [-1, 700, 0])
def test_an_archive_cut_short_is_one_finding_per_file_never_a_traceback(made: Made, tmp_path: Path, kept: int) -> None:
    cut = tmp_path / "cut.tar"
    whole = made.archive.read_bytes()
    cut.write_bytes(whole[: len(whole) // 2 if kept < 0 else kept])  # -1: cut in the middle of the journal
    checked = anxin("verify", "--backup", str(cut), "--key", f"{made.data}.chain-key")
    restored = anxin("restore", str(cut), "--data", str(tmp_path / "restored"), "--key", f"{made.data}.chain-key")
    for done in (checked, restored):
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode in (1, 2) and not (tmp_path / "restored" / "anxin.sqlite3").exists()
    if kept < 0:  # the manifest whole: each file the cut reaches is a finding, exit 1
        assert checked.returncode == 1 and "anxin.sqlite3 cannot be read: the archive is damaged or cut short" in (
            checked.stdout
        )
    elif kept:
        assert checked.returncode == 2 and "manifest.json cannot be read: the archive is damaged" in checked.stderr
    else:
        assert checked.stderr.strip() == f"anxin: {cut} is not a backup archive: not a tar file (plain or compressed)"


def test_a_forced_restore_of_a_bad_archive_moves_nothing_aside(made: Made, tmp_path: Path) -> None:
    key = Path(f"{made.data}.chain-key")
    restored = tmp_path / "restored"
    assert anxin("restore", str(made.archive), "--data", str(restored), "--key", str(key)).returncode == 0
    changed = bytearray(made.archive.read_bytes())
    changed[len(changed) // 2] ^= 0xFF  # inside the database's pages
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(changed))
    before = sorted(path.name for path in tmp_path.iterdir())
    held = {path.name: path.read_bytes() for path in restored.glob("*.sqlite3")}
    done = anxin("restore", str(bad), "--data", str(restored), "--key", str(key), "--force")
    assert done.returncode == 1 and "nothing was restored" in done.stderr, done.stdout + done.stderr
    assert "moved" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no folder aside, no staging left
    assert {path.name: path.read_bytes() for path in restored.glob("*.sqlite3")} == held


def test_a_cluster_is_backed_up_with_postgresqls_tools(tmp_path: Path) -> None:
    done = anxin("backup", "--data", str(tmp_path), "--journal", "postgresql://anxin@127.0.0.1:1/anxin")
    assert done.returncode == 2
    assert "pg_dump" in done.stderr and "pg_basebackup" in done.stderr


def test_no_journal_no_backup(tmp_path: Path) -> None:
    done = anxin("backup", "--data", str(tmp_path), "--out", str(tmp_path))
    assert done.returncode == 2 and "no journal" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_a_key_the_data_is_restored_and_the_server_anchors_anew(made: Made, tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    done = anxin("restore", str(made.archive), "--data", str(restored))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain key: none" in done.stdout and "makes a new key" in done.stdout
    assert not Path(f"{restored}.chain-key.checkpoints").exists()  # none without their key (dispatch.anchor rule 4)
    assert anxin("verify", "--data", str(restored)).returncode == 2  # the chain holds; nothing else to check
    assert anxin("verify", "--data", str(restored), "--chain-only").returncode == 0


def test_restore_refuses_another_key_and_a_checkpoints_file_in_the_way(made: Made, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    other.write_text(os.urandom(32).hex() + "\n")
    other.chmod(0o600)
    refused = anxin("restore", str(made.archive), "--data", str(tmp_path / "a"), "--key", str(other))
    assert refused.returncode == 2 and "is not the key this backup was made with" in refused.stderr
    in_the_way = Path(f"{tmp_path / 'b'}.chain-key.checkpoints")
    in_the_way.write_text("what another journal held\n")
    key = f"{made.data}.chain-key"
    refused = anxin("restore", str(made.archive), "--data", str(tmp_path / "b"), "--key", key)
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert in_the_way.read_text() == "what another journal held\n"
    forced = anxin("restore", str(made.archive), "--data", str(tmp_path / "b"), "--key", key, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert next(tmp_path.glob("b.chain-key.checkpoints.before-restore-*")).read_text() == "what another journal held\n"
    assert anxin("verify", "--data", str(tmp_path / "b")).returncode == 0


def test_a_copy_that_does_not_verify_is_not_kept(made: Made, tmp_path: Path) -> None:
    """A data folder whose journal was changed behind the server's back: the backup finds it and keeps nothing."""
    broken = tmp_path / "broken"
    assert anxin("restore", str(made.archive), "--data", str(broken)).returncode == 0
    conn = sqlite3.connect(broken / "anxin.sqlite3")
    conn.executescript("DROP TRIGGER journal_no_update; UPDATE journal SET actor = 'someone' WHERE seq = 3;")
    conn.close()
    out = tmp_path / "out"
    out.mkdir()
    done = anxin("backup", "--data", str(broken), "--out", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the copy does not verify, so nothing was kept" in done.stderr
    assert "journal BROKEN: journal chain broken at seq 3: content does not match its hash" in done.stderr
    assert list(out.iterdir()) == []
    again = anxin("backup", "--data", str(made.data), "--out", str(made.archive))
    assert again.returncode == 2 and "never overwritten" in again.stderr
