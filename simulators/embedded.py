"""The drill's own server: a fresh data folder, a seeded city, ``anxin serve`` as a subprocess on free ports.

What it owns
    :class:`EmbeddedServer` generates the scenario's city (:mod:`simulators.city`), imports its elders and
    responders with ``anxin import`` (not its devices: the drill registers its own devices, marked drill,
    over the API), starts ``anxin serve`` on free loopback ports with the timers of the drill's speed-up,
    waits for it to answer, and stops it (SIGTERM, then SIGKILL) afterwards.

Rules
    1. Loopback only: HTTP and every device listener bind 127.0.0.1.
    2. The server runs its own timers ``speedup`` times faster (answer target and offer expiry divided by
       the speed-up), so that the whole drill runs on one clock: the drill's time. Matching, position
       staleness and everything else keep their defaults.
    3. The admin password is generated for the run and passed in the environment, never printed.
    4. The data folder must be new or empty: a drill never mixes with an existing journal.

Never
    Never import the server's packages: the server is a separate process, driven through its CLI and API.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from simulators import city
from simulators.scenario import Scenario

ANSWER_TARGET_S = 60.0  # the server's defaults (README "Settings"), divided by the speed-up here
OFFER_TIMEOUT_S = 45.0
HOST = "127.0.0.1"
#: connections one address may hold on a listener of the drill's server (the whole fleet shares loopback)
FLEET_PER_ADDRESS = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedServerError(Exception):
    """The embedded server could not be prepared or did not start."""


class EmbeddedServer:
    def __init__(self, data: Path, scenario: Scenario) -> None:
        if data.exists() and any(data.iterdir()):
            raise EmbeddedServerError(f"{data} is not empty: a drill starts from a fresh data folder")
        self.data = data
        self.scenario = scenario
        self.admin_password = secrets.token_urlsafe(18)
        self.http_port = free_port()
        self.ports = {"sia-dc09": free_port(), "watch": free_port(), "gt06": free_port()}
        self.files: dict[str, Path] = {}
        self.log = data / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def prepare(self) -> None:
        """Generate the city and import its elders and responders (the server is not running yet)."""
        plan = self.scenario.city
        self.data.mkdir(parents=True, exist_ok=True)
        self.files = city.generate(
            self.data / "seed", seed=plan.seed, elders=plan.elders, caregivers=plan.caregivers, clinics=plan.clinics
        )
        done = self._cli("import", "--elders", str(self.files["elders"]), "--responders", str(self.files["responders"]))
        if done.returncode != 0:
            raise EmbeddedServerError(f"anxin import failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout: float = 60.0) -> None:
        speedup = self.scenario.speedup
        env = {
            **os.environ,
            "ANXIN_ADMIN_PASSWORD": self.admin_password,
            "ANXIN_HOST": HOST,
            "ANXIN_GATEWAY_HOST": HOST,
            "ANXIN_ANSWER_TARGET_S": repr(ANSWER_TARGET_S / speedup),
            "ANXIN_OFFER_TIMEOUT_S": repr(OFFER_TIMEOUT_S / speedup),
            # every simulated device connects from 127.0.0.1, as a fleet behind one carrier NAT does: the default
            # 256 connections per address would turn most of a 2,000-device fleet away (docs/security.md)
            "ANXIN_DEVICE_MAX_PER_ADDRESS": str(FLEET_PER_ADDRESS),
        }
        command = [sys.executable, "-m", "anxin", "serve", "--data", str(self.data)]
        command += ["--http-port", str(self.http_port)]
        command += ["--dc09-port", str(self.ports["sia-dc09"]), "--watch-port", str(self.ports["watch"])]
        command += ["--gt06-port", str(self.ports["gt06"])]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedServerError(f"the server exited ({self._proc.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EmbeddedServerError(f"the server did not answer within {timeout:g} s; see {self.log}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "anxin", args[0], "--data", str(self.data), *args[1:]]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
