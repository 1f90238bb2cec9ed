"""Personal identifiers are masked before text leaves the machine: e-mail addresses, and the function's contract.

(Dates, epochs and version numbers that the masking must leave alone are tested with its fixes.)
"""

from __future__ import annotations

import numpy as np
import pytest

from tools.core.privacy import mask_identifiers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at ann@example.com please", "mail me at [email] please"),
        ("Jane.Doe+shop@Mail.Example.CO.UK wrote", "[email] wrote"),
        ("a_b%c-d@sub-domain.example.org, again", "[email], again"),
        ("two: x@a.io and y@b.io.", "two: [email] and [email]."),
        ("<data>bob@example.net</data>", "<data>[email]</data>"),
    ],
)
def test_email_addresses_are_masked_and_the_rest_kept(text, expected):
    assert mask_identifiers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Loved the compost bin, 5 stars!",
        "user@localhost has no domain",  # no top-level domain: not an address
        "rate it @ home",
        "price 12.50, size M",
    ],
)
def test_text_without_identifiers_is_returned_unchanged(text):
    assert mask_identifiers(text) == text


def test_masking_is_idempotent_and_returns_a_new_string():
    text = "write to ann@example.com or bob@example.com"
    once = mask_identifiers(text)
    assert once == "write to [email] or [email]"
    assert mask_identifiers(once) == once
    assert text == "write to ann@example.com or bob@example.com"  # the input is left as it was
    assert isinstance(once, str)


def test_report_member_texts_are_masked():
    # The report quotes members' texts through the same function.
    from tools.report.model import ReportInput, build_cards

    summary = {
        "data": {"kind": "behaviour"},
        "segments": [{"id": 0, "name": "A", "description": "", "size": 50, "share": 1.0, "keywords": [], "traits": [],
                      "representative_user_ids": ["u1"], "representative_texts": ["reach me at ann@example.com"]}],
    }
    inp = ReportInput(summary=summary, map_points=np.zeros((0, 2)), map_labels=np.zeros(0, int), examples={},
                      explanation_pass_rate=None)
    card = build_cards(inp, None)[0]
    assert card.member_texts == ("reach me at [email]",)
