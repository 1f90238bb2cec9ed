"""Mask personal identifiers in text before it leaves the machine."""

from __future__ import annotations

import re

_PATTERNS = (
    ("[email]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("[card]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("[iban]", re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}\b")),
    ("[phone]", re.compile(r"(?<![\w.])\+?\d[\d ().-]{7,}\d(?![\w.])")),
    ("[ip]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
)


def mask_identifiers(text: str) -> str:
    """Replace e-mail addresses, card and phone numbers, IBANs and IP addresses with placeholders."""
    for placeholder, pattern in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text
