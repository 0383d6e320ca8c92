"""The Helm chart: lint, render, offline validation, and the facts that keep data safe.

Rendering uses the real helm binary; built-in kinds are validated with kubernetes_validate
against Kubernetes 1.32's schemas; custom resources against their CRD's openAPIV3Schema
(StoreMigration, KopfPeering) or structurally (Prometheus Operator kinds, whose CRDs the
chart does not ship).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from app.settings import Settings

from tests.chart.render import (
    CHART,
    KUBE_VERSION,
    PRODUCTION_VALUES,
    ROOT,
    Docs,
    find,
    pod_specs,
    run_helm,
    template,
)

POST_MIGRATION_VALUES = CHART / "ci" / "post-migration-values.yaml"
CUSTOM_GROUPS = ("monitoring.coreos.com/", "kopf.dev/", "migrations.storemigration.dev/")
ROOT_CRD = ROOT / "crds" / "storemigrations.yaml"
CHART_CRD = CHART / "crds" / "storemigrations.yaml"

SPEC_ALERTS = {
    "StoreMigrationPostgresLatencyHigh",  # p95 query latency > 500 ms
    "StoreMigrationPostgresQueryFailuresHigh",  # failed queries > 1% of total
    "StoreMigrationPostgresPoolExhausted",  # connection pool exhausted
    "StoreMigrationDualWriteFailures",  # dual-write consistency failures
    "StoreMigrationConsistencyMismatchHigh",  # > 1% of sampled records inconsistent
    "StoreMigrationVerifyJobStale",  # verification job fails to run
    "StoreMigrationVerifyJobNeverSucceeded",  # ... or never ran
    "StoreMigrationRolledBack",  # rollbacks happening
    "StoreMigrationOperatorMetricsAbsent",  # the operator itself gone (issue 16)
}
REPLICATION_ALERT = "StoreMigrationPostgresReplicationLagHigh"  # replication lag > 10 s
BACKUP_ALERTS = {"StoreMigrationBackupFailed", "StoreMigrationBackupStale"}  # backup.enabled

LEAST_PRIVILEGE = {
    ("migrations.storemigration.dev", "storemigrations"): {"get", "list", "watch", "patch"},
    ("migrations.storemigration.dev", "storemigrations/status"): {"patch"},
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "events"): {"create", "patch"},
    ("", "configmaps"): {"get", "create", "patch"},  # the live switches' ConfigMap
    ("", "secrets"): {"get"},  # ADMIN_TOKEN for the admin switches endpoint (one name)
}


def crd_schema(crd: dict[str, Any]) -> dict[str, Any]:
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_custom(doc: dict[str, Any], crd: dict[str, Any]) -> None:
    """OpenAPI v3.0 schemas are draft-4 shaped (boolean exclusiveMinimum)."""
    jsonschema.Draft4Validator(crd_schema(crd)).validate(doc)


def unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the API server would silently prune (jsonschema alone would accept them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(value, dict):
        return []
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return [f for k, v in value.items() for f in unknown_fields(v, extra, f"{where}.{k}")]
        return []
    out = [f"{where}.{k}" for k in value if k not in props]
    return out + [f for k, v in value.items() if k in props
                  for f in unknown_fields(v, props[k], f"{where}.{k}")]


def load_crds(path: Any) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return {d["spec"]["names"]["kind"]: d for d in docs}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def rbac_rules(docs: Docs) -> dict[tuple[str, str], set[str]]:
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    assert len(roles) == 1
    out: dict[tuple[str, str], set[str]] = {}
    for rule in roles[0]["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.fixture(scope="module")
def post_migration_docs() -> Docs:
    """Production values with the post-migration overlay, as the checklist applies them."""
    return template("-f", str(PRODUCTION_VALUES), "-f", str(POST_MIGRATION_VALUES))


@pytest.mark.parametrize("values", [
    [], ["-f", str(PRODUCTION_VALUES)],
    ["-f", str(PRODUCTION_VALUES), "-f", str(POST_MIGRATION_VALUES)],
], ids=["default", "production", "post-migration"])
def test_lint_strict(values: list[str]) -> None:
    done = run_helm("lint", "--strict", str(CHART), *values)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("fixture", ["default_docs", "production_docs", "post_migration_docs"])
def test_every_manifest_validates_offline(fixture: str, request: pytest.FixtureRequest) -> None:
    docs: Docs = request.getfixturevalue(fixture)
    crds = {d["spec"]["names"]["kind"]: d for d in docs
            if d["kind"] == "CustomResourceDefinition"}
    builtin = 0
    for doc in docs:
        if doc["apiVersion"].startswith(CUSTOM_GROUPS):
            kind = doc["kind"]
            if kind in crds:
                validate_custom(doc, crds[kind])
            elif kind == "StoreMigration":
                pytest.fail("StoreMigration rendered but its CRD is missing from the chart")
            else:
                assert kind in ("PrometheusRule", "ServiceMonitor"), kind
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        builtin += 1
    assert builtin >= 8


def test_api_runs_one_replica_with_recreate_and_a_journal_volume(default_docs: Docs) -> None:
    api = find(default_docs, "Deployment", "-api")
    assert api["spec"]["replicas"] == 1
    assert api["spec"]["strategy"] == {"type": "Recreate"}
    pod = api["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(container)
    assert container["command"] == ["python", "-m", "app"]
    assert env["DATA_DIR"] == "/data"
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    claim = next(v for v in pod["volumes"] if v["name"] == "data")["persistentVolumeClaim"]
    pvc = find(default_docs, "PersistentVolumeClaim", "-api-data")
    assert claim["claimName"] == pvc["metadata"]["name"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/ready"
    switches = find(default_docs, "ConfigMap", "-switches")
    for name in ("DUAL_WRITE_MODE", "READ_FROM_POSTGRES_PERCENT", "IN_MEMORY_WRITES",
                 "REHYDRATE_ON_START"):
        assert env[name] == {"configMapKeyRef": {"name": switches["metadata"]["name"],
                                                 "key": name, "optional": True}}, name
    assert switches["data"] == {"DUAL_WRITE_MODE": "false", "READ_FROM_POSTGRES_PERCENT": "0",
                                "IN_MEMORY_WRITES": "true"}
    assert env["STORE_BACKEND"] == "memory"
    for name in ("POSTGRES_POOL_SIZE", "POSTGRES_MAX_OVERFLOW", "POSTGRES_POOL_TIMEOUT",
                 "POSTGRES_POOL_RECYCLE", "SECOND_WRITE_TIMEOUT", "READY_TIMEOUT", "PORT"):
        assert name in env


@pytest.mark.parametrize("fixture", ["default_docs", "production_docs", "post_migration_docs"])
def test_every_pod_runs_non_root_with_a_read_only_root(fixture: str,
                                                       request: pytest.FixtureRequest) -> None:
    specs = pod_specs(request.getfixturevalue(fixture))
    assert specs
    for name, pod in specs:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, name


@pytest.mark.parametrize("fixture", ["default_docs", "production_docs"])
def test_operator_rbac_is_exactly_least_privilege(fixture: str,
                                                  request: pytest.FixtureRequest) -> None:
    docs: Docs = request.getfixturevalue(fixture)
    want = dict(LEAST_PRIVILEGE)
    want[("kopf.dev", "kopfpeerings")] = {"get", "list", "watch", "patch"}
    assert rbac_rules(docs) == want
    binding = find(docs, "RoleBinding")
    account = find(docs, "ServiceAccount", "-operator")
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]
    assert binding["roleRef"]["name"] == find(docs, "Role")["metadata"]["name"]


def test_operator_without_peering_runs_standalone() -> None:
    docs = template("--set", "operator.peering.enabled=false", include_crds=False)
    assert not [d for d in docs if d["kind"] == "KopfPeering"]
    operator = find(docs, "Deployment", "-operator")["spec"]["template"]["spec"]
    assert "OPERATOR_PEERING" not in env_of(operator["containers"][0])
    assert ("kopf.dev", "kopfpeerings") not in rbac_rules(docs)


def test_cluster_scope_uses_cluster_role_and_cluster_peering() -> None:
    docs = template("--set", "operator.scope=cluster")
    want = dict(LEAST_PRIVILEGE)
    want[("kopf.dev", "clusterkopfpeerings")] = {"get", "list", "watch", "patch"}
    assert rbac_rules(docs) == want
    assert find(docs, "ClusterRoleBinding")["roleRef"]["kind"] == "ClusterRole"
    assert "namespace" not in find(docs, "ClusterKopfPeering")["metadata"]
    operator = find(docs, "Deployment", "-operator")["spec"]["template"]["spec"]
    assert env_of(operator["containers"][0])["WATCH_NAMESPACE"] == ""


def test_production_operator_elects_a_leader_between_two_replicas(production_docs: Docs) -> None:
    operator = find(production_docs, "Deployment", "-operator")
    assert operator["spec"]["replicas"] == 2
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "storemigration_operator"]
    env = env_of(container)
    peering = find(production_docs, "KopfPeering")
    assert env["OPERATOR_PEERING"] == peering["metadata"]["name"] == "store-migration"
    assert env["WATCH_NAMESPACE"] == peering["metadata"]["namespace"] == "sm"
    assert env["OPERATOR_METRICS_PORT"] == "9100"
    probe = container["livenessProbe"]["httpGet"]
    assert env["OPERATOR_LIVENESS"] == "http://0.0.0.0:8080/healthz"
    assert probe == {"path": "/healthz", "port": "health"}
    kinds = {d["spec"]["names"]["kind"] for d in production_docs
             if d["kind"] == "CustomResourceDefinition"}
    assert {"KopfPeering", "ClusterKopfPeering"} <= kinds


def test_production_credentials_come_only_from_the_existing_secret(
        production_docs: Docs) -> None:
    assert not [d for d in production_docs if d["kind"] == "Secret"]
    for name, pod in pod_specs(production_docs):
        for c in pod["containers"]:
            env = env_of(c)
            if "DATABASE_URL" in env:
                ref = env["DATABASE_URL"]["secretKeyRef"]
                key = "MIGRATE_DATABASE_URL" if name.endswith("-migrate") else "DATABASE_URL"
                assert ref == {"name": "store-migration-db", "key": key}, name
    api = find(production_docs, "Deployment", "-api")["spec"]["template"]["spec"]
    env = env_of(api["containers"][0])
    assert env["ADMIN_TOKEN"]["secretKeyRef"]["name"] == "store-migration-db"
    assert env["APP_ENV"] == "production"
    assert env["POSTGRES_SSL_REQUIRED"] == "true"
    resources = api["containers"][0]["resources"]
    assert resources["limits"]["memory"] == "4Gi"
    assert "@sha256:" in api["containers"][0]["image"]


def test_production_backup_cronjob_keeps_thirty_days_and_uploads_to_s3(production_docs: Docs
                                                                      ) -> None:
    """Production dumps daily to the PVC (init container) and then off the cluster to S3
    (the app image). The commands themselves run in tests/postgres/test_backup_restore.py."""
    cron = find(production_docs, "CronJob", "-pg-dump")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = pod["initContainers"]
    assert dump["image"] == "postgres:15"
    env = env_of(dump)
    assert env["RETENTION_DAYS"] == "30"
    assert env["BACKUP_DIR"] == "/backups"
    assert env["DATABASE_URL"]["secretKeyRef"]["name"] == "store-migration-db"
    (upload,) = pod["containers"]
    api = find(production_docs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert upload["image"] == api["image"]
    assert upload["command"][:2] == ["python", "api/scripts/backup_to_s3.py"]
    assert upload["command"][-2:] == ["--dest", "s3://store-migration-backups/prod/pg-dump/"]
    assert upload["envFrom"] == [{"secretRef": {"name": "store-migration-backup-s3"}}]
    assert env_of(upload)["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert (ROOT / "api" / "scripts" / "backup_to_s3.py").exists()
    for container in (dump, upload):
        mount = next(m for m in container["volumeMounts"] if m["name"] == "backups")
        assert mount["mountPath"] == "/backups"
    claim = next(v for v in pod["volumes"] if v["name"] == "backups")["persistentVolumeClaim"]
    assert find(production_docs, "PersistentVolumeClaim", "-backups")["metadata"]["name"] == \
        claim["claimName"]


def test_backup_without_s3_is_one_pg_dump_container() -> None:
    docs = template("--set", "secrets.existingSecret=db", "--set", "backup.enabled=true")
    pod = find(docs, "CronJob", "-pg-dump")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert [c["name"] for c in pod["containers"]] == ["pg-dump"]


def test_production_migrate_hook_runs_before_install_and_upgrade(production_docs: Docs) -> None:
    job = find(production_docs, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "api/scripts/migrate.py"]
    env = env_of(container)
    assert env["APP_DB_PASSWORD"]["secretKeyRef"]["key"] == "APP_DB_PASSWORD"
    assert (ROOT / "api" / "scripts" / "migrate.py").exists(), "the hook's script is missing"


def test_default_install_has_no_migrate_hook_without_a_database(default_docs: Docs) -> None:
    assert not [d for d in default_docs if d["kind"] in ("Job", "CronJob")]
    secret = find(default_docs, "Secret")
    assert set(secret["data"]) == {"ADMIN_TOKEN"}


def test_monitoring_objects(production_docs: Docs) -> None:
    monitors = [d for d in production_docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    services = {tuple(sorted(s["metadata"]["labels"].items())): s
                for s in production_docs if s["kind"] == "Service"}
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for labels, s in services.items() if selector.items() <= dict(labels).items()]
        assert len(matched) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in matched[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in ports
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize(("fixture", "extra"), [
    ("default_docs", set()), ("production_docs", {REPLICATION_ALERT, *BACKUP_ALERTS})])
def test_prometheus_rule_carries_every_spec_alert(fixture: str, extra: set[str],
                                                  request: pytest.FixtureRequest) -> None:
    rule = find(request.getfixturevalue(fixture), "PrometheusRule")
    groups = rule["spec"]["groups"]
    names = {r["alert"] for g in groups for r in g["rules"]}
    assert names == SPEC_ALERTS | extra
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())["groups"]
    assert groups[: len(source)] == source
    for group in groups:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}
            assert r["labels"]["severity"] in ("warning", "critical")
            # absent() answers one series without labels: nothing to name
            assert "{{ $labels" in r["annotations"]["summary"] or "absent(" in r["expr"]


@pytest.mark.parametrize("bad", [
    "api.migration.readFromPostgresPercent=150",
    "api.env.shadowReadPercent=-1",
    "api.env.journalFsync=sometimes",
    "operator.scope=galaxy",
    "backup.schedule=daily",
    "image.digest=latest",
    "api.env.postgresPoolSize=0",
    "unknownValue=1",
])
def test_schema_rejects_bad_values(bad: str) -> None:
    done = run_helm("template", "t", str(CHART), "--set", bad)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr


@pytest.mark.parametrize(("sets", "message"), [
    (["api.replicas=2"], "api.inMemoryRetired"),
    (["secrets.databaseUrl=postgresql://u:p@db/app"], "existingSecret"),
    (["operator.replicas=2", "operator.peering.enabled=false"], "peering"),
    (["backup.enabled=true"], "backup.enabled needs a database"),
    (["api.persistence.journalVolume=false"], "journalVolume=false needs api.env.storeBackend"),
])
def test_chart_refuses_unsafe_combinations(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", s)]
    done = run_helm("template", "t", str(CHART), *args)
    assert done.returncode != 0
    assert message in done.stderr


def test_api_scales_out_only_once_memory_is_retired() -> None:
    docs = template("--set", "api.replicas=3", "--set", "api.inMemoryRetired=true",
                    "--set", "api.persistence.enabled=false", include_crds=False)
    api = find(docs, "Deployment", "-api")
    assert api["spec"]["replicas"] == 3
    assert api["spec"]["strategy"]["type"] == "RollingUpdate"


def test_post_migration_values_drop_the_journal_volume_and_retire_the_router(
    post_migration_docs: Docs, production_docs: Docs,
) -> None:
    api = find(post_migration_docs, "Deployment", "-api")
    pod = api["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "api"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp"]
    assert not [d for d in post_migration_docs if d["kind"] == "PersistentVolumeClaim"
                and d["metadata"]["name"].endswith("-api-data")]
    assert api["spec"]["replicas"] == 2 and api["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    assert env["STORE_BACKEND"] == "postgres"
    dsn = "postgresql://app:x@db.example/app?sslmode=verify-full&sslrootcert=/ca.pem"
    settings = Settings(**{k.lower(): v for k, v in env.items()}, database_url=dsn)
    assert settings.migration_settings_set() == [] and settings.postgres_only(), \
        "the API these values render serves PostgreSQL directly (app.postgres_service)"
    production = find(production_docs, "Deployment", "-api")
    assert "data" in [v["name"] for v in production["spec"]["template"]["spec"]["volumes"]]


def test_chart_crd_is_identical_to_the_repository_crd() -> None:
    assert ROOT_CRD.exists(), "crds/storemigrations.yaml (the source CRD) is missing"
    assert CHART_CRD.exists(), "the chart has no CRD copy: run python scripts/sync_crd.py"
    assert CHART_CRD.read_bytes() == ROOT_CRD.read_bytes(), \
        "chart CRD differs from crds/storemigrations.yaml: run python scripts/sync_crd.py"


def test_example_storemigration_satisfies_the_crd_schema() -> None:
    assert CHART_CRD.exists(), "the chart has no StoreMigration CRD: run scripts/sync_crd.py"
    crd = load_crds(CHART_CRD)["StoreMigration"]
    docs = template("--set", "exampleMigration.enabled=true", include_crds=False)
    example = find(docs, "StoreMigration")
    version = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
    assert example["apiVersion"] == f"{crd['spec']['group']}/{version}"
    validate_custom(example, crd)
    assert unknown_fields(example["spec"], crd_schema(crd)["properties"]["spec"]) == []
    assert example["spec"]["deployment"] == find(docs, "Deployment", "-api")["metadata"]["name"]
    # issue 16: a durable place for the final snapshot, a claim the chart creates and keeps
    claim = find(docs, "PersistentVolumeClaim", "-snapshots")
    assert example["spec"]["snapshotVolume"] == {"claimName": claim["metadata"]["name"]}
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # the full verify and repair Jobs read the API's own database URL, from its Secret
    secret = example["spec"]["adminTokenSecret"]["name"]
    assert example["spec"]["verify"]["databaseSecret"] == {"name": secret, "key": "DATABASE_URL"}
