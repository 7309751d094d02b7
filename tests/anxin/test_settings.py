"""Device port settings, as the process reads them: flags, then ANXIN_* variables, then the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anxin.cli import build_parser, settings_from
from anxin.server import listeners
from dispatch.errors import ConfigError


def ports(tmp_path: Path, *flags: str) -> dict[str, int]:
    settings = settings_from(build_parser().parse_args(["serve", "--data", str(tmp_path), *flags]))
    return {listener.spec.name: listener.port for listener in listeners(settings)}


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for option in ("DC09", "WATCH", "GT06"):
        monkeypatch.delenv(f"ANXIN_{option}_PORT", raising=False)
    assert ports(tmp_path) == {"sia-dc09": 9100, "watch": 9101, "gt06": 9102}


def test_a_file_written_for_the_earlier_release_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "anxin.toml"
    config.write_text('dc09_port = "off"\nwatch_port = 9201\n[device_ports]\ngt06 = 9202\n', encoding="utf-8")
    monkeypatch.setenv("anxin_watch_port", "9301")  # variables are read in any case, as pydantic reads them
    monkeypatch.setenv("ANXIN_METRICS_PORT", "1")  # not a device protocol's: none of ours
    assert ports(tmp_path, "--config", str(config)) == {"watch": 9301, "gt06": 9202}
    assert ports(tmp_path, "--config", str(config), "--watch-port", "9401") == {"watch": 9401, "gt06": 9202}


def test_a_port_that_is_no_port_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "anxin.toml"
    for value in ("true", "9100.5", "70000", '"nine"'):
        config.write_text(f"[device_ports]\ndc09 = {value}\n", encoding="utf-8")
        with pytest.raises(ValueError, match="dc09"):
            ports(tmp_path, "--config", str(config))
    config.write_text("[device_ports]\nzigbee = 9300\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown device protocol option zigbee"):
        ports(tmp_path, "--config", str(config))
