"""The API as a real process: one pod of the Deployment (devcluster.controller starts one
per replica, each on its own port, and replaces them on a pod-template change), or the
single process the script and docs tests run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devcluster.net import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


@dataclass
class LocalApi:
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None, timeout: float = 30.0,
              ready_path: str = "/api/health") -> None:
        """Start it and wait for `ready_path` (the controller waits for /api/ready, as a
        readiness probe would, before the pod joins the Service)."""
        if env is not None:
            self.env = dict(env)
        full = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        full.update(self.env)
        full.update(
            PYTHONPATH=os.pathsep.join([str(ROOT / "api"), str(ROOT)]),
            HOST="127.0.0.1",
            PORT=str(self.port),
            DATA_DIR=str(self.data_dir),
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the process
        # Its own session: a Ctrl-C in the demo's terminal reaches only the demo, which
        # then stops every process in order (demo --keep).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"], env=full, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_http(f"{self.url}{ready_path}", timeout=timeout)
        except TimeoutError:
            code = self.process.poll()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"API did not start (exit {code}):\n{tail}") from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, env: dict[str, str]) -> None:
        self.stop()
        self.restarts += 1
        self.start(env)
