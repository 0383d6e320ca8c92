"""A real Prometheus server (Debian's package) scraping local targets every second.

Used wherever metrics gate the rollout: the operator queries it exactly as it would a
cluster's Prometheus. Started with its own data directory and port; never the
system-wide service.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from devcluster.net import free_port, wait_http


class PrometheusMissing(RuntimeError):
    pass


@dataclass
class LocalPrometheus:
    workdir: Path
    targets: dict[str, list[str]]
    scrape_seconds: float = 1.0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalPrometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusMissing("prometheus is not installed: run scripts/bootstrap.sh")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self._write_config()
        log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped by us, not by the terminal's Ctrl-C
        )
        wait_http(f"{self.url}/-/ready", timeout=timeout)
        return self

    def _write_config(self) -> Path:
        config = {
            "global": {"scrape_interval": f"{self.scrape_seconds:g}s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]}
                for job, targets in self.targets.items()
            ],
        }
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        return cfg

    def set_targets(self, job: str, targets: list[str]) -> None:
        """Scrape these instances for `job` from now on (pods come and go in a rollout);
        the rates the gates read are per instance, so a new pod's counters start clean."""
        if self.targets.get(job) == targets:
            return
        self.targets[job] = list(targets)
        self._write_config()
        if self.process is not None and self.process.poll() is None:
            httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
