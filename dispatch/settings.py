"""One typed settings object, from a TOML file and ``ANXIN_*`` environment variables.

Precedence, highest first: values passed in code (the CLI's flags), environment variables, the file named
by ``ANXIN_CONFIG`` (or ``--config``), the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANXIN_", extra="forbid")

    data: Path = Path("data")
    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    timezone: str = "Asia/Shanghai"

    # timers (seconds)
    answer_target_s: float = Field(60.0, gt=0)
    offer_timeout_s: float = Field(45.0, gt=0)
    max_offers: int = Field(3, ge=1)
    position_stale_s: float = Field(1800.0, gt=0)
    checkin_grace: float = Field(1.2, ge=1.0)  # a device is missing after checkin_s × this

    # device gateway (None: listener off)
    gateway_host: str = "0.0.0.0"
    dc09_port: int | None = Field(9100, ge=0, le=65535)
    watch_port: int | None = Field(9101, ge=0, le=65535)
    gt06_port: int | None = Field(9102, ge=0, le=65535)

    # matching
    match_radius_m: float = Field(5000.0, gt=0)
    match_k: int = Field(5, ge=1, le=50)
    own_caregiver_m: float = Field(2000.0, ge=0)
    clinic_radius_m: float = Field(20000.0, gt=0)

    # pages: a map tile URL template with {z}, {x} and {y} (e.g. a tile server inside the centre's network);
    # None draws the incident map on a plain background with a scale bar (no internet needed)
    map_tiles: str | None = None

    # auth
    admin_password: str | None = None
    token_ttl_s: float = Field(12 * 3600.0, gt=0)

    config: Path | None = None

    @field_validator("dc09_port", "watch_port", "gt06_port", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("off", "none", "") else value

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
        return (init_settings, env_settings, _ConfigFile(settings_cls, init_settings, env_settings))

    @property
    def db_path(self) -> Path:
        return self.data / "anxin.sqlite3"


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
        return TomlConfigSettingsSource(self.settings_cls, toml_file=Path(path))()
