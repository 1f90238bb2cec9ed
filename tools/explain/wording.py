"""How segment facts are written in words: numbers, lifts, trait clauses. One place, so the
labels, describe, the report and the verifier-facing facts all print a number the same way."""

from __future__ import annotations

from collections.abc import Sequence


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
    """A feature value in its unit, rounded the way it is printed everywhere ("$42.5" when money has a currency)."""
    if unit == "share":
        return fmt_pct(value)
    if unit == "days":
        return f"{value:.0f}"
    if unit == "money" and currency:
        number = f"{abs(value):.0f}" if abs(value) >= 100 else f"{abs(value):.1f}"
        return f"{'-' if value < 0 else ''}{currency}{number}"
    if unit in ("count", "money", "orders"):
        return f"{value:.0f}" if abs(value) >= 100 or (unit != "money" and abs(value) >= 10) else f"{value:.1f}"
    if unit == "rating":
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_compact(value: float, unit: str) -> str:
    """The compact form tables and tool summaries use: shares as whole percents, the rest with one decimal."""
    return f"{value:.0%}" if unit == "share" else f"{value:,.1f}"


def fmt_lift(lift: float) -> str:
    """3.1291 -> '3.1×'; small lifts keep two decimals so they never print as 0."""
    if lift >= 10:
        return f"{lift:.0f}×"
    return f"{lift:.2f}×" if lift < 0.1 else f"{lift:.1f}×"


def count_noun(kind: str, n: int) -> str:
    noun = "message" if kind == "text" else "user"
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
}
_MEASURES = {"recency_days": "{} days since last activity", "span_days": "{} days active", "frequency": "{} events each",
             "distinct_items": "{} distinct items each", "purchases": "{} purchases each", "monetary": "total spend {}",
             "avg_price": "average price {}", "rating_mean": "average rating {}", "rating_spread": "rating spread {}",
             "diversity": "diversity {}", "text_share": "{} of events"}

# Transaction-log features (tools/segment/features.py): orders, order value, basket, tenure, gaps, returns.
_VERBS.update({
    "avg_order_value": ("spend more per order than most", "spend less per order than most"),
    "basket_size": ("buy more per order than most", "buy less per order than most"),
    "tenure_days": ("have been customers longer than most", "became customers more recently than most"),
    "median_gap_days": ("wait longer between orders than most", "order again sooner than most"),
    "returns": ("return more than most", "return less than most"),
})
_MEASURES.update({"avg_order_value": "{} per order", "basket_size": "{} per order", "tenure_days": "{} days as customers",
                  "median_gap_days": "{} days between orders", "returns": "{} returns each"})


def measure(trait: dict) -> str:
    """The trait's segment value with what it counts: '12.4 days since last activity', '46% of activity'."""
    f, v = trait["feature"], fmt_value(trait["segment_value"], trait["unit"], trait.get("currency"))
    if f.startswith("category_"):
        return f"{v} of activity"
    if f.startswith("share_"):
        return f"{v} of events"
    if f == "frequency" and trait["unit"] == "orders":
        return f"{v} orders each"
    if f in ("basket_size", "recency_days"):  # "units per order" / "lines per order"; "since last purchase" / "activity"
        return f"{v} {trait['label']}"
    return _MEASURES.get(f, trait["label"] + " {}").format(v)


def comparison(trait: dict, against: str = "overall") -> str:
    """'3.1× overall', or 'vs 3.6 overall' for ratings and ratios (where a ratio means little)."""
    if trait["lift"] is None or trait["unit"] in ("rating", "ratio"):
        return f"vs {fmt_value(trait['population_value'], trait['unit'], trait.get('currency'))} {against}"
    return f"{fmt_lift(trait['lift'])} {against}"


def clause(trait: dict, lead: bool, also: bool = True) -> str:
    """A trait as a phrase: after "N users (S%)" when ``lead``, else after "They" ("also favour X" unless not ``also``)."""
    f, up = trait["feature"], trait["effect"] > 0
    against = "the average" if lead else "overall"
    if f.startswith("category_"):
        cat = f[len("category_"):]
        if up and lead:
            sep = ", " if trait["lift"] is not None and trait["unit"] not in ("rating", "ratio") else " "
            return f"whose activity is {fmt_value(trait['segment_value'], 'share')} {cat}{sep}{comparison(trait, against)}"
        if up:
            verb = ("also favour " if also else "favour ") + cat
        else:
            rare = trait["lift"] is not None and trait["lift"] < 0.25
            verb = f"rarely touch {cat}" if rare else f"favour {cat} less than most"
    elif f == "frequency" and trait["unit"] == "orders":
        verb = "order more often than most" if up else "order less often than most"
    else:
        verb = _VERBS.get(f, (f"have a higher {trait['label']} than most", f"have a lower {trait['label']} than most"))[0 if up else 1]
    sep = " " if comparison(trait).startswith("vs") else ", "
    return f"{'who ' if lead else ''}{verb} ({measure(trait)}{sep}{comparison(trait, against)})"


def trait_fact(trait: dict) -> str:
    return f"{trait['label']}: {measure(trait)}, {comparison(trait, 'the population average')}"


# ---------------------------------------------------------------- names
