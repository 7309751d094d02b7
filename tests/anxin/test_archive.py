"""The backup archive read back when it is cut short (a copy interrupted, a disk that filled up): every reader
says so in one sentence (a manifest that cannot be read: an ArchiveError, the command's one line and exit 2; a
file the cut reaches: that file's finding, exit 1), leaves no half file, and never raises tarfile's own errors at
the person on call."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from anxin import archive


def packed(tmp_path: Path, size: int = 3_000_000) -> Path:
    staging = tmp_path / "staging"
    staging.mkdir()
    body = hashlib.sha256(b"seed").digest() * (size // 32)  # bytes that do not compress away
    (staging / "anxin.sqlite3").write_bytes(body)
    found = archive.digest(staging / "anxin.sqlite3")
    manifest = {
        "format": archive.FORMAT,
        "version": archive.VERSION,
        "created_ts": 0,
        "files": [{"name": found.name, "kind": "sqlite", "size": found.size, "sha256": found.sha256}],
    }
    target = tmp_path / "whole.tar"
    archive.write(target, manifest, staging)
    return target


def cut(whole: Path, keep: int) -> Path:
    short = whole.with_name(f"cut-{keep}.tar")
    short.write_bytes(whole.read_bytes()[:keep])
    return short


def test_a_whole_archive_reads_back_without_problems(tmp_path: Path) -> None:
    whole = packed(tmp_path)
    assert archive.check(whole) == []
    into = tmp_path / "into"
    into.mkdir()
    assert archive.unpack(whole, into)[1] == []
    assert (into / "anxin.sqlite3").stat().st_size == 3_000_000 // 32 * 32


@pytest.mark.parametrize("keep", [700, 1_500_000, 2_999_000])
def test_an_archive_cut_short_says_so_in_a_sentence_and_unpacks_no_half_file(tmp_path: Path, keep: int) -> None:
    """Cut in the manifest, inside the journal, a little before its end: tarfile's ReadError was a traceback from
    ``anxin verify --backup`` and ``anxin restore``. A manifest that cannot be read refuses the archive in one
    line; a file the cut reaches is that file's finding, and no part of it is left to be checked or placed."""
    short = cut(packed(tmp_path), keep)
    into = tmp_path / "into"
    into.mkdir()
    if keep == 700:  # inside the manifest, the archive's first member
        with pytest.raises(archive.ArchiveError, match=r"manifest\.json cannot be read: the archive is damaged"):
            archive.check(short)
        with pytest.raises(archive.ArchiveError, match=r"manifest\.json cannot be read: the archive is damaged"):
            archive.unpack(short, into)
    else:
        finding = "anxin.sqlite3 cannot be read: the archive is damaged or cut short"
        assert [p for p in archive.check(short) if finding in p]
        assert [p for p in archive.unpack(short, into)[1] if finding in p]
    assert list(into.iterdir()) == []
