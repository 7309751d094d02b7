"""One typed settings object, from a TOML file and ``ANXIN_*`` environment variables.

Precedence, highest first: values passed in code (the CLI's flags), environment variables, the file named
by ``ANXIN_CONFIG`` (or ``--config``), the defaults below.

Device ports are keyed by each protocol's option name (``dc09``, ``watch``, ``gt06``, and any protocol added
to the gateway's registry): ``ANXIN_DC09_PORT=9100`` in the environment, ``dc09_port = 9100`` or
``[device_ports] dc09 = 9100`` in the file, ``--dc09-port`` on the command line; ``off`` switches a listener
off; a protocol not named gets its default port. Which names exist is the gateway's knowledge: the process
that composes the server names them in :attr:`Settings.device_options` before it reads the settings, and
refuses a name in ``device_ports`` that no protocol has.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from dispatch.scopes import check_scope
from dispatch.services import load_catalogue

Priority = Annotated[int, Field(ge=1, le=5)]


class DeviceBudget(BaseModel):
    """One device listener's connection budget (``device_budgets.<option>``); None: the gateway's default.

    The defaults and their reasons are in docs/security.md, "Connection budgets"."""

    model_config = ConfigDict(extra="forbid")

    #: connections the listener holds at once (None: an equal share of the descriptors left after HTTP and the reserve)
    max_connections: int | None = Field(None, ge=1, le=1_000_000)
    #: connections from one source address (None: device_max_per_address)
    max_per_address: int | None = Field(None, ge=1, le=1_000_000)
    #: a connection with no byte for this long is dropped (None: the protocol's heartbeat × 3)
    idle_s: float | None = Field(None, gt=0, le=7 * 86400)
    #: a frame begun but not completed within this long drops the connection (None: device_partial_s)
    partial_s: float | None = Field(None, gt=0, le=3600)
    #: the source networks admitted (CIDR); empty: everyone (watch and GT06 carry no authentication: list the APN's)
    allow: list[IPvAnyNetwork] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANXIN_", extra="forbid")

    #: the option names of the device protocols this process speaks, whose ``ANXIN_<OPTION>_PORT`` variables and
    #: ``<option>_port`` file keys are read into ``device_ports`` (set from the gateway's registry by the process)
    device_options: ClassVar[frozenset[str]] = frozenset()

    data: Path = Path("data")
    host: str = "127.0.0.1"

    # cluster mode (docs/cluster.md): both set, or neither for the embedded default
    #: the Redis that carries commands to the leader and holds its lease (``redis://host:port/0``)
    cluster: str | None = None
    #: the PostgreSQL that holds the shared service record and registry (``postgresql://user@host:port/db``)
    journal_url: str | None = None
    #: this node's name in the cluster (default: host name and HTTP port)
    node: str | None = None
    #: a leader that has not renewed its lease for this long has lost it; another node takes over
    lease_s: float = Field(2.0, ge=0.5, le=60)
    #: a command handed to the leader that is not answered within this long is refused (no ACK, HTTP 503)
    hand_timeout_s: float = Field(10.0, gt=0, le=120)
    http_port: int = Field(8000, ge=0, le=65535)
    timezone: str = "Asia/Shanghai"
    #: the number a caregiver's phone calls to reach the centre (12349 is the elderly hotline in many cities)
    centre_phone: str = "12349"
    #: the centre's name, as the government platform's export names it (ANXIN_CENTRE_NAME; None: not named)
    centre_name: str | None = Field(None, max_length=200)
    #: the government platform's export (dispatch.govexport) names each elder served (ANXIN_EXPORT_NAMES); off, it
    #: holds ids and communities only. Never a phone, an address, a resident id or a position either way
    export_names: bool = False

    # timers (seconds)
    answer_target_s: float = Field(60.0, gt=0)
    offer_timeout_s: float = Field(45.0, gt=0)
    max_offers: int = Field(3, ge=1)
    position_stale_s: float = Field(1800.0, gt=0)
    checkin_grace: float = Field(1.2, ge=1.0)  # a device is missing after checkin_s × this

    # device gateway: protocol option name -> port (None: listener off; not named: the protocol's default)
    # (loopback by default: a receiver names the interface its devices reach, docs/security.md)
    gateway_host: str = "127.0.0.1"
    device_ports: dict[str, int | None] = {}
    #: connection budgets per protocol option name ({"watch": {"max_per_address": 2000, "allow": ["10.64.0.0/10"]}})
    device_budgets: dict[str, DeviceBudget] = {}
    #: connections one source address may hold on one listener, unless its budget says (carrier NAT puts hundreds of
    #: devices behind one address; a private APN gives each its own)
    device_max_per_address: int = Field(256, ge=1, le=1_000_000)
    #: seconds a device frame may take from its first byte to its last
    device_partial_s: float = Field(30.0, gt=0, le=3600)
    #: HTTP and websocket connections at once (uvicorn's limit_concurrency, beyond which HTTP answers 503; consoles'
    #: and phones' websockets count in it; None: a quarter of the descriptors), and descriptors kept for the
    #: journal, logs, anchor and listening sockets
    http_max_connections: int | None = Field(None, ge=16, le=1_000_000)
    #: seconds a new HTTP connection may stay silent (no byte) before it is closed
    http_first_byte_s: float = Field(10.0, gt=0, le=300)
    descriptor_reserve: int = Field(128, ge=32, le=100_000)

    # unknown and implausible devices (dispatch.supervision): what unregistered devices say is counted in memory
    # and written as one summary per interval (and, for their alarms, one supervisor alert per interval); at most
    # this many distinct ids are kept per interval (the rest are counted, not named)
    unknown_interval_s: float = Field(60.0, ge=1.0, le=3600.0)
    unknown_ids_kept: int = Field(1000, ge=10, le=100_000)
    #: a watch/GT06 fix implying a faster move than this from the last accepted one is flagged, not applied (an
    #: elder in a car or a train goes up to ~250 km/h; a high-speed train 350: set it higher where they ride one)
    max_speed_kmh: float = Field(250.0, ge=10.0, le=2000.0)

    # device authentication (gateway.dc09 rule 7, gateway.gt06 rule 3a; docs/security.md): a plain DC-09 message
    # for an account that has a key is refused with DUH and a tamper event ("refuse"), or, for urgent alarms only,
    # ACKed and recorded with the tamper event ("accept-sos"); a GT06 login from an unregistered IMEI gets no ACK
    # ("refuse") or is accepted ("accept")
    dc09_plain_keyed: Literal["refuse", "accept-sos"] = "refuse"
    gt06_unknown_login: Literal["refuse", "accept"] = "refuse"

    #: a device's mains loss or missed check-in joins its street's open group only within this long of the last
    #: device that joined (a power cut reports within minutes; a watch silent hours later is another event)
    group_window_s: float = Field(600.0, gt=0)

    # matching
    match_radius_m: float = Field(5000.0, gt=0)
    #: the wider circle (docs/dispatch.md): when nobody with the skill is free within match_radius_m, these
    #: radii are tried in turn for someone with it; then, with unskilled_help, anyone on duty within
    #: match_radius_m, skill or not (someone at the door now, the operator sees who lacks what)
    wider_radii_m: list[Annotated[float, Field(gt=0, le=100_000)]] = Field(default_factory=lambda: [10_000.0])
    #: ... for someone who would arrive within this long (a car 10 km away takes 30 min: the backlog may well find
    #: someone nearer free sooner)
    wider_eta_s: float = Field(1200.0, gt=0)
    unskilled_help: bool = True
    #: the circle's last rings (dispatch.family): volunteers on call within this distance of their registered
    #: home, then the elder's family contacts in calling order, each given family_offer_timeout_s to answer
    on_call_radius_m: float = Field(3000.0, gt=0, le=100_000)
    family_offer_timeout_s: float = Field(120.0, gt=0)
    #: priority -> how many responders are offered the incident at once (the first to accept takes it, the others
    #: are withdrawn and told); a priority not named: one at a time
    parallel_offers: dict[Priority, Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=lambda: {1: 2})
    #: ... each one more only if they would arrive within this long of the best one offered (whoever accepts first
    #: goes: a far one answering first would be at the door later)
    parallel_slack_s: float = Field(120.0, ge=0)
    #: someone free is asked to take over from a responder still on the way (accepted, not yet at the door) when
    #: they would be there at least this much sooner; whoever was on the way is released once they accept (0: never)
    take_over_gain_s: float = Field(600.0, ge=0)
    match_k: int = Field(5, ge=1, le=50)
    own_caregiver_m: float = Field(2000.0, ge=0)
    clinic_radius_m: float = Field(20000.0, gt=0)
    #: how long a clinic has to accept or decline a referral to its green channel before it expires (the operator
    #: then refers to another clinic, or calls 120); longer than an offer: a clinic's desk is not a phone in a pocket
    referral_timeout_s: float = Field(180.0, gt=0)
    #: a device's test call (测试呼叫, dispatch.keeping): how long after "test" is pressed an alarm from the device
    #: is the test's; the window elapsing with nothing heard is a failed test
    device_test_s: float = Field(300.0, ge=30.0, le=3600.0)
    #: the coverage plan's target (dispatch.coverage, ``anxin coverage``): an elder is covered at an hour when a
    #: responder working then would arrive within this many seconds
    coverage_target_s: float = Field(900.0, ge=60.0, le=4 * 3600.0)

    # service vouchers (服务券, dispatch.vouchers): each entitlement's monthly allotment in integer fen (分; 30000 is
    # 300 yuan), and whether an unspent balance rolls over into the next month (off: a month's vouchers lapse)
    voucher_free_fen: int = Field(30_000, ge=0, le=100_000_000)
    voucher_low_cost_fen: int = Field(15_000, ge=0, le=100_000_000)
    voucher_paid_fen: int = Field(0, ge=0, le=100_000_000)
    voucher_roll_over: bool = False
    #: a disability supplement (失能补贴) a month, in fen, by care level 0-3 (the needs assessment's ability level)
    voucher_care_fen: list[int] = Field(default_factory=lambda: [0, 0, 0, 0], min_length=4, max_length=4)

    # follow-ups (回访, dispatch.followups): due this many days after the incident closed or the service was
    # delivered, at this hour of the centre's time zone; after this many unanswered attempts the follow-up is
    # closed as unreachable and a home visit is proposed
    follow_up_after_days: int = Field(1, ge=0, le=30)
    follow_up_hour: int = Field(10, ge=0, le=23)
    follow_up_attempts: int = Field(3, ge=1, le=10)

    # needs assessments (dispatch.assessment): the next one falls due this many days after the last (and at once
    # after a fall the centre attended or a hospital stay)
    reassess_after_days: int = Field(365, ge=30, le=3650)

    # care calls (关怀电话, dispatch.carecalls): elders living alone, empty-nest elders and elders of this age or
    # more are called every so many local days (the shortest when several apply), counted from the last reached
    # call; an unanswered call is retried this many minutes later, and after this many unanswered attempts in a
    # row a home visit is proposed instead
    care_call_age: int = Field(80, ge=60, le=120)
    care_call_every_days_alone: int = Field(2, ge=1, le=90)
    care_call_every_days_empty_nest: int = Field(7, ge=1, le=90)
    care_call_every_days_aged: int = Field(7, ge=1, le=90)
    care_call_retry_minutes: int = Field(60, ge=1, le=24 * 60)
    care_call_attempts: int = Field(3, ge=1, le=10)
    # 五定 plans (dispatch.plans): each plan's orders are kept generated this many local days ahead (today
    # included); a planned visit nobody checked in to this many minutes after its window ended is missed (a task
    # for the operators)
    plan_horizon_days: int = Field(7, ge=1, le=60)
    plan_grace_minutes: int = Field(30, ge=0, le=24 * 60)
    # duty shifts (值班, dispatch.duty): a shift started from this hour of the centre's time zone until the night
    # hour is a day shift, the rest a night shift (unless the operator says which)
    duty_day_hour: int = Field(8, ge=0, le=23)
    duty_night_hour: int = Field(20, ge=0, le=23)

    # pages: a map tile URL template with {z}, {x} and {y} (e.g. a tile server inside the centre's network);
    # None draws the incident map on a plain background with a scale bar (no internet needed)
    map_tiles: str | None = None

    # auth
    admin_password: str | None = None
    token_ttl_s: float = Field(12 * 3600.0, gt=0)
    #: wrong passwords before an account is locked, and for how long; wrong passwords from one address before
    #: that address is refused (over the same window)
    login_fail_account: int = Field(20, ge=1)
    login_fail_address: int = Field(100, ge=1)
    login_lock_s: float = Field(900.0, gt=0)
    #: hotline lines that belong to a part of the network ("8001": "西城区/德胜街道"): an unknown caller on that
    #: line is that part's to answer; calls on other lines, from nobody known, are the whole centre's
    lines: dict[str, str] = {}

    # the PBX (docs/telephony.md): Anxin logs in to its manager interface (Asterisk AMI) and follows the calls;
    # no host: no PBX (call events come over HTTP, POST /api/hotline/events)
    pbx_host: str = ""
    pbx_port: int = Field(5038, ge=1, le=65535)
    #: the manager.conf user (read = call,agent; write = originate,reporting: see docs/telephony.md)
    pbx_username: str = ""
    #: its secret (ANXIN_PBX_SECRET), or a file holding it (``pbx_secret_file``, read at start), never logged
    pbx_secret: str = Field("", repr=False)
    pbx_secret_file: Path | None = None
    #: operators' extensions: {"8101": "operator"}: a call answered at 8101 was answered by that account
    pbx_extensions: dict[str, str] = {}
    #: click-to-call: the channel that rings the operator first ({extension}), and the dialplan context and
    #: caller id the PBX dials the number with
    pbx_channel: str = "PJSIP/{extension}"
    pbx_context: str = "from-internal"  # FreePBX's outbound context; docs/telephony.md shows one of Anxin's own
    pbx_caller_id: str = ""
    #: the hotline's queues: a call is the hotline's once it joins one of them (the consoles pop it then), so a
    #: PBX that also carries other departments' calls keeps them out; empty: every call from outside is the hotline's
    #: from its first ring (a hotline that rings extensions directly, without a queue, needs this)
    pbx_queues: list[str] = []
    #: reconnecting after the link drops: the first wait, and the most it grows to (doubling, with jitter)
    pbx_backoff_s: float = Field(1.0, gt=0, le=60)
    pbx_backoff_max_s: float = Field(30.0, gt=0, le=600)
    #: a person reading the same record (or the same list) again within this many seconds is not journaled
    #: again: the record shows they read it from then on (a console re-reads an incident at every change)
    read_window_s: float = Field(600.0, ge=0)

    # the service record's anchor: the key that signs the checkpoints of the chain's head, kept outside the data
    # folder (None: the file "<data>.chain-key" beside the data folder), and how often a checkpoint is written
    chain_key_file: Path | None = None
    anchor_every_s: float = Field(1.0, gt=0)

    #: the most lines one roster call (POST /api/responders/duty) takes: a city's shift is a few thousand; a
    #: longer list is sent in several calls (200,000 lines in one call held SOS ACKs for 5 s)
    roster_max_lines: int = Field(5000, ge=1, le=50_000)

    # the disk under the data folder (dispatch.storage): under the reserve, consoles and the log warn while there is
    # time; under the floor, link tests and heartbeats are no longer acknowledged (transmitters use their backup
    # path) and only alarms are tried
    storage_reserve_mb: float = Field(1024.0, ge=0)
    storage_floor_mb: float = Field(16.0, ge=0)
    storage_check_s: float = Field(2.0, gt=0)

    # TLS for HTTP and websockets (both files, or neither); behind a reverse proxy, the proxy's addresses whose
    # X-Forwarded-For / X-Forwarded-Proto are believed (the client's address is what login throttling counts)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    forwarded_allow_ips: str = "127.0.0.1"
    # HTTP request bodies, in bytes (console.limits): a larger body is refused with 413 before it is read and
    # before authentication; the bulk limit is for the routes that need more (a shift roster)
    http_body_max: int = Field(1 << 20, ge=4096, le=1 << 30)
    http_bulk_body_max: int = Field(4 << 20, ge=4096, le=1 << 30)
    #: a registry's CSV files sent by ``anxin import`` to the running server (100,000 elders: about 26 MB)
    http_import_body_max: int = Field(64 << 20, ge=4096, le=1 << 30)
    #: the service desk's catalogue (dispatch.services): a TOML file of [[item]]s replacing the one shipped with the
    #: package (None); checked whole at start, a bad item is a ConfigError naming the item and the field
    service_catalogue: Path | None = None

    # operations (docs/operations.md): the log's format (None: JSON lines for ``anxin serve``, text for the demo and
    # the other commands); the bearer token a Prometheus scraper sends to /metrics (None: /metrics answers loopback
    # peers only); a journal holding entries it has not committed for this long is "stalled" (/readyz answers 503)
    log_format: Literal["json", "text"] | None = None
    metrics_token: str | None = Field(None, min_length=16)
    ready_stall_s: float = Field(10.0, gt=0, le=3600)
    #: the event loop ``anxin serve`` and ``anxin demo`` run on: uvloop (libuv, in C: every socket read and write,
    #: timer and callback of the alarm path costs less) or the standard library's
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    config: Path | None = None

    @field_validator("device_ports", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        ports: dict[str, int | None] = {}
        for name, port in value.items():
            if port is None or (isinstance(port, str) and port.strip().lower() in ("off", "none", "")):
                ports[str(name).lower()] = None
                continue
            try:
                if isinstance(port, bool) or (isinstance(port, float) and not port.is_integer()):
                    raise ValueError
                number = int(port)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: a port number or 'off', not {port!r}") from None
            if not 0 <= number <= 65535:
                raise ValueError(f"{name}: port {number} is not between 0 and 65535")
            ports[str(name).lower()] = number
        return ports

    def device_port(self, option: str, default: int) -> int | None:
        """The port of the protocol with this option name: as configured, or its default."""
        return self.device_ports.get(option, default)

    @field_validator("service_catalogue")
    @classmethod
    def _catalogue(cls, value: Path | None) -> Path | None:
        load_catalogue(value)  # a ConfigError passes through pydantic as it is
        return value

    @field_validator("lines")
    @classmethod
    def _lines(cls, value: dict[str, str]) -> dict[str, str]:
        return {line: check_scope(scope) for line, scope in value.items()}

    @field_validator("map_tiles")
    @classmethod
    def _tiles(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        missing = [part for part in ("{z}", "{x}", "{y}") if part not in value]
        if missing:
            raise ValueError(f"map_tiles needs {', '.join(missing)} in the URL template")
        return value.strip()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _PortsFromEnvironment(settings_cls),
            _ConfigFile(settings_cls, init_settings, env_settings),
        )

    @property
    def db_path(self) -> Path:
        return self.data / "anxin.sqlite3"


class _PortsFromEnvironment(PydanticBaseSettingsSource):
    """``ANXIN_<OPTION>_PORT`` variables of the known device protocols (any case) as entries of ``device_ports``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        wanted = {f"ANXIN_{option.upper()}_PORT": option for option in Settings.device_options}
        ports = {wanted[name.upper()]: value for name, value in os.environ.items() if name.upper() in wanted}
        return {"device_ports": ports} if ports else {}


class _ConfigFile(PydanticBaseSettingsSource):
    """The TOML file named by ``config`` (from the CLI or ``ANXIN_CONFIG``), when there is one."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init: PydanticBaseSettingsSource,
        env: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init = init
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._init().get("config") or self._env().get("config")
        if not path:
            return {}
        values = TomlConfigSettingsSource(self.settings_cls, toml_file=Path(path))()
        old_style = {f"{option}_port": option for option in Settings.device_options}  # dc09_port = 9100
        ports = {old_style[key]: values.pop(key) for key in list(values) if key in old_style}
        if ports:
            values["device_ports"] = {**ports, **values.get("device_ports", {})}
        return values
