"""How segment facts are written in words: numbers, lifts, trait clauses. One place, so the
labels, describe, the report and the verifier-facing facts all print a number the same way."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


def join_phrases(parts: Sequence[str]) -> str:
    """'a, b and c'; a serial comma when a part already has its own 'and'."""
    if len(parts) <= 1:
        return "".join(parts)
    last = ", and " if any(" and " in p for p in parts[:-1]) else " and "
    return ", ".join(parts[:-1]) + last + parts[-1]


def fmt_pct(share: float, decimals: int | None = None) -> str:
    """0.2987 -> '29.9%' (decimals=1); shares of activity get 0 decimals, or 1 below 1%."""
    pct = 100.0 * share
    if decimals is None:
        decimals = 0 if abs(pct) >= 1 or pct == 0 else 1
    return f"{pct:.{decimals}f}%"


def fmt_value(value: float, unit: str, currency: str | None = None) -> str:
    """A feature value in its unit, rounded the way it is printed everywhere.

    Money gets the data's currency symbol when it has one ("$12.30", "£1,204"); without one it is a
    bare number, as a count would be.
    """
    if unit == "share":
        return fmt_pct(value)
    if unit == "days":
        return f"{value:.0f}"
    if unit == "money" and currency:
        sign = "-" if value < 0 else ""
        return f"{sign}{currency}{abs(value):,.0f}" if abs(value) >= 10 else f"{sign}{currency}{abs(value):.2f}"
    if unit in ("count", "money", "orders"):
        return f"{value:.0f}" if abs(value) >= 100 or (unit != "money" and abs(value) >= 10) else f"{value:.1f}"
    if unit == "rating":
        return f"{value:.1f}"
    if unit in ("hours", "minutes"):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"
    return f"{value:.2f}"


def fmt_interval(trait: dict, currency: str | None = None) -> str:
    """A trait's segment value with its 95% interval, as the report prints it: '62% (58–66%)'; the
    value alone when the trait has no interval (a run made before traits were tested)."""
    unit, money = str(trait.get("unit") or ""), currency or trait.get("currency")
    value = fmt_value(float(trait["segment_value"]), unit, money)
    low, high = trait.get("ci_low"), trait.get("ci_high")
    if low is None or high is None:
        return value
    lo, hi = fmt_value(float(low), unit, money), fmt_value(float(high), unit, money)
    if lo.endswith("%") and hi.endswith("%"):  # '(58–66%)', one percent sign
        lo = lo[:-1]
    return f"{value} ({lo}–{hi})"


def fmt_compact(value: float, unit: str, currency: str | None = None) -> str:
    """The compact form tables and tool summaries use: shares as whole percents, money with its
    currency symbol when the data has one, the rest with one decimal."""
    if unit == "share":
        return f"{value:.0%}"
    if unit == "money" and currency:
        return fmt_value(value, unit, currency)
    return f"{value:,.1f}"


def fmt_lift(lift: float) -> str:
    """3.1291 -> '3.1×'; small lifts keep two decimals so they never print as 0."""
    if lift >= 10:
        return f"{lift:.0f}×"
    return f"{lift:.2f}×" if lift < 0.1 else f"{lift:.1f}×"


ENTITY_NOUNS = {"user": "user", "session": "session", "customer": "customer", "household": "household"}


@dataclass(frozen=True)
class Voice:
    """How one run's facts are worded: what a member is and the currency money is in.

    ``entity`` is segments.json's ``data.entity`` ("user" unless the data's rows are sessions,
    households, ...); ``currency`` is ``data.currency`` ("$", "£", or None for a bare number).
    """

    kind: str = "behaviour"
    entity: str = "user"
    currency: str | None = None

    @classmethod
    def of(cls, summary: dict) -> Voice:
        data = summary.get("data", {})
        return cls(data.get("kind", "behaviour"), str(data.get("entity") or "user"), data.get("currency"))

    @property
    def who(self) -> str:
        """The relative pronoun for members: people are 'who', sessions and messages 'that'."""
        return "that" if self.kind == "text" or self.entity == "session" else "who"

    def member(self, n: int) -> str:
        """'user'/'users', 'session'/'sessions', 'message'/'messages'."""
        return count_noun(self.kind, n, self.entity)


PLAIN = Voice()


def count_noun(kind: str, n: int, entity: str | None = None) -> str:
    """What ``n`` members are called: messages for text data, else the entity (users unless told)."""
    noun = "message" if kind == "text" else ENTITY_NOUNS.get(entity or "user", str(entity or "user"))
    return noun if n == 1 else noun + "s"


def keyword_list(kws: Sequence[str]) -> str:
    return join_phrases(list(kws))


_VERBS: dict[str, tuple[str, str]] = {  # feature -> (they ... when higher, when lower)
    "recency_days": ("were last active longer ago than most", "were active more recently than most"),
    "span_days": ("have been around longer than most", "have been active over a shorter span than most"),
    "frequency": ("are more active than most", "are less active than most"),
    "distinct_items": ("look at more different items than most", "look at fewer different items than most"),
    "purchases": ("buy more often than most", "buy less often than most"),
    "monetary": ("spend more than most", "spend less than most"),
    "avg_price": ("buy pricier items than most", "buy cheaper items than most"),
    "rating_mean": ("rate more generously than most", "rate more critically than most"),
    "rating_spread": ("give more varied ratings than most", "give more consistent ratings than most"),
    "text_share": ("write text more often than most", "write text less often than most"),
    "diversity": ("spread their activity over more categories than most", "stick to fewer categories than most"),
    "share_view": ("browse more than most", "browse less than most"),
    "share_cart": ("add to cart more than most", "add to cart less than most"),
    "share_purchase": ("turn more of their activity into purchases", "turn less of their activity into purchases"),
    "share_review": ("write more reviews than most", "write fewer reviews than most"),
    "share_rating": ("rate more than most", "rate less than most"),
    "share_tag": ("tag more than most", "tag less than most"),
    # transaction features, by family (see feature_family)
    "orders": ("place more orders than most", "place fewer orders than most"),
    "avg_order_value": ("spend more per order than most", "spend less per order than most"),
    "basket_size": ("buy more per order than most", "buy less per order than most"),
    "tenure_days": ("have been customers longer than most", "are newer customers than most"),
    "gap_days": ("leave longer gaps between purchases than most", "come back sooner than most"),
    "returns": ("return more than most", "return less than most"),
}
_SESSION_VERBS = {
    "frequency": ("are longer than most", "are shorter than most"),
    "distinct_items": ("take in more different items than most", "take in fewer different items than most"),
    "recency_days": ("happened longer before the end of the data than most", "happened more recently than most"),
    "span_days": ("last longer than most", "are quicker than most"),
}
_MEASURES = {"recency_days": "{} days since last activity", "span_days": "{} days active", "frequency": "{} events each",
             "distinct_items": "{} distinct items each", "purchases": "{} purchases each", "monetary": "total spend {}",
             "avg_price": "average price {}", "rating_mean": "average rating {}", "rating_spread": "rating spread {}",
             "diversity": "diversity {}", "text_share": "{} of events", "orders": "{} orders each",
             "avg_order_value": "average order {}", "basket_size": "{} per order", "tenure_days": "{} days since the first purchase",
             "gap_days": "{} days between purchases", "returns": "{} returns each"}
_SESSION_MEASURES = {"frequency": "{} events per session", "distinct_items": "{} distinct items per session",
                     "recency_days": "{} days before the end of the data", "span_days": "{} days long"}

# Transaction features as the ingest stage may name them: a family name for each, so the wording
# (and the name words in labels.py) follow the meaning whatever the exact column is called.
_FAMILIES = (
    (re.compile(r"return|refund|cancel"), "returns"),
    (re.compile(r"order_value|aov|avg_order|mean_order|basket_value|per_order_spend|spend_per_order"), "avg_order_value"),
    (re.compile(r"basket|per_order|order_size|lines_per|units_per"), "basket_size"),
    (re.compile(r"tenure|first_purchase|since_first|customer_age"), "tenure_days"),
    (re.compile(r"between|gap|interpurchase|inter_purchase|cadence"), "gap_days"),
    (re.compile(r"order|invoice|basket_count|transactions"), "orders"),
)

# Transaction-log features (tools/segment/features.py): orders, order value, basket, tenure, gaps, returns.
_VERBS.update({
    "avg_order_value": ("spend more per order than most", "spend less per order than most"),
    "basket_size": ("buy more per order than most", "buy less per order than most"),
    "tenure_days": ("have been customers longer than most", "became customers more recently than most"),
    "median_gap_days": ("wait longer between orders than most", "order again sooner than most"),
    "returns": ("return more than most", "return less than most"),
})
_MEASURES.update({"median_gap_days": "{} days between orders"})  # the others are in _MEASURES by family

# The order of events (tools/segment/sequence.py); a step's own words come from its label.
_VERBS.update({
    "hours_to_convert": ("take longer from first visit to first purchase than most", "buy sooner after their first visit than most"),
    "days_to_convert": ("take longer from first visit to first purchase than most", "buy sooner after their first visit than most"),
    "sessions": ("come back for more sessions than most", "come for fewer sessions than most"),
    "session_events": ("do more per session than most", "do less per session than most"),
    "session_minutes": ("stay longer per session than most", "have shorter sessions than most"),
})
_MEASURES.update({"hours_to_convert": "{} hours from first visit to first purchase",
                  "days_to_convert": "{} days from first visit to first purchase", "sessions": "{} sessions each",
                  "session_events": "{} events per session", "session_minutes": "{} minutes per session"})


def feature_family(feature: str) -> str:
    """The name the wording knows a feature by: itself when known, else its family ('n_orders' -> 'orders')."""
    if feature in _VERBS or feature.startswith(("category_", "share_", "step_")):
        return feature
    for pattern, family in _FAMILIES:
        if pattern.search(feature.lower()):
            return family
    return feature


def measure(trait: dict, voice: Voice = PLAIN) -> str:
    """The trait's segment value with what it counts: '12 days since last activity', 'total spend $1,204'."""
    return _measure(trait, trait["segment_value"], voice)


def _measure(trait: dict, value: float, voice: Voice) -> str:
    f, v = trait["feature"], fmt_value(value, trait["unit"], voice.currency or trait.get("currency"))
    if f.startswith("category_"):
        return f"{v} of activity"
    if f.startswith("share_"):
        return f"{v} of events"
    if f.startswith("step_") and trait["label"].startswith("share of steps"):
        return f"{v} of steps{trait['label'][len('share of steps'):]}"
    if voice.entity != "session":
        if f == "frequency" and trait["unit"] == "orders":
            return f"{v} orders each"
        # the feature table's own label says which reading: "units/lines per order", "since last purchase/activity"
        if f in ("basket_size", "recency_days") and trait["label"].startswith(("units per", "lines per", "days since")):
            return f"{v} {trait['label']}"
    fam = feature_family(f)
    template = (_SESSION_MEASURES.get(fam) if voice.entity == "session" else None) or _MEASURES.get(fam)
    if template is None or (fam != f and trait["unit"] not in ("count", "money", "days", "orders")):
        template = trait["label"] + (" {} days" if trait["unit"] == "days" and "day" not in trait["label"] else " {}")
    return template.format(v)


def comparison(trait: dict, against: str = "overall", voice: Voice = PLAIN) -> str:
    """'3.1× overall', or 'vs 3.6 overall' for ratings and ratios (where a ratio means little)."""
    if trait["lift"] is None or trait["unit"] in ("rating", "ratio"):
        return f"vs {fmt_value(trait['population_value'], trait['unit'], voice.currency or trait.get('currency'))} {against}"
    return f"{fmt_lift(trait['lift'])} {against}"


def _verb(trait: dict, up: bool, voice: Voice) -> str:
    fam = feature_family(trait["feature"])
    verbs = (_SESSION_VERBS.get(fam) if voice.entity == "session" else None) or _VERBS.get(fam)
    if verbs is None:
        verbs = (f"have a higher {trait['label']} than most", f"have a lower {trait['label']} than most")
    return verbs[0 if up else 1]


def clause(trait: dict, lead: bool, also: bool = True, voice: Voice = PLAIN) -> str:
    """A trait as a phrase: after "N users (S%)" when ``lead``, else after "They" ("also favour X" unless not ``also``)."""
    f, up = trait["feature"], trait["effect"] > 0
    against = "the average" if lead else "overall"
    if f.startswith("category_"):
        cat = f[len("category_"):]
        if up and lead:
            sep = ", " if trait["lift"] is not None and trait["unit"] not in ("rating", "ratio") else " "
            return f"whose activity is {fmt_value(trait['segment_value'], 'share')} {cat}{sep}{comparison(trait, against, voice)}"
        if up:
            verb = ("also favour " if also else "favour ") + cat
        else:
            rare = trait["lift"] is not None and trait["lift"] < 0.25
            verb = f"rarely touch {cat}" if rare else f"favour {cat} less than most"
    elif f == "frequency" and trait["unit"] == "orders":
        verb = "order more often than most" if up else "order less often than most"
    else:
        verb = _verb(trait, up, voice)
    sep = " " if comparison(trait).startswith("vs") else ", "
    return f"{voice.who + ' ' if lead else ''}{verb} ({measure(trait, voice)}{sep}{comparison(trait, against, voice)})"


def sibling_clause(trait: dict, up: bool, sibling_value: float | None, others: str, voice: Voice = PLAIN) -> str:
    """A trait against the segment's siblings: 'spend more than the rest of "Lapsed Buyers" (total spend $120 vs $45 there)'."""
    f = trait["feature"]
    if f.startswith("category_"):
        verb = f"favour {f[len('category_'):]} {'more' if up else 'less'} than most"
    else:
        verb = _verb(trait, up, voice)
    verb = verb.removesuffix(" than most") + f" than {others}"
    if sibling_value is None:
        return f"{verb} ({measure(trait, voice)})"
    return f"{verb} ({measure(trait, voice)} vs {fmt_value(sibling_value, trait['unit'], voice.currency)} there)"


def trait_fact(trait: dict, voice: Voice = PLAIN) -> str:
    return f"{trait['label']}: {measure(trait, voice)}, {comparison(trait, 'the population average', voice)}"
