"""Mask personal identifiers in text before it leaves the machine.

E-mail addresses, IBANs, card numbers, phone numbers and IP addresses become
placeholders; ordinary data does not. A card number is grouped as cards print it,
passes the Luhn check and starts like an issuer's number (2-6), so a 13-digit
millisecond epoch (it starts with 1) stays. A phone number is what the
``phonenumbers`` package (Google's libphonenumber) finds valid and grouped the way
its country writes it, which leaves dates, times, prices and ids alone. A dotted
quad after "version" or "build" is a version, not an address. Text with nothing
shaped like a phone number never reaches the phone matcher, so most text costs
only a few regular-expression scans.
"""

from __future__ import annotations

import re

# National formats ("(415) 555-2671", "020 7946 0958") need a region to be read;
# numbers written with +country code are found whatever the region. The matcher
# costs about a millisecond a pass on a line full of numbers, so a region's pass
# runs only when the text has something shaped like its numbers.
PHONE_REGIONS: dict[str, re.Pattern[str]] = {
    # +country code, or a North American 3-3-4 number (optionally after 1)
    "US": re.compile(r"\+\s?\(?\d|(?<!\d)(?:1[\s.-]?)?\(?[2-9]\d\d\)?[\s.-]?[2-9]\d\d[\s.-]?\d{4}(?!\d)"),
    # the British trunk 0 (or 00 to dial abroad) and at least nine more digits
    "GB": re.compile(r"(?<![\w.,:+-])\(?0\d(?:[\s)-]{0,2}\d){8}"),
}

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,3})?\b")
# A card number is written unbroken (13-19 digits) or in the groups printed on cards:
# 4-4-4-4(-3), 4-6-5 (Amex) or 4-6-4 (Diners), separated by spaces or hyphens.
_CARD = re.compile(r"(?<![\w.,])(?:\d{13,19}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})(?!\w|[.,:/-]?\d)")
_IP = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_VERSION_WORD = re.compile(r"(?i)\b(?:v|ver|version|release|build|firmware|update|patch)\.?:?\s*$")
_COMPACT_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])?(?:[0-5]\d){0,2}")


def luhn_valid(digits: str) -> bool:
    """The check digit card numbers carry: doubling every second digit from the right, the sum ends in 0."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    """ISO 13616 mod-97: the country code and check digits moved to the end, letters as 10..35."""
    code = text.replace(" ", "")
    moved = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _is_compact_date(digits: str) -> bool:
    """YYYYMMDD, optionally with HH, MM and SS: a timestamp written without separators."""
    return len(digits) in (8, 10, 12, 14) and _COMPACT_DATE.fullmatch(digits) is not None


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if digits[0] in "23456" and luhn_valid(digits) and not _is_compact_date(digits):
        return "[card]"
    return match.group(0)


def _ip(text: str):
    def replace(match: re.Match[str]) -> str:
        octets = match.group(0).split(".")
        if any(int(o) > 255 or (len(o) > 1 and o[0] == "0") for o in octets):
            return match.group(0)
        if _VERSION_WORD.search(text, max(0, match.start() - 20), match.start()):
            return match.group(0)
        return "[ip]"

    return replace


def _mask_phones(text: str) -> str:
    regions = [region for region, shape in PHONE_REGIONS.items() if shape.search(text)]
    if not regions:
        return text
    import phonenumbers

    spans: list[tuple[int, int]] = []
    for region in regions:
        # STRICT_GROUPING: the digits must be grouped as that country writes them, so
        # "08:34:00 4.95 13047" is not read as a German number dialled from Britain.
        for found in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING):
            raw = found.raw_string
            if raw.isdigit() and _is_compact_date(raw):
                continue
            spans.append((found.start, found.end))
    if not spans:
        return text
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    parts, last = [], 0
    for start, end in merged:
        parts += [text[last:start], "[phone]"]
        last = end
    return "".join(parts) + text[last:]


def mask_identifiers(text: str) -> str:
    """Replace e-mail addresses, IBANs, card and phone numbers and IP addresses with placeholders."""
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(lambda m: "[iban]" if _iban_valid(m.group(0)) else m.group(0), text)
    text = _CARD.sub(_card, text)
    text = _mask_phones(text)
    return _IP.sub(_ip(text), text)
