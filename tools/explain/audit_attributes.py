"""Which user attributes the fairness audit looks at, and how their values are grouped.

Attributes are the columns of the run's users table: a users file, MovieLens ml-100k's
``u.user`` (age, gender, occupation, zip code), or events-file columns that hold one
value per user. They describe users; they are never inputs to profiles or clustering.

- A numeric column named ``age`` (or ``age_years``, ``Age``…) is grouped into the age
  bands of ``AGE_BANDS``: under 18, 18–24, 25–34, 35–44, 45–54, 55–64, 65+.
- Any other column is grouped by its values as written. A column with more than
  ``MAX_GROUPS`` distinct values (zip codes, dates, names) describes people rather than
  groups: it is skipped and the audit says why.
- A user without a value is left out of that attribute's figures and counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.core.errors import ParameterError

MAX_GROUPS = 50
AGE_BANDS: tuple[tuple[float, float, str], ...] = (
    (-np.inf, 18, "under 18"), (18, 25, "18–24"), (25, 35, "25–34"), (35, 45, "35–44"),
    (45, 55, "45–54"), (55, 65, "55–64"), (65, np.inf, "65+"),
)  # fmt: skip
AGE_BANDING = "age bands: under 18, 18–24, 25–34, 35–44, 45–54, 55–64, 65+"
_AGE_NAME = re.compile(r"^age(?:[_ -]?(?:years?|yrs))?$", re.I)
# Words people use for an attribute the column may be called otherwise (asked "sex", the column is "gender").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "gender": ("sex",), "sex": ("gender",),
    "occupation": ("job", "profession", "work"), "job": ("occupation", "profession"), "profession": ("occupation", "job"),
    "country": ("nationality", "nation"), "nationality": ("country",),
    "race": ("ethnicity",), "ethnicity": ("race",),
}  # fmt: skip


@dataclass(frozen=True)
class SensitiveAttribute:
    """One attribute's group per audited user (None where the user has no value)."""

    name: str  # the users table's column
    values: np.ndarray  # object: a group label (str) or None, aligned with the audited users
    banding: str | None = None  # how raw values were grouped ("age bands: …"), None when as written
    asked_as: str | None = None  # the name the request used, when it differs from the column

    @property
    def n_missing(self) -> int:
        return int(sum(v is None for v in self.values))


def match_columns(requested: Sequence[str], columns: Sequence[str]) -> list[tuple[str, str]]:
    """(asked, column) for each requested name: the column of that name (any case), else of a synonym, else one
    that starts with it ("age" finds "age_band"). ParameterError naming the columns there are for a name none matches."""
    by_lower = {c.lower(): c for c in columns}
    out: list[tuple[str, str]] = []
    for asked in requested:
        key = asked.strip().lower()
        if not key:
            continue
        found = by_lower.get(key)
        for other in SYNONYMS.get(key, ()):
            found = found or by_lower.get(other)
        if found is None:
            starts = [c for c in columns if re.match(rf"{re.escape(key)}(?:[_ -]|$)", c, re.I)]
            found = starts[0] if len(starts) == 1 else None
        if found is None:
            there = f"the user attributes are: {', '.join(columns)}" if columns else (
                "this data has no user attributes (no users file, and no events column with one value per user)")
            raise ParameterError(f"--sensitive {asked}: there is no user attribute {asked!r}", there)
        if found not in (c for _, c in out):
            out.append((asked, found))
    return out


def _is_age(name: str, values: pd.Series) -> bool:
    if not _AGE_NAME.match(name.strip()):
        return False
    filled = values.dropna()
    return len(filled) > 0 and bool(pd.to_numeric(filled, errors="coerce").notna().mean() >= 0.95)


def age_band(age: pd.Series) -> pd.Series:
    """Each age (years) as its band label; missing or unreadable ages stay missing."""
    years = pd.to_numeric(age, errors="coerce")
    out = pd.Series([None] * len(years), index=years.index, dtype=object)
    for lo, hi, label in AGE_BANDS:
        out[(years >= lo) & (years < hi)] = label
    return out


_BAND = re.compile(r"^\s*(?:(?P<under>under|below|<)\s*)?[$£€]?(?P<n>\d+(?:\.\d+)?)\s*[kK]?\s*(?:[-–]\s*[$£€]?\d+(?:\.\d+)?\s*[kK]?|\+|\s*(?:and|or) (?:over|more|older)|s)?\s*$", re.I)


def band_order(attribute: SensitiveAttribute, groups: Sequence[str]) -> list[str]:
    """Groups in reading order: bands lowest first (our age bands, or values such as 18-24, 55+, 35-49K, 20s), else as given (largest first)."""
    if attribute.banding == AGE_BANDING:
        rank = {label: i for i, (_, _, label) in enumerate(AGE_BANDS)}
        return sorted(groups, key=lambda g: rank.get(g, len(rank)))
    matches = [_BAND.match(str(g)) for g in groups]
    if groups and all(matches):
        return [g for _, g in sorted(((float(m["n"]) - (0.5 if m["under"] else 0.0), g) for m, g in zip(matches, groups)),
                                     key=lambda pair: pair[0])]  # fmt: skip
    return list(groups)


def sensitive_attributes(
    users: pd.DataFrame | None, user_ids: np.ndarray, requested: Sequence[str] | None = None
) -> tuple[list[SensitiveAttribute], list[tuple[str, str]]]:
    """The attributes to audit for ``user_ids`` and the ones skipped, as (column, why).

    ``requested`` names columns (any case, or a synonym such as "sex" for "gender");
    None audits every attribute of the users table. A requested name that is not an
    attribute is a ParameterError; a column that cannot be grouped is skipped and said.
    """
    columns = [] if users is None else [str(c) for c in users.columns if c != "user_id"]
    pairs = match_columns(requested, columns) if requested else [(c, c) for c in columns]
    if users is None or not pairs:
        return [], []
    table = users.drop_duplicates("user_id").assign(user_id=lambda f: f["user_id"].astype(str)).set_index("user_id")
    table = table.reindex(pd.Index(np.asarray(user_ids, dtype=str)))
    found: list[SensitiveAttribute] = []
    skipped: list[tuple[str, str]] = []
    for asked, column in pairs:
        raw = table[column]
        banding = None
        if _is_age(column, raw):
            grouped, banding = age_band(raw), AGE_BANDING
        else:
            grouped = raw.astype("string").str.strip()
        values = np.array([None if pd.isna(v) or v == "" else str(v) for v in grouped], dtype=object)
        distinct = len({v for v in values if v is not None})
        if distinct < 2:
            skipped.append((column, "every user with a value has the same one" if distinct else "no audited user has a value"))
            continue
        if distinct > MAX_GROUPS:
            skipped.append((column, f"{distinct:,} distinct values (more than {MAX_GROUPS}): it describes people, not groups"))
            continue
        found.append(SensitiveAttribute(column, values, banding,
                                        asked if asked.lower() != column.lower() else None))
    return found, skipped
