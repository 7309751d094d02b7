"""The example alerting rules (docs/alerts/anxin-rules.yml): valid for Prometheus, doing what their unit tests say,
and naming only metrics a real server exposes.

``promtool`` is Debian's ``prometheus`` package: without it these tests skip, loudly, and under CI=true they fail.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, require_program
from tests.process import ROOT, ServerProcess

ALERTS = ROOT / "docs" / "alerts"
RULES = ALERTS / "anxin-rules.yml"
#: the series Prometheus makes itself for every target, not the server
PROMETHEUS_OWN = {"up"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_program("promtool"), *args], capture_output=True, text=True, cwd=ALERTS, timeout=60)


def test_promtool_finds_the_rules_valid() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_the_rules_fire_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", "anxin-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def expressions(text: str) -> list[str]:
    """Every ``expr`` of a rules file, on one line or folded (``>-``) over the more indented lines below it."""
    found: list[str] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        head, _, rest = line.partition("expr:")
        if not rest or head.strip() not in ("", "-"):
            continue
        rest = rest.strip()
        if rest not in (">-", ">", "|", "|-"):
            found.append(rest)
            continue
        indent = len(head) + 1
        folded = []
        for below in lines[number + 1 :]:
            if below.strip() and len(below) - len(below.lstrip()) <= indent:
                break
            folded.append(below.strip())
        found.append(" ".join(folded))
    return found


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (label names and functions are not followed by them)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    names = set(re.findall(r"\b(anxin_[a-z0-9_]+)\b", without_labels))
    return names | {name for name in PROMETHEUS_OWN if re.search(rf"\b{name}\b", without_labels)}


def test_the_rules_read_the_expressions_as_written() -> None:
    assert expressions("  - expr: a == 0\n    expr: >-\n      b\n      and c\n    for: 1m\n") == ["a == 0", "b and c"]
    assert metric_names('increase(anxin_x_total{protocol="y"}[5m]) > 0 or up{job="anxin"} == 0') == {
        "anxin_x_total",
        "up",
    }


@pytest.mark.process
def test_every_metric_the_rules_use_is_in_a_real_scrape(tmp_path: Path) -> None:
    used = set().union(*map(metric_names, expressions(RULES.read_text(encoding="utf-8")))) - PROMETHEUS_OWN
    assert len(used) >= 6, used
    server = ServerProcess(tmp_path / "data", ANXIN_DC09_PORT=str(free_port()))
    server.start()
    try:
        answer = httpx.get(f"{server.url}/metrics", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    exposed = {sample.name for family in text_string_to_metric_families(answer.text) for sample in family.samples}
    assert used - exposed == set(), f"the rules name metrics the server does not expose: {sorted(used - exposed)}"
