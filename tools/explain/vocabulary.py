"""The words names are made of: trait -> adjective rules, intensity words, nouns, category forms.

A vocabulary, not logic: tools/explain/labels.py chooses among these words from a segment's
evidence, tools/explain/names.py makes a run's names differ.
"""

from __future__ import annotations

from tools.explain.wording import Voice, feature_family

# Plural category words that read better singular in front of a noun ("Book Reviewers").
SINGULAR = {"Books": "Book", "Toys": "Toy", "Games": "Game", "Movies": "Movie", "Shoes": "Shoe", "Computers": "Computer",
            "Gadgets": "Gadget", "Tools": "Tool", "Pets": "Pet", "Children": "Children's", "Groceries": "Grocery"}

# Adjective rules: feature family -> (word when higher, word when lower, group). One word per group.
ADJECTIVES: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("Lapsed", "Recent", "recency"),
    "frequency": ("Frequent", "Occasional", "activity"),
    "orders": ("Frequent", "Occasional", "activity"),
    "distinct_items": ("Frequent", "Occasional", "activity"),
    "purchases": ("Repeat", None, "activity"),
    "monetary": ("High-spend", "Low-spend", "spend"),
    "avg_price": ("High-spend", "Budget", "spend"),
    "avg_order_value": ("Big-ticket", "Small-ticket", "ticket"),
    "basket_size": ("Bulk", "Small-basket", "basket"),
    "gap_days": ("Sporadic", "Regular", "cadence"),
    "returns": ("Return-prone", None, "returns"),
    "rating_mean": ("Generous", "Critical", "rating"),
    "rating_spread": ("Polarised", "Consistent", "spread"),
    "diversity": ("Eclectic", "Focused", "diversity"),
    "span_days": ("Long-time", None, "span"),
    "tenure_days": ("Long-time", "New", "span"),
}
# A session is long or short, early or late, not lapsed or frequent.
SESSION_ADJECTIVES: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("Older", "Recent", "recency"),
    "frequency": ("Long", "Short", "activity"),
    "distinct_items": ("Wide-ranging", "Narrow", "activity"),
    "span_days": ("Lengthy", "Quick", "span"),
}
# A sub-segment of a parent named by a word is named by how much more or less so it is than its
# siblings: "Lapsed Buyers" splits into "Long-lapsed" and "Recently-lapsed" ones. One token each,
# so the parent's name and the children's never hold one another's words.
INTENSITY = {"Lapsed": ("Long-lapsed", "Recently-lapsed"), "Repeat": ("Heavy-repeat", "Light-repeat"), "High-spend": ("Top-spend", "Mid-spend"),
             "Low-spend": ("Lowest-spend", "Mid-spend"), "Long-time": ("Longest-standing", "Mid-tenure")}
# Words a top-level segment may say "more so" of, when it has more of the trait than all its siblings.
INTENSITY_OF = frozenset({"Lapsed", "Recent", "Frequent", "Occasional", "High-spend", "Low-spend", "Long-time"})
# The order adjectives are read in, whatever their strength: "Lapsed Occasional Shoppers".
ADJECTIVE_ORDER = ("mainstream", "recency", "activity", "spend", "ticket", "basket", "cadence", "returns", "rating",
                   "spread", "diversity", "span", "avoid", "keyword", "subject")
SHOP_FEATURES = frozenset({"monetary", "purchases", "share_purchase", "avg_price", "orders", "avg_order_value", "basket_size",
                           "returns", "gap_days"})
ENTITY_NOUNS = {"session": "Sessions", "household": "Households"}


def adjective(feature: str, up: bool, voice: Voice) -> tuple[str, str] | None:
    """(word, group) for a trait's direction ("Lapsed", "recency"), or None when no word says it."""
    fam = feature_family(feature)
    rule = (SESSION_ADJECTIVES.get(fam) if voice.entity == "session" else None) or ADJECTIVES.get(fam)
    if rule is None or (rule[0] if up else rule[1]) is None:
        return None
    return (rule[0] if up else rule[1]), rule[2]  # type: ignore[return-value]


def short_category(cat: str, level: int) -> str:
    """0: as written; 1: the part before '&'; 2: its first word. Plurals made singular."""
    text = cat
    if level >= 1:
        text = cat.split("&")[0].strip() or cat
    if level >= 2:
        text = text.split()[0]
    parts = text.split()
    if parts and parts[-1] in SINGULAR:
        parts[-1] = SINGULAR[parts[-1]]
    return " ".join(parts)


def intensity(word: str, more: bool) -> str:
    """'Lapsed' more so / less so than its siblings: 'Long-lapsed' / 'Recently-lapsed' ('Very-x' / 'Mildly-x' otherwise)."""
    return INTENSITY.get(word, (f"Very-{word.lower()}", f"Mildly-{word.lower()}"))[0 if more else 1]
