"""The records the service stores and the bodies it accepts, shared by every backend.

One set of pydantic models serves the HTTP layer, the in-memory store, the PostgreSQL
adapters, the journal and the snapshot format, so a record means the same thing
wherever it travels. Request bodies are separate, stricter models: they reject what a
client may not set (ids, timestamps, derived values are never taken from a client).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from app.canonical import (
    MONEY_DIGITS,
    MONEY_PLACES,
    canonical_json,
    canonical_money,
    check_text,
    fold,
    project_key,
)

SHORT_TEXT = 255
LONG_TEXT = 100_000
MAX_METADATA_BYTES = 64 * 1024


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must carry a timezone offset")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Ecosystem = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(project_key(100))
]
ProjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(project_key(255))
]
OptText = Annotated[str | None, Field(default=None, max_length=LONG_TEXT)]
OptShort = Annotated[str | None, Field(default=None, max_length=SHORT_TEXT)]
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES),
    AfterValidator(canonical_money),
]


def _canonical_metadata(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    return _bounded(canonical_json(value, info.field_name or "value"))


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, default=str)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    return value


# A request's document is refused or made canonical at the door (app.canonical); a stored
# record's is taken as stored, so a journal written before a rule existed still replays.
Metadata = Annotated[dict[str, Any], AfterValidator(_canonical_metadata)]
StoredDocument = Annotated[dict[str, Any], AfterValidator(_bounded)]


class NoNul:
    """Mixin for request bodies: no text in them may hold what a backend cannot store
    (app.canonical.unstorable); JSON documents are checked by Metadata itself."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            check_text(value, info.field_name or "value")
        return value


class Record(BaseModel):
    """Base of stored records: immutable once built; copies are made with model_copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Body(NoNul, BaseModel):
    """Base of request bodies: unknown fields are rejected so typos surface as 422."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- graph store


class Project(Record):
    id: int
    ecosystem: Ecosystem
    name: ProjectName
    version: OptShort = None
    description: OptText = None
    homepage_url: Annotated[str | None, Field(default=None, max_length=2048)] = None
    repository_url: Annotated[str | None, Field(default=None, max_length=2048)] = None
    dependency_count: int = 0
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ProjectUpsert(NoNul, BaseModel):
    """Body of PUT /api/projects/{ecosystem}/{name}. The key comes from the path;
    a key or dependency_count in the body is accepted and ignored (clients of the
    original sent whole Project documents)."""

    model_config = ConfigDict(extra="ignore")

    version: OptShort = None
    description: OptText = None
    homepage_url: Annotated[str | None, Field(default=None, max_length=2048)] = None
    repository_url: Annotated[str | None, Field(default=None, max_length=2048)] = None


class Dependency(Record):
    """A graph edge: from an existing project to a key that need not exist yet."""

    from_ecosystem: Ecosystem
    from_name: ProjectName
    to_ecosystem: Ecosystem
    to_name: ProjectName
    created_at: AwareDatetime


NO_SLASH = r"^[^/]*$"


class DependencyIn(Body):
    """A '/' is refused in a target's key: /api/projects/{ecosystem}/{name} could never
    address it (npm scopes such as @babel/core are written without the slash)."""

    ecosystem: Annotated[Ecosystem, StringConstraints(pattern=NO_SLASH)]
    name: Annotated[ProjectName, StringConstraints(pattern=NO_SLASH)]


class SearchHit(BaseModel):
    name: str
    ecosystem: str
    description: str | None = None


class SearchResult(BaseModel):
    results: list[SearchHit]
    total: int


class ContributorType(StrEnum):
    HUMAN = "HUMAN"
    SYSTEM = "SYSTEM"


class AssetType(StrEnum):
    CODE = "CODE"
    MODEL = "MODEL"
    CONTENT = "CONTENT"
    DATA = "DATA"


class Contributor(Record):
    id: UUID
    type: ContributorType = ContributorType.HUMAN
    name: Annotated[str, Field(min_length=1, max_length=SHORT_TEXT)]
    email: OptShort = None
    github_username: OptShort = None
    wallet_address: OptShort = None
    hourly_rate: Money | None = None
    metadata: StoredDocument = Field(default_factory=dict)
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @field_serializer("hourly_rate")
    def _money(self, v: Decimal | None) -> str | None:
        return None if v is None else f"{v:.2f}"

    @property
    def email_key(self) -> str | None:
        """The key email uniqueness is decided on, on every backend (app.canonical.fold)."""
        return None if self.email is None else fold(self.email)


class ContributorCreate(Body):
    type: ContributorType = ContributorType.HUMAN
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    email: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$"),
    ] = None
    github_username: OptShort = None
    wallet_address: OptShort = None
    hourly_rate: Money | None = None
    metadata: Metadata = Field(default_factory=dict)


class Asset(Record):
    id: UUID
    type: AssetType
    name: Annotated[str, Field(min_length=1, max_length=SHORT_TEXT)]
    description: OptText = None
    total_cost: Decimal = Decimal("0.00")
    metadata: StoredDocument = Field(default_factory=dict)
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @field_serializer("total_cost")
    def _money(self, v: Decimal) -> str:
        return f"{v:.2f}"


class AssetCreate(Body):
    type: AssetType
    name: Annotated[
        str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
    ] = None
    description: OptText = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _name_or_description(self) -> AssetCreate:
        if self.name is None:
            text = (self.description or "").strip()
            if not text:
                raise ValueError("name is required when description is empty")
            self.name = text[:SHORT_TEXT]
        return self


class Contribution(Record):
    id: UUID
    contributor_id: UUID
    asset_id: UUID
    cost_amount: Money
    coherence_score: Annotated[float, Field(ge=0.0, le=1.0)]
    metadata: StoredDocument = Field(default_factory=dict)
    timestamp: AwareDatetime

    @field_serializer("cost_amount")
    def _money(self, v: Decimal) -> str:
        return f"{v:.2f}"


class ContributionCreate(Body):
    contributor_id: UUID
    asset_id: UUID
    cost_amount: Money
    metadata: Metadata = Field(default_factory=dict)


class DistributionCreate(Body):
    asset_id: UUID
    value_amount: Money


class Payout(BaseModel):
    contributor_id: UUID
    amount: Decimal

    @field_serializer("amount")
    def _money(self, v: Decimal) -> str:
        return f"{v:.2f}"


class Distribution(BaseModel):
    id: UUID
    asset_id: UUID
    value_amount: Decimal
    payouts: list[Payout]
    created_at: AwareDatetime

    @field_serializer("value_amount")
    def _money(self, v: Decimal) -> str:
        return f"{v:.2f}"


# ---------------------------------------------------------------- agent task store


class TaskType(StrEnum):
    spec = "spec"
    test = "test"
    impl = "impl"
    review = "review"
    heal = "heal"


class TaskStatus(StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    needs_decision = "needs_decision"


TaskId = Annotated[str, StringConstraints(pattern=r"^task_[0-9a-f]{16}$")]


class AgentTask(Record):
    id: TaskId
    direction: Annotated[str, Field(min_length=1, max_length=5000)]
    task_type: TaskType
    status: TaskStatus
    model: Annotated[str, Field(max_length=100)]
    command: str
    output: str | None = None
    context: StoredDocument = Field(default_factory=dict)
    progress_pct: Annotated[int | None, Field(default=None, ge=0, le=100)] = None
    current_step: str | None = None
    decision_prompt: str | None = None
    decision: str | None = None
    tier: str | None = None
    started_at: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None


class AgentTaskSummary(BaseModel):
    """A list item: the task without command, output and context."""

    id: str
    direction: str
    task_type: TaskType
    status: TaskStatus
    model: str
    progress_pct: int | None = None
    current_step: str | None = None
    decision_prompt: str | None = None
    decision: str | None = None
    tier: str | None = None
    started_at: datetime | None = None
    created_at: datetime
    updated_at: datetime | None = None

    @classmethod
    def of(cls, task: AgentTask) -> AgentTaskSummary:
        """The task's own (already validated) values, copied without re-validation."""
        return cls.model_construct(**{name: getattr(task, name) for name in _SUMMARY_FIELDS})


_SUMMARY_FIELDS = tuple(AgentTaskSummary.model_fields)


class AgentTaskCreate(Body):
    direction: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)
    ]
    task_type: TaskType
    context: Metadata = Field(default_factory=dict)


class AgentTaskUpdate(Body):
    status: TaskStatus | None = None
    output: Annotated[str | None, Field(default=None, max_length=1_000_000)] = None
    progress_pct: Annotated[int | None, Field(default=None, ge=0, le=100)] = None
    current_step: Annotated[str | None, Field(default=None, max_length=1000)] = None
    decision_prompt: Annotated[str | None, Field(default=None, max_length=10_000)] = None
    decision: Annotated[str | None, Field(default=None, max_length=10_000)] = None

    def is_empty(self) -> bool:
        return not self.model_fields_set


class TaskList(BaseModel):
    tasks: list[AgentTaskSummary]
    total: int
