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

import yaml

from devcluster.net import free_port, wait_http


class PrometheusMissing(RuntimeError):
    pass


@dataclass
class LocalPrometheus:
    workdir: Path
    targets: dict[str, str]
    scrape_interval: str = "1s"
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
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in self.targets.items()
            ],
        }
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
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

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
