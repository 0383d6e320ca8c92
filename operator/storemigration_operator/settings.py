"""Everything the operator reads from its environment, in one pydantic-settings model.

Names are the ones the chart sets (charts/store-migration/templates/operator-deployment.yaml)
and the local cluster uses (devcluster/cluster.py). Nothing else in the operator reads
os.environ. Values read at import (the timer interval kopf registers, the Kubernetes client
timeouts) come from one load; the rest are read per reconcile, so a test that changes a
variable sees it at once.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATOR_", env_ignore_empty=True,
                                      extra="ignore", frozen=True)

    watch_namespace: str | None = Field(None, validation_alias=AliasChoices("WATCH_NAMESPACE"),
                                        description="Watch only this namespace (unset or "
                                        "empty: cluster-wide).")
    peering: str | None = Field(None, description="kopf peering name: one active operator "
                                "among replicas (unset: standalone).")
    verbose: bool = Field(False, description="kopf's verbose logging.")
    liveness: str | None = Field(None, description="kopf's liveness endpoint, e.g. "
                                 "http://0.0.0.0:8080/healthz.")
    timer_interval: float = Field(60.0, gt=0, description="Seconds between timer "
                                  "reconciles of each StoreMigration.")
    retry_delay: float = Field(15.0, ge=0, description="Seconds before a reconcile that "
                               "could not reach the cluster is retried.")
    conflict_delay: float = Field(1.0, ge=0, description="Seconds before a reconcile that "
                                  "lost a status write race is planned again.")
    kube_connect_timeout: float = Field(5.0, gt=0, description="Kubernetes API connect "
                                        "timeout, seconds.")
    kube_read_timeout: float = Field(30.0, gt=0, description="Kubernetes API read timeout, "
                                     "seconds.")
    metrics_port: int | None = Field(None, description="Serve the operator's metrics on "
                                     "this port (unset: not served).")
    metrics_addr: str = Field("0.0.0.0", description="Address the metrics server binds.")
    switch_timeout: float = Field(130.0, gt=0, description="Seconds for one API pod to "
                                  "answer PUT /api/admin/switches (a rollback from "
                                  "PostgresPrimary rebuilds memory before it answers).")
    prometheus_timeout: float = Field(10.0, gt=0, description="Seconds per Prometheus query.")
    gate_readings_file: Path | None = Field(None, description="A JSON file of readings that "
                                            "stands in for Prometheus (tests, drills).")
    prometheus_url: str | None = Field(None, validation_alias=AliasChoices("PROMETHEUS_URL"),
                                       description="Prometheus when spec.gates.prometheusURL "
                                       "is unset.")
    kubeconfig: str | None = Field(None, validation_alias=AliasChoices("KUBECONFIG"),
                                   description="Kubeconfig file (else in-cluster credentials).")
    kubernetes_service_host: str | None = Field(
        None, validation_alias=AliasChoices("KUBERNETES_SERVICE_HOST"),
        description="Set by Kubernetes in a pod: use the service account.")
