"""What an item says about itself: its text for the embedder and its list of categories.

Both the segment stage (profiles, summaries) and the search and explain stages read
items this way, so it lives in the data layer they all stand on.
"""

from __future__ import annotations

import pandas as pd

CATEGORY_SEPARATORS = r"\s*[|;>]\s*"


def split_categories(category: pd.Series) -> pd.Series:
    """'Action|Comedy' -> ['Action', 'Comedy']; None -> []."""
    return category.fillna("").astype(str).str.split(CATEGORY_SEPARATORS, regex=True).map(
        lambda parts: [p for p in parts if p and p != "(no genres listed)"]
    )


def item_texts(items: pd.DataFrame) -> pd.Series:
    """The text that stands for an item: title, categories and description."""
    title = items["title"].fillna("").astype(str)
    cats = items["category"].fillna("").astype(str).str.replace(CATEGORY_SEPARATORS, ", ", regex=True)
    desc = items["description"].fillna("").astype(str)
    joined = title + ". " + cats + ". " + desc
    return joined.str.replace(r"(\.\s*)+$", "", regex=True).str.replace(r"^(\.\s*)+", "", regex=True).str.strip()
