"""Graph-side rules: coherence scores, value distribution and search ranking.

Pure functions of their arguments, used by every backend and the HTTP layer, so the
in-memory store, PostgreSQL and the migration router cannot disagree on a score, a
payout or the order of search results.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from app.canonical import search_fold
from app.models import Contribution, Payout, Project, SearchHit

CENT = Decimal("0.01")


def coherence_score(metadata: dict[str, object]) -> float:
    """0.5, +0.2 with tests, +0.2 with docs, +0.1 for low complexity, capped at 1.0."""
    score = Decimal("0.5")
    if metadata.get("has_tests") is True:
        score += Decimal("0.2")
    if metadata.get("has_docs") is True:
        score += Decimal("0.2")
    if metadata.get("complexity") == "low":
        score += Decimal("0.1")
    return float(min(score, Decimal("1.0")))


def compute_payouts(contributions: Iterable[Contribution], value_amount: Decimal) -> list[Payout]:
    """Split value_amount by cost_amount x (0.5 + coherence_score), summed per contributor.

    Contributors appear in the order of their first contribution; amounts are rounded
    half-up to cents. No contributions, or only zero-cost ones, give no payouts.
    """
    weights: dict[UUID, Decimal] = {}
    for c in contributions:
        weight = c.cost_amount * (Decimal("0.5") + Decimal(str(c.coherence_score)))
        weights[c.contributor_id] = weights.get(c.contributor_id, Decimal(0)) + weight
    total = sum(weights.values(), Decimal(0))
    if total == 0:
        return []
    return [
        Payout(
            contributor_id=cid,
            amount=(value_amount * w / total).quantize(CENT, rounding=ROUND_HALF_UP),
        )
        for cid, w in weights.items()
    ]


def normalize_query(query: str) -> str:
    return search_fold(query.strip()) or ""


def matches(query: str, project: Project) -> bool:
    """`query` must already be normalized; an empty query matches nothing."""
    if not query:
        return False
    return query in project.name or query in (search_fold(project.description) or "")


def rank_key(query: str, project: Project) -> tuple[int, str, str]:
    """Exact name first, then name prefix, then the rest; ties by name, ecosystem
    (code-point order, which PostgreSQL reproduces with COLLATE "C")."""
    if project.name == query:
        tier = 0
    elif project.name.startswith(query):
        tier = 1
    else:
        tier = 2
    return (tier, project.name, project.ecosystem)


def hit(project: Project) -> SearchHit:
    return SearchHit(
        name=project.name, ecosystem=project.ecosystem, description=project.description
    )
