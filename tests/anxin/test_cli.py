"""The ``anxin`` command as an administrator uses it: import, verify, and the data-folder lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from simulators import city
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin


def test_import_reports_broken_rows_keeps_good_ones_and_is_idempotent(tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=1, elders=20, caregivers=6, clinics=1)
    elders = files["elders"].read_text(encoding="utf-8").splitlines()
    header = elders[0].split(",")
    broken = elders[1].split(",")
    broken[header.index("elder_id")] = "e-broken"
    broken[header.index("lat")] = "95"
    files["elders"].write_text("\n".join([*elders, ",".join(broken)]) + "\n", encoding="utf-8")
    data = str(tmp_path / "data")
    args = ["import", "--data", data, "--elders", str(files["elders"]), "--devices", str(files["devices"]),
            "--responders", str(files["responders"])]  # fmt: skip

    first = anxin(*args)
    assert first.returncode == 1  # some rows were refused
    assert f"{files['elders']}:{len(elders) + 1}: lat:" in first.stdout
    assert "elders: 20 added" in first.stdout

    second = anxin(*args)
    assert "elders: 0 added, 0 updated, 20 unchanged" in second.stdout
    db = sqlite3.connect(tmp_path / "data" / "anxin.sqlite3")
    try:
        imports = db.execute("SELECT count(*) FROM journal WHERE kind = 'registry.imported'").fetchone()[0]
    finally:
        db.close()
    assert imports == 1  # the second import changed nothing, so it journaled nothing


def test_verify_finds_a_tampered_entry(tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=1, elders=5, caregivers=2, clinics=1)
    data = tmp_path / "data"
    assert anxin("import", "--data", str(data), "--elders", str(files["elders"]),
                 "--responders", str(files["responders"])).returncode == 0  # fmt: skip
    assert anxin("import", "--data", str(data), "--devices", str(files["devices"])).returncode == 0
    ok = anxin("verify", "--data", str(data))
    assert ok.returncode == 0 and "journal ok: 2 entries" in ok.stdout

    db = sqlite3.connect(data / "anxin.sqlite3")
    try:
        try:
            db.execute("UPDATE journal SET actor = 'someone-else' WHERE seq = 1")
            raise AssertionError("the journal accepted an UPDATE")
        except sqlite3.IntegrityError as refused:
            assert "append-only" in str(refused)
        db.execute("DROP TRIGGER journal_no_update")  # what a determined intruder would do
        db.execute("UPDATE journal SET actor = 'someone-else' WHERE seq = 1")
        db.commit()
    finally:
        db.close()
    broken = anxin("verify", "--data", str(data))
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout and "seq 1" in broken.stdout


def test_import_without_a_key_refuses_while_the_server_holds_the_folder(tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=1, elders=3, caregivers=2, clinics=1)
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        refused = anxin("import", "--data", str(data), "--responders", str(files["responders"]),
                        env={"ANXIN_API_KEY": ""})  # fmt: skip
        assert refused.returncode == 2
        assert f"a server ({server.url}) holds the data folder: set ANXIN_API_KEY" in refused.stderr
        assert anxin("verify", "--data", str(data)).returncode == 0  # reading is fine meanwhile
    finally:
        server.stop()


def test_import_while_the_server_runs_goes_through_its_api(tmp_path: Path) -> None:
    """With the server holding the folder, ``anxin import`` sends the files to it (the address it wrote in the
    folder, an import key in ANXIN_API_KEY) and prints the same report; the running server knows the records at
    once, and the import is on its record."""
    files = city.generate(tmp_path / "city", seed=1, elders=20, caregivers=6, clinics=1)
    elders = files["elders"].read_text(encoding="utf-8").splitlines()
    header = elders[0].split(",")
    again = elders[1].split(",")
    again[header.index("elder_id")] = "e-again"  # the first elder registered a second time
    files["elders"].write_text("\n".join([*elders, ",".join(again)]) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        admin = {"Authorization": f"Bearer {_login(server)}"}
        account = {"username": "registrar", "name": "registrar", "role": "service", "grants": ["import"]}
        assert httpx.post(f"{server.url}/api/accounts", json=account, headers=admin).status_code == 201
        issued = httpx.post(f"{server.url}/api/accounts/registrar/keys", json={"label": "cli"}, headers=admin)
        key = issued.json()["key"]
        args = ["import", "--data", str(data), *(f"--{kind}={path}" for kind, path in files.items())]

        first = anxin(*args, env={"ANXIN_API_KEY": key})
        assert first.returncode == 1, first.stderr  # one row refused
        assert "elders: 20 added" in first.stdout and "responders: 7 added" in first.stdout
        first_id = elders[1].split(",")[0]
        said = f"{files['elders']}:{len(elders) + 1}: possible duplicate: probably the same person as line 2"
        assert f"{said} (elder {first_id}: same name and birth date" in first.stdout
        second = anxin(*args, env={"ANXIN_API_KEY": key})
        assert "elders: 0 added, 0 updated, 20 unchanged" in second.stdout

        seen = httpx.get(f"{server.url}/api/elders/{first_id}", headers=admin)
        assert seen.status_code == 200 and seen.json()["devices"]  # the running server has them
        journal = httpx.get(f"{server.url}/api/journal", headers=admin).json()["entries"]
        imported = [e for e in journal if e["kind"] == "registry.imported"]
        assert len(imported) == 1 and imported[0]["actor"] == "service:registrar"

        wrong = anxin(*args, env={"ANXIN_API_KEY": "axk_wrong"})
        assert wrong.returncode == 2 and "refused the import (401" in wrong.stderr
        elsewhere = anxin(*args, "--server", "http://127.0.0.1:9", env={"ANXIN_API_KEY": key})
        assert elsewhere.returncode == 2 and "cannot reach the server at http://127.0.0.1:9" in elsewhere.stderr
    finally:
        server.stop()


def _login(server: ServerProcess) -> str:
    answer = httpx.post(f"{server.url}/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
    token: str = answer.json()["access_token"]
    return token
