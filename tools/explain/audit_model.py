"""What the fairness audit returns (frozen dataclasses), its documented thresholds, and its JSON form.

The thresholds are explained in tools/explain/audit.py and docs/fairness.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tools.explain.audit_recs import GroupQuality
from tools.explain.audit_stats import Association

PERMUTATIONS = 999
MIN_USERS = 30
ALPHA = 0.05
PROXY_RATIO = 1.5
PROXY_POINTS = 0.10
QUALITY_GAP = 0.20  # NDCG@10 off by a fifth of the other groups' value
EXPOSURE_GAP = 0.05  # five points more (or fewer) of the top-10 slots on the head
MIN_EFFECT = 0.01  # eta squared below this is negligible (Cohen's "small" starts here)
STRENGTH = ((0.5, "strong"), (0.3, "moderate"), (0.1, "weak"), (0.0, "negligible"))


@dataclass(frozen=True)
class GroupShare:
    value: str
    count: int
    share: float  # of the segment's users with a value
    population_share: float
    ratio: float | None
    p_value: float  # Holm-adjusted
    direction: str | None = None  # "over" | "under" when it meets the proxy rule


@dataclass(frozen=True)
class SegmentComposition:
    segment_id: int
    name: str
    n_known: int
    shares: tuple[GroupShare, ...]
    too_few: bool


@dataclass(frozen=True)
class Carrier:
    """A feature on which a flagged segment and the over-represented group depart from everyone the same way (sd units)."""

    feature: str
    label: str
    segment_effect: float
    group_effect: float


@dataclass(frozen=True)
class ProxyFlag:
    segment_id: int
    segment_name: str
    groups: tuple[GroupShare, ...]  # the cells that met the rule
    carried_by: tuple[Carrier, ...]


@dataclass(frozen=True)
class FeatureEffect:
    feature: str
    label: str
    unit: str
    eta_squared: float  # between the attribute's groups
    segment_eta_squared: float  # between segments
    highest: tuple[str, float]  # (group, mean in the feature's units)
    lowest: tuple[str, float]


@dataclass(frozen=True)
class AttributeAudit:
    attribute: str
    asked_as: str | None
    banding: str | None
    n_users: int
    n_missing: int
    groups: tuple[tuple[str, int], ...]
    association: Association
    strength: str
    compositions: tuple[SegmentComposition, ...]
    proxies: tuple[ProxyFlag, ...]
    features: tuple[FeatureEffect, ...]
    small_groups: tuple[str, ...]  # fewer than MIN_USERS users: shown, never flagged
    recommendations: tuple[GroupQuality, ...] | None = None


@dataclass(frozen=True)
class AuditReport:
    level: str
    n_users: int
    n_segments: int
    attributes: tuple[AttributeAudit, ...]
    skipped: tuple[tuple[str, str], ...]
    recommendations: dict | None  # the whole population's figures, or None
    notes: tuple[str, ...]
    parameters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain JSON data (floats rounded to 4 places)."""
        return plain(dataclasses.asdict(self))


def plain(value):
    """JSON-ready: floats rounded to 4 places (NaN and infinities become None), tuples lists, numpy scalars Python."""
    if isinstance(value, float):
        return round(value, 4) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    return value


def strength(v: float) -> str:
    return next(word for bound, word in STRENGTH if v >= bound)


def thresholds() -> dict:
    return {"permutations": PERMUTATIONS, "min_users": MIN_USERS, "alpha": ALPHA, "proxy_ratio": PROXY_RATIO,
            "proxy_points": PROXY_POINTS, "quality_gap": QUALITY_GAP, "exposure_gap": EXPOSURE_GAP, "min_effect": MIN_EFFECT}  # fmt: skip
