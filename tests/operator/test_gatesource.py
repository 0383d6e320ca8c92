"""Prometheus as the operator meets it over HTTP: a server that never answers, and answers
in shapes a gate cannot compare with a ceiling."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from storemigration_operator.core.spec import Gates
from storemigration_operator.gatesource import PrometheusGateSource


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """Accepts connections (the kernel's backlog) and never answers a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


async def test_a_hung_prometheus_times_out_and_leaves_the_default_executor_free(silent_port):
    source = PrometheusGateSource(f"http://127.0.0.1:{silent_port}", timeout=0.3)
    readings = await asyncio.gather(*[source.read(Gates()) for _ in range(8)])
    assert all(r.error for r in readings)
    assert any("still running" in (r.error or "") for r in readings)  # no thread pile-up
    # the Kubernetes calls' executor was never touched: a to_thread call runs at once
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "deployment read"), 5) == \
        "deployment read"
    later = await source.read(Gates())  # the stuck evaluation ended by its own timeout
    assert later.error and "still running" not in later.error


async def test_kubernetes_calls_time_out_on_a_hung_api_server(silent_port, tmp_path,
                                                               monkeypatch):
    from storemigration_operator import cluster

    from devcluster.kube import write_kubeconfig

    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setitem(cluster.RAW, "_request_timeout", (0.3, 0.3))
    for call in (lambda: cluster.read_deployment("default", "api"),
                 lambda: cluster.observe_jobs("default", "sm")):
        with pytest.raises(Exception, match="(?i)timed? ?out"):
            await asyncio.wait_for(asyncio.to_thread(call), 20)
