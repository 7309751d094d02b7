"""What ``anxin backup`` stages beside its target while it copies: nobody but its owner can read it.

The staged database is the whole registry (names, phones, addresses, health flags): in a shared backup folder a
staging folder of the umask's 0755 holding SQLite's 0644 copy was readable by every local user for the copy's
and the check's whole time, before the archive (0600) was written. The archive's own writing is watched, and
the staging folder looked at as it is at that moment, on a real data folder (the known November journal).
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest

from anxin import archive, backup
from dispatch.clock import ManualClock
from tests.dispatch.test_govexport import open_city, write_november


def test_the_staged_copy_is_its_owners_alone_and_is_gone_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def november() -> Any:
        clock = ManualClock()
        settings, core = await open_city(tmp_path / "data", clock)
        try:
            await write_november(core, clock)
        finally:
            await core.close()
        return settings

    settings = asyncio.run(november())
    seen: dict[str, int] = {}
    write = archive.write

    def watched(target: Path, manifest: dict[str, Any], folder: Path) -> None:
        seen["folder"] = stat.S_IMODE(folder.stat().st_mode)
        seen["database"] = stat.S_IMODE((folder / backup.JOURNAL_DB).stat().st_mode)
        write(target, manifest, folder)

    monkeypatch.setattr(archive, "write", watched)
    out = tmp_path / "backups"
    out.mkdir()
    target = out / "nov.tar"
    _, report = backup.make(settings, target, with_key=False, clock=ManualClock())
    assert not report.broken
    assert seen["folder"] == 0o700, oct(seen["folder"])
    assert seen["database"] & 0o077 == 0, oct(seen["database"])  # behind a 0700 folder, and private itself
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [path.name for path in out.iterdir()] == ["nov.tar"]  # no staging folder, no partial file left
