"""Masking personal identifiers (tools/core/privacy.py): real ones go, ordinary data stays exactly as it was."""

from __future__ import annotations

import pytest

from tools.core.privacy import luhn_valid, mask_identifiers

ORDINARY = [
    "2024-03-01 12:00",
    "delivered 2024-03-01 12:00:00 UTC, two days late",
    "1709294400000",  # a millisecond epoch (13 digits: card-length)
    "1709294400123456",  # microseconds
    "1709294400123456789",  # nanoseconds
    "1709294400",  # seconds
    "version 1.2.3.4",
    "updated the app to build 10.0.19041.1 and v1.2.3.4",
    "order 20240315123000 and batch 2024031512",  # timestamps written without separators
    "4111111111111112",  # card-shaped, fails the Luhn check
    "price 1,299.99, was 2,499.00",
    "ISBN 978-3-16-148410-0",
    "ratings 5 4 3 5 5 4 3 2 5 4 3 5 4 1",
    "dates 01.02.2024 and 2024.03.01",
    "code GB00 WEST 1234 5698 7654 32",  # IBAN-shaped with a wrong check
    # rows of real datasets as a model would see them (online retail, dunnhumby, diginetica, MovieLens)
    "536365 85123A WHITE HANGING HEART T-LIGHT HOLDER 6 2010-12-01 08:26:00 2.55 17850.0 United Kingdom",
    "2131 368 32053127496 873902 1 1.59 0.9 0.0 0.0 10 2017-02-28 22:31:57",
    "2 nan 3147 883039 2016-05-09",
    "1 1 4.0 964982703",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_data_passes_untouched(text):
    assert mask_identifiers(text) == text


@pytest.mark.parametrize(
    "text, placeholder",
    [
        ("jane.doe@example.com", "[email]"),
        ("+44 20 7946 0958", "[phone]"),
        ("(415) 555-2671", "[phone]"),
        ("415-555-2671", "[phone]"),
        ("+1 (415) 555-2671", "[phone]"),
        ("020 7946 0958", "[phone]"),
        ("+33 1 42 68 53 00", "[phone]"),
        ("4111111111111111", "[card]"),
        ("4111 1111 1111 1111", "[card]"),
        ("5500-0000-0000-0004", "[card]"),
        ("3782 822463 10005", "[card]"),  # Amex grouping
        ("GB82 WEST 1234 5698 7654 32", "[iban]"),
        ("192.168.1.10", "[ip]"),
    ],
)
def test_identifiers_are_masked(text, placeholder):
    assert mask_identifiers(f"reach me: {text}, thanks") == f"reach me: {placeholder}, thanks"


def test_identifiers_and_ordinary_data_in_one_text():
    text = ("Order 1709294400000 of 2024-03-01 12:00 (app version 1.2.3.4): call +44 20 7946 0958 or (415) 555-2671, "
            "mail jane.doe@example.com, card 4111 1111 1111 1111, from 192.168.1.10.")
    assert mask_identifiers(text) == (
        "Order 1709294400000 of 2024-03-01 12:00 (app version 1.2.3.4): call [phone] or [phone], "
        "mail [email], card [card], from [ip]."
    )


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112") and not luhn_valid("79927398710")
