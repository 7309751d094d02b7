"""The ``anxin`` command as an administrator uses it: import, verify, and the data-folder lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simulators import city
from tests.process import ServerProcess, anxin


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


def test_import_refuses_while_the_server_holds_the_folder(tmp_path: Path) -> None:
    files = city.generate(tmp_path / "city", seed=1, elders=3, caregivers=2, clinics=1)
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        refused = anxin("import", "--data", str(data), "--responders", str(files["responders"]))
        assert refused.returncode == 2
        assert "another anxin process is using" in refused.stderr
        assert anxin("verify", "--data", str(data)).returncode == 0  # reading is fine meanwhile
    finally:
        server.stop()
