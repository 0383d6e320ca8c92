"""Every switch the API reads, validated once at start-up (pydantic-settings).

A bad value is refused with a message naming the variable (`ConfigurationError`; the
entry point turns it into a non-zero exit), so the service never starts half-configured.
TASK_ROUTING is parsed here, once, into the typed routing table the task stores use. The
migration switches resolve, per store, into a `StoreMode` that the migration router
follows; per-store overrides (GRAPH_STORE_*, AGENT_TASK_STORE_*) let each store move on
its own. A StoreMode is validated when it is built, so the same rules refuse a bad
combination whether it comes from the environment at start-up or from the admin endpoint
that changes the switches while the process serves (app.migration.switches). Once every
store's backend is postgres and no migration setting is away from its default
(`postgres_only`), the migration is retired and `python -m app` serves PostgreSQL alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.tasks import DEFAULT_ROUTING, ModelAssignment
from app.models import TaskType

Percent = Annotated[int, Field(ge=0, le=100)]
ShadowPercent = Annotated[float, Field(ge=0, le=100)]
StoreName = Literal["graph", "agent_task"]
Backend = Literal["memory", "postgres"]
STORES: tuple[StoreName, ...] = ("graph", "agent_task")
SWITCHES = ("dual_write", "read_percent", "memory_writes", "shadow_read_percent", "backend")
# The settings that drive the migration besides the backend (STORE_BACKEND and the
# per-store *_STORE_BACKEND): any of them away from its default keeps the migration
# router in front of the stores (Settings.postgres_only).
MIGRATION_SETTINGS = (
    "dual_write_mode", "read_from_postgres_percent", "in_memory_writes", "rehydrate_on_start",
    "shadow_read_percent",
    *(f"{store}_store_{flag}" for store in STORES
      for flag in ("dual_write_mode", "read_from_postgres_percent", "in_memory_writes")),
)
# Modes that check the server's certificate; `require` only encrypts, so a machine in
# the middle can pose as the server and collect the credentials.
VERIFIED_SSLMODES = frozenset({"verify-ca", "verify-full"})


def incoherence(mode: StoreMode) -> tuple[str, str] | None:
    """The first rule `mode` breaks, as (the switch to change, why), or None. Each rule
    is a way to serve wrong answers or lose data; messages name the env variables."""
    prefix = f"{mode.store.upper()}_STORE_"
    if (mode.dual_write or mode.backend == "postgres") and not mode.postgres_configured:
        return "dual_write" if mode.dual_write else "backend", (
            f"DATABASE_URL must be set when DUAL_WRITE_MODE ({prefix}DUAL_WRITE_MODE) "
            "is true or STORE_BACKEND=postgres"
        )
    if mode.dual_write and not mode.memory_writes and mode.read_percent != 100:
        return "memory_writes", (
            f"IN_MEMORY_WRITES ({prefix}IN_MEMORY_WRITES)=false requires "
            "READ_FROM_POSTGRES_PERCENT=100: memory would serve stale reads"
        )
    if mode.read_percent > 0 and not mode.dual_write and mode.backend == "memory":
        return "read_percent", (
            f"READ_FROM_POSTGRES_PERCENT ({prefix}READ_FROM_POSTGRES_PERCENT)="
            f"{mode.read_percent} requires DUAL_WRITE_MODE ({prefix}DUAL_WRITE_MODE)"
            "=true: without dual-write PostgreSQL misses every new write, so reads "
            "from it would answer stale data and wrong 404s"
        )
    if not mode.dual_write and not mode.memory_writes and mode.backend == "memory":
        return "memory_writes", (
            f"IN_MEMORY_WRITES ({prefix}IN_MEMORY_WRITES)=false requires DUAL_WRITE_MODE"
        )
    return None


class StoreMode(BaseModel):
    """How one store is served: its switches and what they amount to. Immutable, and
    valid by construction (`incoherence`); the router swaps a whole StoreMode to change
    a store's routing. `mirror_to_memory` is never set from the environment: it marks
    the moment of a live rollback from PostgreSQL-primary while memory is rebuilt
    (PostgreSQL still trusted, each write's result also put into memory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: StoreName
    postgres_configured: bool
    dual_write: bool
    memory_writes: bool
    read_percent: Percent
    backend: Backend
    shadow_read_percent: ShadowPercent = 0.0
    mirror_to_memory: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> StoreMode:
        broken = incoherence(self)
        if broken is not None:
            field, message = broken
            raise PydanticCustomError("incoherent_switches", message, {"field": field})
        return self

    def switches(self) -> dict[str, Any]:
        """The five switches, as the admin endpoint reads and writes them."""
        return {name: getattr(self, name) for name in SWITCHES}

    @property
    def write_target(self) -> str:
        if self.backend == "postgres" or (self.dual_write and not self.memory_writes):
            return "postgres"
        return "dual" if self.dual_write else "in-memory"

    @property
    def read_target(self) -> str:
        if self.write_target == "postgres" or self.read_percent == 100:
            return "postgres"
        return "in-memory" if self.read_percent == 0 else "split"

    @property
    def effective_read_percent(self) -> int:
        return 100 if self.write_target == "postgres" else self.read_percent

    @property
    def effective_shadow_percent(self) -> float:
        """Shadow reads compare two stores that both receive every write: dual-write only."""
        return self.shadow_read_percent if self.write_target == "dual" else 0.0


DSN_SCHEMES = {"postgresql", "postgres"}
BAD_DSN = (
    "is not a PostgreSQL URL (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or "
    "postgresql:///DATABASE?host=/socket/dir); the value is not shown, since it may hold "
    "a password"
)


def check_database_url(url: str) -> str:
    """`url` when it is a PostgreSQL URL whose parts every later reader can take apart
    (host, numeric port), else a ValueError that never echoes it: a string that does not
    parse as a URL cannot be shown with its password masked."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(BAD_DSN) from None
    has_host = bool(parts.hostname) or "host" in parse_qs(parts.query)
    if parts.scheme not in DSN_SCHEMES or not has_host or " " in url.strip():
        raise ValueError(BAD_DSN)
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True
    )

    app_env: Literal["development", "test", "production"] = "development"
    api_version: str = "0.1.0"
    data_dir: Path = Path("./data")
    journal_fsync: Literal["always", "interval", "never"] = "always"
    journal_fsync_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 50
    snapshot_every: Annotated[int, Field(ge=100)] = 50_000

    store_backend: Literal["memory", "postgres"] = "memory"
    database_url: SecretStr | None = None
    dual_write_mode: bool = False
    read_from_postgres_percent: Percent = 0
    in_memory_writes: bool = True
    rehydrate_on_start: bool = False
    graph_store_dual_write_mode: bool | None = None
    graph_store_read_from_postgres_percent: Percent | None = None
    graph_store_in_memory_writes: bool | None = None
    graph_store_backend: Literal["memory", "postgres"] | None = None
    agent_task_store_dual_write_mode: bool | None = None
    agent_task_store_read_from_postgres_percent: Percent | None = None
    agent_task_store_in_memory_writes: bool | None = None
    agent_task_store_backend: Literal["memory", "postgres"] | None = None

    postgres_pool_size: Annotated[int, Field(ge=1, le=1000)] = 20
    postgres_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    postgres_pool_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    postgres_pool_recycle: Annotated[float, Field(gt=0)] = 3600.0
    postgres_overflow_idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0
    postgres_max_queries: Annotated[int, Field(ge=1)] = 50_000
    postgres_statement_timeout_ms: Annotated[int, Field(ge=0)] = 10_000
    postgres_ssl_required: bool | None = None

    second_write_timeout: Annotated[float, Field(gt=0, le=60)] = 0.5
    shadow_read_percent: ShadowPercent = 0.0
    ready_timeout: Annotated[float, Field(gt=0, le=60)] = 5.0
    admin_token: SecretStr | None = None
    task_routing: Annotated[dict[TaskType, ModelAssignment], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTING)
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    fast_path: bool = True
    gc_freeze_after_ms: Annotated[float, Field(ge=0, le=10_000)] = 0.0
    gc_freeze_at_start: bool = True

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            check_database_url(v.get_secret_value())
        return v

    @field_validator("task_routing", mode="before")
    @classmethod
    def _routing_over_defaults(cls, v: Any) -> Any:
        """DEFAULT_ROUTING with TASK_ROUTING merged over it, field by field:
        TASK_ROUTING='{"spec": {"model": "m"}}' changes only spec's model."""
        if isinstance(v, str):
            if not v.strip():
                return dict(DEFAULT_ROUTING)
            try:
                v = json.loads(v)
            except json.JSONDecodeError as e:
                raise ValueError(f"TASK_ROUTING is not JSON: {e.msg}") from None
        if not isinstance(v, dict):
            raise ValueError("TASK_ROUTING must be a JSON object keyed by task_type")
        routing: dict[TaskType, Any] = dict(DEFAULT_ROUTING)
        for key, value in v.items():
            try:
                task_type = TaskType(key)
            except ValueError:
                raise ValueError(f"TASK_ROUTING: unknown task_type {key!r}") from None
            if isinstance(value, ModelAssignment):
                routing[task_type] = value
                continue
            if not isinstance(value, dict):
                raise ValueError(f"TASK_ROUTING: entry {key!r} must be an object")
            merged = routing[task_type].model_dump() | value
            try:
                routing[task_type] = ModelAssignment.model_validate(merged)
            except ValueError:
                raise ValueError(
                    f"TASK_ROUTING: entry {key!r} needs string model, tier and command"
                ) from None
        return routing

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        for store in STORES:
            try:
                self.store_mode(store)
            except ValidationError as e:
                raise ValueError(e.errors()[0]["msg"]) from None
        memory_trusted_dual = any(self.store_mode(s).write_target == "dual" for s in STORES)
        if self.rehydrate_on_start and not memory_trusted_dual:
            raise ValueError(
                "REHYDRATE_ON_START=true requires a store in dual-write with memory writes "
                "on (DUAL_WRITE_MODE=true and IN_MEMORY_WRITES=true, globally or through "
                "GRAPH_STORE_/AGENT_TASK_STORE_ overrides): it rebuilds memory from "
                "PostgreSQL when rolling back from PostgreSQL-primary"
            )
        if self.database_url and self.ssl_required():
            self._check_tls(self.database_url.get_secret_value())
        return self

    def _check_tls(self, url: str) -> None:
        """TLS rule: where TLS is required, the URL must ask for a verified certificate."""
        modes = parse_qs(urlsplit(url).query).get("sslmode", [])
        mode = modes[-1] if modes else None
        if mode in VERIFIED_SSLMODES:
            return
        why = (
            "sslmode=require encrypts but does not check the server's certificate, so "
            "anything between the API and PostgreSQL can pose as the server and read the "
            "credentials"
            if mode == "require"
            else f"sslmode={mode or '(unset)'} does not require TLS"
        )
        raise ValueError(
            f"DATABASE_URL: {why}. When TLS is required (APP_ENV=production or "
            "POSTGRES_SSL_REQUIRED=true) set sslmode=verify-full (or verify-ca) and "
            "sslrootcert=<CA file>; POSTGRES_SSL_REQUIRED=false overrides the rule, with a "
            "warning at every start"
        )

    def ssl_required(self) -> bool:
        """Whether DATABASE_URL must use TLS with a verified server certificate."""
        if self.postgres_ssl_required is not None:
            return self.postgres_ssl_required
        return self.app_env == "production"

    def tls_override(self) -> bool:
        """POSTGRES_SSL_REQUIRED=false switched off the production TLS rule."""
        return self.app_env == "production" and self.postgres_ssl_required is False

    def store_mode(self, store: StoreName) -> StoreMode:
        def pick(name: str) -> Any:
            override = getattr(self, f"{store}_store_{name.removeprefix('store_')}")
            return getattr(self, name) if override is None else override

        return StoreMode(
            store=store,
            postgres_configured=self.database_url is not None,
            dual_write=pick("dual_write_mode"),
            memory_writes=pick("in_memory_writes"),
            read_percent=pick("read_from_postgres_percent"),
            backend=pick("store_backend"),
            shadow_read_percent=self.shadow_read_percent,
        )

    def migration_settings_set(self) -> list[str]:
        """The migration settings (env names) set to anything but their default."""
        fields = type(self).model_fields
        return [name.upper() for name in MIGRATION_SETTINGS
                if getattr(self, name) != fields[name].get_default(call_default_factory=True)]

    def postgres_only(self) -> bool:
        """The migration is retired: every store's backend is postgres (STORE_BACKEND or
        both *_STORE_BACKEND) and no migration setting is away from its default, so
        nothing can route a request to memory, now or through a live switch. Then
        `python -m app` wires the PostgreSQL stores directly (app.postgres_service): no
        migration router, no memory store, no DATA_DIR. A setting left at its default
        (e.g. DUAL_WRITE_MODE=false rendered by a chart) counts as not set."""
        return all(self.store_mode(s).backend == "postgres" for s in STORES) and \
            not self.migration_settings_set()

    def postgres_in_use(self) -> bool:
        return any(
            self.store_mode(s).write_target != "in-memory" for s in STORES
        )


class ConfigurationError(ValueError):
    """The environment does not make a valid configuration; the message names each bad
    variable and never echoes a value (which may be a secret)."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a ConfigurationError naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = "_".join(str(p) for p in err["loc"]).upper() or "settings"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from None
