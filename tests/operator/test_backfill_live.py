"""status.backfill while the backfill Job runs: the API's gauges (as Prometheus answers
them) become done/total per kind, percent, rate and ETA in status, read at `now`; the
Job's final result replaces them when it ends. Planner table tests (pure, no clock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storemigration_operator.core.backfill_live import (
    BackfillSample,
    live_progress,
    samples_from,
)
from storemigration_operator.core.model import JobObservation

from .sim import T0, Sim

S = timedelta(seconds=1)


def series(value: float, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1700000000.0, str(value)]}


def test_samples_from_prometheus_vectors_by_run() -> None:
    records = [series(40, run="r1", kind="projects", count="done"),
               series(100, run="r1", kind="projects", count="total"),
               series(50, run="r1", kind="tasks", count="total"),
               series(7, run="old", kind="projects", count="total"),
               series(1, run="r1", kind="projects", count="bogus"), {"metric": "x"}]
    got = samples_from(records, [series(20, run="r1"), series(3, run="old")])
    assert got == (BackfillSample("old", {}, {"projects": 7.0}, 3.0),
                   BackfillSample("r1", {"projects": 40.0}, {"projects": 100.0, "tasks": 50.0},
                                  20.0))
    assert samples_from(None, "not a vector") == ()


def test_live_progress_percent_rate_eta_in_foreign_key_order() -> None:
    sample = BackfillSample("r1", {"tasks": 0, "projects": 40},
                            {"tasks": 50, "projects": 100}, 20.0)
    p = live_progress((BackfillSample("r0", {}, {"projects": 1}), sample), "r1", T0)
    assert p is not None
    assert (p.run, p.done, p.total, p.percent) == ("r1", 40, 150, 26.67)
    assert (p.rate_per_second, p.eta_seconds, p.finished) == (20.0, 5.5, False)
    assert list(p.kinds) == ["projects", "tasks"] and p.observed_at == T0
    assert live_progress((sample,), "another-run", T0) is None
    idle = live_progress((BackfillSample("r1", {}, {"projects": 10}, 0.0),), "r1", T0)
    assert idle is not None and idle.rate_per_second is None and idle.eta_seconds is None


def test_status_shows_the_backfill_live_while_its_job_runs_then_the_jobs_result() -> None:
    outcome: dict[str, tuple[str, dict[str, Any] | None]] = {"backfill": ("Running", None)}
    sim = Sim({"deployment": "api", "targetPhase": "DualWrite"})
    sim.job_outcome = lambda kind: outcome.get(kind, ("Succeeded", {"mismatch_ratio": 0.0}))
    sim.tick()
    sim.run_until(lambda: "sm-backfill-1" in sim.jobs, S, limit=10)
    run = dict(next(r for p in sim.plans for r in p.jobs if r.name == "sm-backfill-1").env
               )["BACKFILL_RUN"]
    done = {"projects": 0.0}
    sim.backfill = lambda now: (
        BackfillSample("stale-run", {"projects": 99}, {"projects": 99}, 1.0),
        BackfillSample(run, dict(done), {"projects": 200, "tasks": 100}, 25.0))
    seen = []
    for step in (60, 150, 210):
        done.update(projects=min(step, 200), tasks=max(0, step - 200))
        sim.tick(S)
        b = sim.status["backfill"]
        seen.append((b["done"], b["percent"], b["etaSeconds"]))
        assert b["run"] == run and b["total"] == 300 and b["observedAt"]
        assert b["kinds"]["projects"] == {"done": min(step, 200), "total": 200}
    assert seen == [(60, 20.0, 9.6), (150, 50.0, 6.0), (210, 70.0, 3.6)]
    sim.backfill = lambda now: ()  # Prometheus unreachable: the last reading stays
    sim.tick(S)
    assert sim.status["backfill"]["done"] == 210
    sim.jobs["sm-backfill-1"] = JobObservation("sm-backfill-1", "Succeeded", {
        "run": run, "done": 300, "total": 300, "percent": 100.0, "rate_per_second": 24.0,
        "eta_seconds": 0.0, "finished": True,
        "kinds": {"projects": {"done": 200, "total": 200},
                  "tasks": {"done": 100, "total": 100}}}, sim.now)
    sim.tick(S)
    b = sim.status["backfill"]
    assert b["finished"] and b["percent"] == 100.0 and "observedAt" not in b


def test_the_kubectl_plugin_shows_the_live_backfill() -> None:
    from kubectl_storemigration.view import render, view

    live = live_progress((BackfillSample("r1", {"projects": 40}, {"projects": 100, "tasks": 50},
                                         20.0),), "r1", T0)
    assert live is not None
    obj = {"metadata": {"name": "sm", "namespace": "default"}, "spec": {"deployment": "api"},
           "status": {"phase": "DualWrite",
                      "backfill": live.model_dump(mode="json", by_alias=True)}}
    text = render(obj, T0 + 2 * S)
    line = next(x for x in text.splitlines() if x.startswith("Backfill:"))
    assert line == ("Backfill:    running 26.67% (40/150), 20/s, ETA 5s (live, read "
                    f"{T0.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} (2s ago));"
                    " projects 40/100, tasks 0/50; run r1"), line
    assert view(obj, T0)["backfill"]["percent"] == 26.67
