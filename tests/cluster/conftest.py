"""Real PostgreSQL and Redis servers for the cluster's tests, started in a scratch folder (anxin.scratch).

One server of each per test session; each test gets its own database and an empty Redis. Without the Debian
packages the tests skip, saying so, and fail instead under CI=true (where .ci/run installs them).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from anxin import scratch

_databases = itertools.count(1)


def _require() -> None:
    absent = scratch.missing()
    if absent:
        message = f"{' and '.join(absent)} not installed: the cluster's tests need the real servers"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[scratch.Scratch]:
    _require()
    with scratch.postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[scratch.Scratch]:
    _require()
    with scratch.redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
async def pg_url(pg_server: scratch.Scratch) -> AsyncIterator[str]:
    """A fresh database of the session's server."""
    name = f"t{os.getpid()}_{next(_databases)}"
    admin = await asyncpg.connect(pg_server.url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield pg_server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
async def redis_url(redis_server: scratch.Scratch) -> AsyncIterator[str]:
    """The session's Redis, emptied."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url


def data_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder
