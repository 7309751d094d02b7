"""The service catalogue: what the centre's service desk offers, for how long, by whom, at what price.

What it owns
    :class:`ServiceItem`, one line of the menu (菜单式服务): its category (生活照料, 助餐, 助洁, 助浴, 助医, 维修,
    精神慰藉, 法律咨询, ...), its names in Chinese and English, its unit and duration, the skill a responder needs
    for it (one of the registry's :data:`~dispatch.registry.SKILLS`, or None: anyone on duty may go), who
    provides it, and its price in each service mode (the registry's ``Entitlement``: free 无偿, low-cost 低偿,
    paid 有偿), in integer fen. :class:`Provider`, who delivers: the centre or a contracted organisation. And
    :func:`catalogue`, the catalogue in force: the default file shipped in this
    package (``catalogue.toml``) or the one the ``service_catalogue`` setting names.

Rules
    1. Money is integer fen, never a float: a price in the file that is not a whole number of fen is refused.
    2. A catalogue is checked whole when it is read (at start, by the settings): a bad file is one
       :class:`~dispatch.errors.ConfigError` naming the item and the field, never a half-loaded menu.
    3. Items are frozen; an order copies the price of its elder's mode when it is made (dispatch.entries
       ``service.ordered``), so a later change of the catalogue never changes an order already taken.
    4. Providers: ``"centre"`` is the centre's own caregivers and volunteers; the file's ``[[provider]]`` tables
       are the contracted service organisations (家政公司, 助餐企业, 维修服务部, ...), each with its own staff (the
       registry's responders whose ``provider`` is its id). An item names the one provider who delivers it
       (default the centre); a provider the file does not list is refused when the file is read, and an order
       is assigned only to the staff of its item's provider (dispatch.engine).

Never
    Never read a clock, a database or the network; never hold a price as a float.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.errors import ConfigError
from dispatch.registry import Entitlement, Ident, Skill

#: the catalogue shipped with the package (replaced by the ``service_catalogue`` setting)
DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.toml")

Category = Literal["life_care", "meals", "cleaning", "bathing", "medical", "repair", "comfort", "legal", "other"]
#: each category's name as the centre says it, and in English
CATEGORIES: dict[str, tuple[str, str]] = {
    "life_care": ("生活照料", "Personal care"),
    "meals": ("助餐", "Meals"),
    "cleaning": ("助洁", "Cleaning"),
    "bathing": ("助浴", "Bathing"),
    "medical": ("助医", "Medical help"),
    "repair": ("维修", "Repairs"),
    "comfort": ("精神慰藉", "Company and comfort"),
    "legal": ("法律咨询", "Legal advice"),
    "other": ("其他", "Other"),
}
Unit = Literal["visit", "hour", "meal"]
UNITS: dict[str, tuple[str, str]] = {"visit": ("次", "visit"), "hour": ("小时", "hour"), "meal": ("份", "meal")}
#: the centre's own caregivers and volunteers: the one provider until contracted organisations are registered
CENTRE = "centre"

Fen = Annotated[int, Field(strict=True, ge=0, le=100_000_000)]  # up to a million yuan; whole fen only


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Prices(_Frozen):
    """An item's price in each service mode, in fen (1 yuan = 100 fen)."""

    free: Fen
    low_cost: Fen
    paid: Fen

    def of(self, mode: Entitlement) -> int:
        price: int = getattr(self, mode)
        return price


class Provider(_Frozen):
    """Who delivers services: the centre itself or a contracted service organisation, with whom to call."""

    provider_id: Ident
    name_zh: Annotated[str, Field(min_length=1, max_length=64)]
    name_en: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Annotated[str, Field(max_length=32)] = ""
    contract: Annotated[str, Field(max_length=200)] = ""  # the contract's number or term, as the centre files it


#: the centre's own caregivers and volunteers, always a provider
THE_CENTRE = Provider(provider_id=CENTRE, name_zh="本中心", name_en="The centre")


class ServiceItem(_Frozen):
    item_id: Ident
    category: Category
    name_zh: Annotated[str, Field(min_length=1, max_length=64)]
    name_en: Annotated[str, Field(min_length=1, max_length=64)]
    unit: Unit
    minutes: Annotated[int, Field(strict=True, gt=0, le=24 * 60)]
    skill: Skill | None = None
    provider: Ident = CENTRE
    price_fen: Prices


class Catalogue:
    """The items in force, in the file's order, by id; and the providers, the centre first."""

    def __init__(self, items: list[ServiceItem], providers: list[Provider] | None = None) -> None:
        self.items: tuple[ServiceItem, ...] = tuple(items)
        self._by_id: Mapping[str, ServiceItem] = {item.item_id: item for item in items}
        self.providers: Mapping[str, Provider] = {p.provider_id: p for p in [THE_CENTRE, *(providers or [])]}

    def get(self, item_id: str) -> ServiceItem | None:
        return self._by_id.get(item_id)

    def __len__(self) -> int:
        return len(self.items)


def parse_catalogue(text: str, *, source: str = "catalogue") -> Catalogue:
    """A catalogue from TOML text (``[[item]]`` tables), checked whole; :class:`ConfigError` names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"service catalogue {source} is not TOML: {exc}") from None
    unknown = sorted(set(data) - {"item", "provider"})
    if unknown:
        raise ConfigError(f"service catalogue {source}: unknown table {unknown[0]!r} (items are [[item]])")
    providers = _providers(data.get("provider", []), source)
    raw = data.get("item", [])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"service catalogue {source} has no [[item]]")
    items: list[ServiceItem] = []
    seen: set[str] = set()
    for index, body in enumerate(raw, start=1):
        name = str(body.get("item_id", f"#{index}")) if isinstance(body, dict) else f"#{index}"
        try:
            item = ServiceItem.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "item"
            raise ConfigError(f"service catalogue {source}: item {name}, field {where}: {error['msg']}") from None
        if item.item_id in seen:
            raise ConfigError(f"service catalogue {source}: item {name}, field item_id: listed twice")
        if item.provider != CENTRE and item.provider not in {p.provider_id for p in providers}:
            raise ConfigError(f"service catalogue {source}: item {name}, field provider: {item.provider!r} is not "
                              "the centre nor a [[provider]] of the file")  # fmt: skip
        seen.add(item.item_id)
        items.append(item)
    return Catalogue(items, providers)


def _providers(raw: object, source: str) -> list[Provider]:
    """The file's ``[[provider]]`` tables, checked: no id twice, none that is the centre's."""
    if not isinstance(raw, list):
        raise ConfigError(f"service catalogue {source}: providers are [[provider]] tables")
    providers: list[Provider] = []
    for index, body in enumerate(raw, start=1):
        name = str(body.get("provider_id", f"#{index}")) if isinstance(body, dict) else f"#{index}"
        try:
            provider = Provider.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "provider"
            raise ConfigError(f"service catalogue {source}: provider {name}, field {where}: {error['msg']}") from None
        if provider.provider_id == CENTRE or provider.provider_id in {p.provider_id for p in providers}:
            raise ConfigError(f"service catalogue {source}: provider {name}, field provider_id: taken")
        providers.append(provider)
    return providers


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue of the file at ``path`` (None: the default shipped with the package)."""
    path = path or DEFAULT_CATALOGUE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"service catalogue {path} cannot be read: {exc}") from None
    return parse_catalogue(text, source=str(path))


@functools.cache
def catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue in force for this setting, read once per process (the settings checked it at start)."""
    return load_catalogue(path)


def price_of(item: ServiceItem, mode: Entitlement) -> int:
    """What one unit of ``item`` costs in ``mode``, in fen."""
    return item.price_fen.of(mode)


def mode_for(entitlement: Entitlement | None) -> Entitlement:
    """The service mode an elder is charged in: their entitlement from the needs assessment; an elder with none
    recorded pays the full price (``paid``) until someone records it."""
    return entitlement or "paid"
