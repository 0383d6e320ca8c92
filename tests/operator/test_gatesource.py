"""Prometheus as the operator meets it over HTTP: a server that never answers, and answers
in shapes a gate cannot compare with a ceiling."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from storemigration_operator.core.promresult import ResultShapeError, sample_value
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


def serve(result: Any) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"status": "success", "data": {"resultType": "x",
                                                             "result": result}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("result,expected", [
    ([], None),
    ([{"metric": {}, "value": [1, "0.25"]}], 0.25),
    ([{"metric": {"pod": "a"}, "value": [1, "0.1"]},
      {"metric": {"pod": "b"}, "value": [1, "0.7"]}], 0.7),  # several series: the worst
    ([1, "3"], 3.0),  # a scalar
    ([{"metric": {}, "value": [1, "+Inf"]}], math.inf),
])
def test_result_shapes_that_give_one_number(result, expected):
    assert sample_value(result, "p95") == expected


@pytest.mark.parametrize("result,reason", [
    ([{"metric": {}, "values": [[1, "0.1"], [2, "0.2"]]}], "range vector"),
    ([{"metric": {}, "value": [1, "abc"]}], "not a number"),
    ("ok", "instant vector or a scalar"),
])
def test_other_shapes_are_an_error_with_a_reason(result, reason):
    with pytest.raises(ResultShapeError, match=reason):
        sample_value(result, "p95")


async def test_a_matrix_answer_is_an_error_reading_naming_the_gate():
    server, url = serve([{"metric": {}, "values": [[1, "0.1"]]}])
    try:
        readings = await PrometheusGateSource(url, timeout=5).read(Gates())
    finally:
        server.shutdown()
    assert readings.error and "gate errorRate" in readings.error and "range vector" in \
        readings.error


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
