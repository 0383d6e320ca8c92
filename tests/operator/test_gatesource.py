"""Prometheus as the operator meets it over HTTP: a server that never answers, answers in
shapes a gate cannot compare with a ceiling, and a real Prometheus whose p50/p95/p99 the
default queries read."""

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
from storemigration_operator.core.gates import evaluate
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


@pytest.fixture(scope="module")
def latency_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping an exporter of the API's own metric names, fed a fixed mix
    of latencies: per 100 PostgreSQL operations 60 under 5 ms, 32 under 50 ms, 6 under 0.5 s
    and 2 under 5 s (buckets 0.005/0.05/0.5/5), so p50 falls in the first bucket, p95 in the
    third and p99 in the fourth."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

    from devcluster.net import free_port
    from devcluster.prometheus import LocalPrometheus, PrometheusMissing

    registry = CollectorRegistry()
    hist = Histogram("storemigration_store_operation_duration_seconds", "store latency",
                     ["store", "backend", "operation"], buckets=(0.005, 0.05, 0.5, 5),
                     registry=registry)
    ops = Counter("storemigration_store_operations_total", "store calls",
                  ["store", "backend", "operation", "outcome"], registry=registry)
    ops.labels("graph", "postgres", "get", "error")  # exported at 0: the error rate is 0
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def feed() -> None:
        mix = [0.004] * 60 + [0.04] * 32 + [0.4] * 6 + [4.0] * 2
        while not stop.wait(0.05):
            for seconds in mix:
                hist.labels("graph", "postgres", "get").observe(seconds)
                hist.labels("graph", "memory", "get").observe(9.0)  # never counted
            ops.labels("graph", "postgres", "get", "ok").inc(len(mix))

    threading.Thread(target=feed, daemon=True).start()
    prom = LocalPrometheus(tmp_path_factory.mktemp("prom"), {"api": [f"127.0.0.1:{port}"]})
    try:
        prom.start()
    except PrometheusMissing as e:
        stop.set()
        server.shutdown()
        pytest.skip(str(e))
    try:
        yield prom.url
    finally:
        stop.set()
        prom.stop()
        server.shutdown()


async def test_p50_p95_p99_are_read_from_a_real_prometheus_and_gated(latency_prometheus):
    gates = Gates.model_validate({"window": "30s", "interval": "1s", "minRequests": 10,
                                  "p50CeilingSeconds": 0.01, "p99CeilingSeconds": 1.0})
    source = PrometheusGateSource(latency_prometheus, timeout=5)
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # rate() needs two scrapes in the window, and each quantile is its own query
        readings = await source.read(gates)
        quantiles = (readings.p50_seconds, readings.p95_seconds, readings.p99_seconds)
        if all(q is not None for q in quantiles) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert readings.error is None, readings.error
    assert readings.p50_seconds is not None and 0 < readings.p50_seconds <= 0.005
    assert readings.p95_seconds is not None and 0.05 < readings.p95_seconds <= 0.5
    assert readings.p99_seconds is not None and 0.5 < readings.p99_seconds <= 5
    assert readings.requests is not None and readings.requests >= 10
    assert readings.error_rate == 0
    verdict = evaluate(readings, gates)
    assert verdict.result.value == "Failed", verdict.reason  # p99 above its 1 s ceiling
    assert "p99" in verdict.reason and "p50" not in verdict.reason and "p95" not in \
        verdict.reason
    relaxed = gates.model_copy(update={"p99_ceiling_seconds": 5.0})
    assert evaluate(readings, relaxed).result.value == "Successful"
