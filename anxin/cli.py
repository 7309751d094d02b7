"""The ``anxin`` command: serve, import, verify, backup, restore, coverage, export, demo, drill.

Settings come from the flags, then ``ANXIN_*`` environment variables, then ``--config FILE`` (TOML). The
device port flags (``--dc09-port`` ...) come from the gateway's protocol registry, one per protocol.

Start-up errors are one line on stderr naming the problem and the setting, and exit code 2, never a traceback:
a bad setting or settings file, a data folder that is a file or cannot be written (checked by writing, which
fails for root too on a read-only mount), a port in use (the HTTP port is bound here, before the core opens;
a device port when its listener starts). The console's address is printed once the server is listening.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sqlite3
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import redis.asyncio as aioredis
import uvicorn
import uvloop
from fastapi import FastAPI
from pydantic import ValidationError

from anxin import backup as backup_command
from anxin import coverage as coverage_command
from anxin import export as export_command
from anxin import restore as restore_command
from anxin.logs import configure as configure_logging
from anxin.server import console_url, make_server
from anxin.verdict import print_verdict
from dispatch.anchor import Anchor, key_file, verify_record
from dispatch.clock import SystemClock
from dispatch.cluster import Lease
from dispatch.core import DataLock, open_registry
from dispatch.entries import RegistryImported
from dispatch.errors import AnxinError, ChainBroken, ConfigError, InvalidInput
from dispatch.importer import ImportReport, import_files
from dispatch.journal import SqliteJournal, read_only, verify_chain
from dispatch.pgjournal import PgJournal
from dispatch.pgjournal import read_only as pg_read_only
from dispatch.pgstore import PgRegistry
from dispatch.services import catalogue
from dispatch.settings import Settings
from gateway.registry import protocols

T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("text")  # until a command's settings say otherwise (serve: JSON, anxin.logs rule 1)
    try:
        code: int = args.func(args)
    except AnxinError as exc:
        print(f"anxin: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"anxin: {bad_setting(exc, args)}", file=sys.stderr)
        return 2
    except tomllib.TOMLDecodeError as exc:
        print(f"anxin: settings file {_config_file(args)} is not valid TOML: {exc}", file=sys.stderr)
        return 2
    return code


def bad_setting(exc: ValidationError, args: argparse.Namespace) -> str:
    """The first refused setting, on one line: its name, why, and where settings come from."""
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "settings"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    source = f"settings file {_config_file(args)}, " if _config_file(args) else ""
    return f"bad setting {name}: {first['msg']}{more}; set it in the {source}ANXIN_{name.upper()} or the command line"


def _config_file(args: argparse.Namespace) -> str | None:
    given = getattr(args, "config", None) or os.environ.get("ANXIN_CONFIG")
    return str(given) if given else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anxin", description="Anxin emergency call and dispatch server")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (ANXIN_HOST, default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="HTTP port (ANXIN_HTTP_PORT, default 8000)")
    _cluster_options(serve)
    _device_ports(serve)
    serve.set_defaults(func=cmd_serve)

    imp = sub.add_parser("import", help="load elders, devices and responders from CSV files")
    _common(imp)
    imp.add_argument("--elders", type=Path)
    imp.add_argument("--devices", type=Path)
    imp.add_argument("--responders", type=Path)
    imp.add_argument("--server", metavar="URL",
                     help="send the files to this running server (default, when a server holds the data folder: the "
                     "address it wrote there); the key is ANXIN_API_KEY")  # fmt: skip
    _cluster_options(imp)
    imp.set_defaults(func=cmd_import)

    verify = sub.add_parser(
        "verify",
        help="check the journal's hash chain and its signed checkpoints",
        description="Check the journal's hash chain, and the checkpoints signed with the chain key against it "
        "(docs/security.md). Exit 0: all checked and sound; 1: something is wrong (each finding is printed, with "
        "its seq); 2: not everything could be checked (no key or no checkpoints where the settings say).",
    )
    _common(verify)
    verify.add_argument(
        "--chain-only",
        action="store_true",
        help="check the hash chain alone (exit 0 if it holds, whether or not a key and checkpoints are there)",
    )
    verify.add_argument("--journal", dest="journal_url", metavar="postgresql://USER@HOST:PORT/DB",
                        help="check a cluster's shared service record (the chain; ANXIN_JOURNAL_URL)")  # fmt: skip
    verify.add_argument("--backup", type=Path, metavar="FILE",
                        help="check an archive of `anxin backup` instead (docs/backup.md)")  # fmt: skip
    verify.add_argument("--key", type=Path, help="with --backup: the chain key to check it with")
    verify.set_defaults(func=cmd_verify)
    backup_command.add_parser(sub).set_defaults(func=cmd_backup)
    restore_command.add_parser(sub).set_defaults(func=cmd_restore)

    coverage_command.add_parser(sub).set_defaults(func=cmd_coverage)
    export_command.add_parser(sub).set_defaults(func=cmd_export)

    demo = sub.add_parser("demo", help="seed a demo city and run the server with simulated traffic")
    _common(demo)
    demo.add_argument("--host")
    demo.add_argument("--http-port", type=int)
    _device_ports(demo)
    demo.add_argument("--alarms-per-min", type=float, default=6.0)
    demo.set_defaults(func=cmd_demo)
    cluster = sub.add_parser(
        "cluster",
        help="run a cluster on this machine: scratch PostgreSQL and Redis, several nodes, the demo city",
        description="Start PostgreSQL and Redis in DATA (the Debian packages postgresql and redis-server), import "
        "the demo city into the shared registry once, start --nodes nodes on consecutive HTTP ports (device ports "
        "9100 + 10 per node) and the city's devices reporting to all of them; print the addresses (docs/cluster.md).",
    )
    cluster.add_argument("--data", type=Path, default=Path(".cluster-data"), help="scratch folder (kept)")
    cluster.add_argument("--nodes", type=int, default=3, choices=range(2, 10), metavar="N")
    cluster.add_argument("--http-port", type=int, default=8001, help="the first node's HTTP port")
    cluster.add_argument("--alarms-per-min", type=float, default=6.0)
    cluster.add_argument(
        "--device-port", type=int, default=9100, help="the first node's first device port (node i: + 10 i)"
    )
    cluster.set_defaults(func=cmd_cluster)
    drill = sub.add_parser("drill", help="run a drill scenario and print its scorecard")
    drill.add_argument("scenario", help="a scenario name (see simulators/scenarios/) or a scenario file")
    _drill_options(drill)
    drill.set_defaults(func=cmd_drill, parser=drill)
    return parser


def _drill_options(drill: argparse.ArgumentParser) -> None:
    """Options of ``anxin drill`` (docs/drills/README.md)."""
    drill.add_argument("--url", help="run against this running server (loopback) instead of an embedded one")
    drill.add_argument("--user", help="admin account for --url (ANXIN_DRILL_USER, default admin)")
    drill.add_argument("--password", help="its password (ANXIN_DRILL_PASSWORD, else ANXIN_ADMIN_PASSWORD)")
    _device_ports(drill)
    drill.add_argument("--data", type=Path, help="data folder of the embedded server (new or empty; kept)")
    drill.add_argument("--out", type=Path, help="folder for scorecard.json and timeline.png")
    drill.add_argument("--speedup", type=float, help="drill seconds per wall second (default: the scenario's)")
    drill.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    drill.add_argument(
        "--sim-caregivers",
        action="store_true",
        help="with --url: simulated phones for the scenario's shifts (they take real offers too: training servers)",
    )
    drill.add_argument("--no-operators", action="store_true", help="no simulated operators: people answer")
    drill.add_argument("--quiet", action="store_true", help="no progress bar")
    drill.add_argument("--verbose", action="store_true", help="log what every simulated device and phone does")


def cmd_drill(args: argparse.Namespace) -> int:
    from simulators.drill import run_drill_command

    return run_drill_command(args)


def _device_ports(parser: argparse.ArgumentParser) -> None:
    """One ``--OPTION-port`` flag per protocol of the gateway's registry."""
    for spec in protocols().values():
        parser.add_argument(
            f"--{spec.option}-port",
            dest=f"{spec.option}_port",
            metavar="PORT|off",
            help=f"{spec.name} device port (ANXIN_{spec.option.upper()}_PORT, default {spec.default_port}; "
            "'off' disables it)",
        )


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", metavar="redis://HOST:PORT/0",
                        help="run as a node of a cluster on this Redis (ANXIN_CLUSTER; docs/cluster.md)")  # fmt: skip
    parser.add_argument("--journal", dest="journal_url", metavar="postgresql://USER@HOST:PORT/DB",
                        help="the cluster's shared service record (ANXIN_JOURNAL_URL)")  # fmt: skip
    parser.add_argument("--node", help="this node's name in the cluster (ANXIN_NODE; default host:http-port)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (ANXIN_DATA)")
    parser.add_argument("--config", type=Path, help="TOML settings file (ANXIN_CONFIG)")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    Settings.device_options = frozenset(spec.option for spec in protocols().values())
    given = {
        name: getattr(args, name)
        for name in ("data", "config", "host", "http_port", "cluster", "journal_url", "node")
        if getattr(args, name, None) is not None
    }
    ports = {
        spec.option: port
        for spec in protocols().values()
        if (port := getattr(args, f"{spec.option}_port", None)) is not None
    }
    if ports:
        given["device_ports"] = ports
    config = _config_file(args)
    if config is not None and not Path(config).is_file():
        raise ConfigError(f"settings file {config} (--config, ANXIN_CONFIG) is not a readable file")
    return Settings(**{**extra, **given})


def check_data_folder(data: Path) -> None:
    """Refuse, with one line naming the setting, a data folder that is a file or cannot be written.

    Written to, not asked about: ``os.access`` says yes to root on a read-only mount, a probe file does not."""
    where = f"data folder {data} (setting data: --data, ANXIN_DATA)"
    if data.exists() and not data.is_dir():
        raise ConfigError(f"the {where} is a file, not a folder")
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the {where}: {exc.strerror or exc}") from None
    probe = data / f".write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as handle:
            handle.write(b"anxin")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write in the {where}: {exc.strerror or exc}") from None


def bind_http(settings: Settings) -> socket.socket:
    """The HTTP listening socket, bound before anything else starts (uvicorn is handed it)."""
    where = f"{settings.host}:{settings.http_port} (setting http_port: --http-port, ANXIN_HTTP_PORT; host: --host)"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.http_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # a port another socket holds can bind (SO_REUSEADDR) and fail only here
    except OSError as exc:
        sock.close()
        reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {where}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def start_failure(exc: BaseException, settings: Settings) -> str:
    """One line for what stopped the server while it opened the core and the device listeners."""
    if isinstance(exc, AnxinError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"a device port is already in use ({exc.strerror}); set device_ports (--dc09-port ..., "
            "ANXIN_<PROTOCOL>_PORT, 'off' to switch one off)"
        )
    if isinstance(exc, OSError | sqlite3.OperationalError):
        return f"cannot use the data folder {settings.data} (setting data: --data, ANXIN_DATA): {exc}"
    return f"the server could not start: {type(exc).__name__}: {exc}"


class _StartWatch(logging.Filter):
    """Catches what stops the app's start (the core, the listeners) so it is told in one line, not uvicorn's
    traceback: the app's lifespan is wrapped to note the exception; uvicorn's log of it is then dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        return self.error is None

    def wrap(self, app: FastAPI) -> None:
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def watched(target: Any) -> AsyncIterator[Any]:
            started = False
            context: AbstractAsyncContextManager[Any] = inner(target)
            try:
                async with context as state:
                    started = True
                    yield state
            except Exception as exc:
                if not started:
                    self.error = exc
                raise

        app.router.lifespan_context = watched


class ListeningServer(uvicorn.Server):
    """The server of ``make_server`` on an HTTP socket bound here, before the core opens; ``ready(url)`` is
    called once it listens, after its address is written in the data folder (``server.url``: where ``anxin import``
    and ``anxin export`` find the server that holds the folder, ``anxin demo``'s as ``anxin serve``'s). What stops
    its start is raised as one ConfigError line, not logged as a traceback."""

    def __init__(self, settings: Settings, ready: Callable[[str], None]) -> None:
        super().__init__(make_server(settings).config)  # refuses bad device ports and TLS files first
        self.settings = settings
        self.watch = _StartWatch()
        assert isinstance(self.config.app, FastAPI)
        self.watch.wrap(self.config.app)
        self._ready = ready
        self._url = ""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            # read only while the lock is held, so a file left by a server that stopped misleads nobody
            (self.settings.data / SERVER_URL_FILE).write_text(self._url + "\n", encoding="utf-8")
            self._ready(self._url)

    async def listen(self) -> None:
        """Bind, start, serve until stopped (Ctrl-C, SIGTERM)."""
        sock = bind_http(self.settings)
        self._url = console_url(self.settings.model_copy(update={"http_port": sock.getsockname()[1]}))
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addFilter(self.watch)
        try:
            await self.serve(sockets=[sock])
        except SystemExit:  # uvicorn's way to say its start failed
            error = self.watch.error
            raise ConfigError(start_failure(error, self.settings) if error else "the server could not start") from None
        finally:
            uvicorn_log.removeFilter(self.watch)
            sock.close()


# -- serve --------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_format or "json")
    check_data_folder(settings.data)

    def ready(url: str) -> None:
        print(f"anxin: console at {url}/console", flush=True)

    server = ListeningServer(settings, ready)
    run_loop(settings, server.listen())
    return 0


def run_loop(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """Run a server's main coroutine on the event loop the settings name (``event_loop``)."""
    if settings.event_loop == "uvloop":
        return uvloop.run(main)
    return asyncio.run(main)


# -- import -------------------------------------------------------------------------------------------


#: the file in the data folder where a running server writes its address (``anxin import`` reads it)
SERVER_URL_FILE = "server.url"
#: how long ``anxin import`` waits for a running server's report (a large registry takes a while)
IMPORT_TIMEOUT_S = 600.0


def cmd_import(args: argparse.Namespace) -> int:
    if not (args.elders or args.devices or args.responders):
        print("anxin import: give at least one of --elders, --devices, --responders", file=sys.stderr)
        return 2
    settings = settings_from(args)
    files = {"elders": args.elders, "devices": args.devices, "responders": args.responders}
    if args.server or (settings.journal_url is None and server_holds(settings.data)):
        url = args.server or server_url(settings)
        report = import_remote(url.rstrip("/"), os.environ.get("ANXIN_API_KEY"), files)
    else:
        report = asyncio.run(run_import(settings, **files))
    print(report.summary())
    return 0 if report.ok else 1


def server_holds(data: Path) -> bool:
    """Whether a running server holds the data folder's lock."""
    lock = DataLock(data)
    try:
        lock.acquire()
    except ConfigError:
        return True
    lock.release()
    return False


def server_url(settings: Settings) -> str:
    """The running server's address: as it wrote it in its data folder, else as the settings say it listens."""
    written = settings.data / SERVER_URL_FILE
    if written.is_file():
        return written.read_text(encoding="utf-8").strip()
    url = console_url(settings)
    return url.replace("://0.0.0.0:", "://127.0.0.1:")  # listening everywhere: here is one of them


def import_remote(url: str, key: str | None, files: dict[str, Path | None]) -> ImportReport:
    """Send the files to the running server's import (``POST /api/registry/import``) and read back its report."""
    if not key:
        raise ConfigError(
            f"a server ({url}) holds the data folder: set ANXIN_API_KEY to a key of a service account granted "
            "import (or an admin's token) to import through it, or stop it"
        )
    parts = []
    for kind, path in files.items():
        if path is not None:
            try:
                parts.append((kind, (str(path), path.read_bytes(), "text/csv")))
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        response = httpx.post(f"{url}/api/registry/import", files=parts, timeout=IMPORT_TIMEOUT_S,
                              headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the server at {url} (--server, or {SERVER_URL_FILE} in the data folder): "
                          f"{exc}") from None  # fmt: skip
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        return ImportReport.from_dict(body)
    detail, code = body.get("detail", response.reason_phrase), body.get("code", "")
    if response.status_code == 422 and code == "import_refused":
        raise InvalidInput(str(detail), code=code)  # a file refused whole: as the offline import says it
    raise ConfigError(f"the server at {url} refused the import ({response.status_code} {code}): {detail}")


async def run_import(settings: Settings, **files: Path | None) -> ImportReport:
    """Import CSV files into the data folder (no server running: the import takes the folder's lock; with one,
    :func:`import_remote` sends them to it), or into a cluster's shared registry when no node leads it (the import
    leads for the one entry it writes)."""
    if settings.journal_url is not None:
        return await import_shared(settings, **files)
    lock = DataLock(settings.data)
    lock.acquire()
    try:
        db, registry = await open_registry(settings)
        try:
            providers = catalogue(settings.service_catalogue).providers
            report = await import_files(
                registry, protocols=protocols(), providers=providers,
                elders=files.get("elders"), devices=files.get("devices"), responders=files.get("responders"),
            )  # fmt: skip
        finally:
            await db.close()
        counts = {"elders": report.elders, "devices": report.devices, "responders": report.responders}
        if any(c.changed for c in counts.values()):
            journal = SqliteJournal(settings.db_path, SystemClock())
            await journal.open()
            anchor = Anchor.for_settings(journal, settings, SystemClock())  # the import is signed like the rest
            await anchor.start()
            try:
                imported = RegistryImported(
                    files={k: str(v) for k, v in files.items() if v is not None},
                    counts={
                        kind: {"added": c.added, "updated": c.updated, "unchanged": c.unchanged}
                        for kind, c in counts.items()
                    },
                    errors=len(report.errors),
                )
                entry = journal.append(imported, actor=f"admin:{os.environ.get('USER', 'cli')}")
                await journal.durable(entry.seq)
            finally:
                await journal.close()
                await anchor.stop()
        return report
    finally:
        lock.release()


async def import_shared(settings: Settings, **files: Path | None) -> ImportReport:
    """The import into a cluster's registry, as a leader for one entry: it takes the lease (refused while a node
    leads), claims a term (so that it writes the registry fenced like a leader), imports, and records the import.
    The lease is renewed meanwhile, so that no node restarted during a long import takes over and fences it."""
    if settings.cluster is None or settings.journal_url is None:
        raise ConfigError("importing into a cluster needs --cluster (its Redis) and --journal (its PostgreSQL)")
    clock = SystemClock()
    redis = aioredis.Redis.from_url(settings.cluster, decode_responses=True)
    lease = Lease(redis, f"import:{os.getpid()}", IMPORT_LEASE_S)
    pool = journal = renewing = None
    try:
        if not await lease.take():
            raise ConfigError(
                f"the cluster is running ({await lease.holder()} leads): stop its nodes to import, or use the API"
            )
        renewing = asyncio.create_task(_renew(lease))
        journal = PgJournal(settings.journal_url, clock, node=lease.node)
        await journal.open()
        await journal.claim()
        pool = await asyncpg.create_pool(settings.journal_url, min_size=1, max_size=2)
        registry = PgRegistry(pool, term=lambda: journal.term if journal is not None else 0)
        await registry.create_schema()
        providers = catalogue(settings.service_catalogue).providers
        report = await import_files(
            registry, protocols=protocols(), providers=providers,
            elders=files.get("elders"), devices=files.get("devices"), responders=files.get("responders"),
        )  # fmt: skip
        counts = {"elders": report.elders, "devices": report.devices, "responders": report.responders}
        if any(c.changed for c in counts.values()):
            imported = RegistryImported(
                files={k: str(v) for k, v in files.items() if v is not None},
                counts={
                    k: {"added": c.added, "updated": c.updated, "unchanged": c.unchanged} for k, c in counts.items()
                },
                errors=len(report.errors),
            )
            entry = journal.append(imported, actor=f"admin:{os.environ.get('USER', 'cli')}")
            await journal.durable(entry.seq)
        return report
    finally:
        if renewing is not None:
            renewing.cancel()
        if journal is not None:
            await journal.close()
        await lease.give_up()
        if pool is not None:
            await pool.close()
        await redis.aclose()


IMPORT_LEASE_S = 10.0


async def _renew(lease: Lease) -> None:
    while True:
        await asyncio.sleep(IMPORT_LEASE_S / 3)
        if not await lease.renew():
            raise ConfigError("the import lost its lease; a node may have taken over")


# -- verify -------------------------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.backup is not None:
        return restore_command.verify(args.backup, settings, args.key)
    if settings.journal_url is not None:
        return asyncio.run(verify_shared(settings.journal_url))
    if not settings.db_path.exists():
        print(f"anxin verify: no journal in {settings.data}", file=sys.stderr)
        return 2
    return asyncio.run(run_verify(settings, chain_only=args.chain_only))


async def verify_shared(url: str) -> int:
    """A cluster's record: the hash chain over every entry (the checkpoints are the embedded journal's)."""
    conn, read = await pg_read_only(url)
    try:
        result = await verify_chain(read)
    except ChainBroken as exc:
        print(f"journal BROKEN: {exc}")
        return 1
    finally:
        await conn.close()
    print(f"journal ok: {result.entries} entries, head {result.head_hash[:16]} (the shared record's chain)")
    return 0


async def run_verify(settings: Settings, *, chain_only: bool = False) -> int:
    conn, read = await read_only(settings.db_path)
    try:
        if chain_only:
            try:
                result = await verify_chain(read)
            except ChainBroken as exc:
                print(f"journal BROKEN: {exc}")
                return 1
            print(f"journal ok: {result.entries} entries, head {result.head_hash[:16]} (the chain alone)")
            return 0
        report = await verify_record(read, key_file(settings))
    finally:
        await conn.close()
    return print_verdict(report)


# -- backup and restore -------------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    return backup_command.run(settings_from(args), args)


def cmd_restore(args: argparse.Namespace) -> int:
    return restore_command.restore(args.archive, settings_from(args), key=args.key, force=args.force,
                                   config=args.config)  # fmt: skip


# -- coverage -----------------------------------------------------------------------------------------


def cmd_coverage(args: argparse.Namespace) -> int:
    return coverage_command.run(settings_from(args), args)


# -- export -------------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    remote = args.server or (settings.journal_url is None and server_holds(settings.data))
    return export_command.run(settings, args, server=(args.server or server_url(settings)) if remote else None)


# -- demo ---------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from anxin.demo import fleet_on_loopback, run_demo

    os.environ.setdefault("ANXIN_ADMIN_PASSWORD", "anxin-demo")
    fleet_on_loopback()
    settings = settings_from(args, data=Path(".demo-data"))
    configure_logging(settings.log_format or "text")
    return run_loop(settings, run_demo(settings, alarms_per_min=args.alarms_per_min))


def cmd_cluster(args: argparse.Namespace) -> int:
    from anxin import scratch
    from anxin.localcluster import run_cluster

    absent = scratch.missing()
    if absent:
        print(f"anxin cluster: install {' and '.join(absent)} first (apt-get install {' '.join(absent)})",
              file=sys.stderr)  # fmt: skip
        return 2
    return asyncio.run(run_cluster(args.data, count=args.nodes, http_port=args.http_port,
                                   alarms_per_min=args.alarms_per_min, device_port=args.device_port))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
