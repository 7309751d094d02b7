"""The protocol registry: every device protocol the gateway speaks, described by one spec in its own module.

What it owns
    The list of protocols. Each protocol module of this package ends with ``SPEC = ProtocolSpec(...)``: its
    name in the registry (what a device's ``protocol`` says), the short option name of its port setting
    (``--dc09-port``, ``ANXIN_DC09_PORT``, ``device_ports.dc09``), its default port, the factory of its
    sans-I/O codec (and of a datagram codec when it also runs over UDP), and its code tables. Listeners,
    settings, the CLI's flags, the check of imported devices and docs/device-codes.md are all driven from
    here, so adding a protocol is adding one module (and its test file): :func:`protocols` finds it.

    What a codec may ask of the registry of devices, and the policy it applies: a codec factory is called as
    ``spec.stream(keys, known=..., policy=...)``. ``keys`` (the AES key of a device, positional) stays the
    one argument every factory takes, so tests and simulators keep calling ``spec.stream(keys)``;
    ``known`` (:data:`KnownLookup`: is this device registered) and ``policy`` (:class:`DevicePolicy`: what to
    do with plain frames for keyed DC-09 accounts and with unknown GT06 logins) are keywords.
    The codecs stay sans-I/O: the lookup is a synchronous read of the core's directory.

Rules
    1. Discovery imports each module of this package once and keeps every ``SPEC`` it finds, in the order of
       their default ports; :func:`register` adds one from elsewhere (a test's, a deployment's plug-in).
    2. Names and options are unique; a clash is a :class:`~gateway.errors.UsageError` at start, not a
       surprise at run time.
    3. Without a ``devices`` lookup a codec cannot tell a registered device from an unknown one, so it treats
       every device as known (tests, simulators); the server always passes one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from gateway.codes import CodeMeaning
from gateway.errors import UsageError
from gateway.events import Decoded

#: looks up a device's AES key by account / device id (None: the device has none, or is unknown)
KeyLookup = Callable[[str], bytes | None]
#: whether a device id is registered (a synchronous read of the core's directory, no I/O)
KnownLookup = Callable[[str], bool]

#: a plain DC-09 message for an account that has a key: refused (DUH and a tamper event), or, for urgent alarms
#: only, accepted together with the tamper event
PlainKeyed = Literal["refuse", "accept-sos"]
#: a GT06 login from an IMEI nobody registered: refused (no login ACK), or accepted
UnknownLogin = Literal["refuse", "accept"]


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """How far the codecs trust devices (settings ``dc09_plain_keyed`` and ``gt06_unknown_login``)."""

    dc09_plain_keyed: PlainKeyed = "refuse"
    gt06_unknown_login: UnknownLogin = "refuse"


DEFAULT_POLICY = DevicePolicy()


class StreamCodec(Protocol):
    """A codec for one connection: bytes in (any cut), one result per complete frame out."""

    counters: Counter[str]

    @property
    def buffered(self) -> int:
        """Bytes of a frame in progress, held for its rest (the gateway's partial-frame deadline runs on it)."""
        ...

    def receive_data(self, data: bytes, now: float) -> list[Decoded]: ...


C = TypeVar("C", bound=StreamCodec)
C_co = TypeVar("C_co", bound=StreamCodec, covariant=True)


class DatagramCodec(Protocol):
    """A codec for datagrams, each a whole message (DC-09 over UDP)."""

    counters: Counter[str]

    def datagram(self, data: bytes, now: float) -> list[Decoded]: ...


D_co = TypeVar("D_co", bound=DatagramCodec, covariant=True)


class StreamFactory(Protocol[C_co]):
    """``factory(keys, known=..., policy=...)``: a codec for one connection."""

    def __call__(
        self, keys: KeyLookup, /, *, known: KnownLookup | None = None, policy: DevicePolicy = DEFAULT_POLICY
    ) -> C_co: ...


class DatagramFactory(Protocol[D_co]):
    """``factory(keys, known=..., policy=...)``: a codec for a listener's datagrams."""

    def __call__(
        self, keys: KeyLookup, /, *, known: KnownLookup | None = None, policy: DevicePolicy = DEFAULT_POLICY
    ) -> D_co: ...


@dataclass(frozen=True, slots=True)
class CodeTable:
    """One table of a protocol's codes, as docs/device-codes.md shows it."""

    title: str
    column: str
    codes: dict[str, CodeMeaning]


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    name: str
    option: str
    default_port: int
    summary: str
    stream: StreamFactory[StreamCodec]
    datagram: DatagramFactory[DatagramCodec] | None = None
    codes: tuple[CodeTable, ...] = ()

    @property
    def transports(self) -> tuple[str, ...]:
        return ("tcp", "udp") if self.datagram is not None else ("tcp",)


def keyless(codec: Callable[[], C]) -> StreamFactory[C]:
    """The codec factory of a protocol whose devices carry no keys (they are known by their id alone)."""

    def factory(keys: KeyLookup, /, *, known: KnownLookup | None = None, policy: DevicePolicy = DEFAULT_POLICY) -> C:
        return codec()

    return factory


_registered: dict[str, ProtocolSpec] = {}
_discovered = False


def protocols() -> dict[str, ProtocolSpec]:
    """Every known protocol by name, built-in ones first, in the order of their default ports."""
    global _discovered
    if not _discovered:
        import gateway

        for module in pkgutil.iter_modules(gateway.__path__):
            spec = getattr(importlib.import_module(f"gateway.{module.name}"), "SPEC", None)
            if isinstance(spec, ProtocolSpec):
                register(spec)
        _discovered = True
    return dict(sorted(_registered.items(), key=lambda item: (item[1].default_port, item[0])))


def register(spec: ProtocolSpec) -> None:
    if spec.option == "http" or not spec.option.isalnum() or spec.option != spec.option.lower():
        reason = "must be lower-case letters and digits, and not http"
        raise UsageError(f"protocol {spec.name}: option {spec.option!r} {reason}")
    for other in _registered.values():
        if other.name != spec.name and other.option == spec.option:
            raise UsageError(f"protocols {other.name} and {spec.name} both use the option {spec.option}")
    if spec.name in _registered and _registered[spec.name] is not spec:
        raise UsageError(f"protocol {spec.name} is registered twice")
    _registered[spec.name] = spec


def unregister(name: str) -> None:
    """Forget a protocol registered with :func:`register` (tests)."""
    _registered.pop(name, None)


def by_option() -> dict[str, ProtocolSpec]:
    return {spec.option: spec for spec in protocols().values()}


def document() -> str:
    """The text of docs/device-codes.md, drawn from the registry (a test keeps them equal)."""
    lines = [
        "# Device protocols and codes → Anxin alarm types",
        "",
        "Drawn from the protocol registry (`gateway/registry.py`) by `python -m gateway.registry`; a test fails",
        "when they disagree. The priority of each alarm type is the triage rule's ([triage.md](triage.md)).",
        "Contact ID qualifier 1 is a new event, 3 a restore (clears a technical condition), 6 a condition still",
        "present.",
        "",
        "| protocol | port setting | default port | transports | what speaks it |",
        "|---|---|---|---|---|",
    ]
    specs = protocols().values()
    for spec in specs:
        transports = ", ".join(t.upper() for t in spec.transports)
        option = f"`--{spec.option}-port`, `ANXIN_{spec.option.upper()}_PORT`"
        lines.append(f"| `{spec.name}` | {option} | {spec.default_port} | {transports} | {spec.summary} |")
    lines.append("")
    for spec in specs:
        for table in spec.codes:
            lines += [f"## {table.title}", "", f"| {table.column} | meaning | event | Anxin alarm type |"]
            lines.append("|---|---|---|---|")
            for code, meaning in table.codes.items():
                lines.append(f"| `{code}` | {meaning.label} | {meaning.kind} | {meaning.alarm_type or '—'} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # the protocol modules register into gateway.registry, not into __main__
    from gateway import registry

    print(registry.document(), end="")
