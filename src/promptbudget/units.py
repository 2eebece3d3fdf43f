"""Human units in budgets: ``6k`` tokens, ``$4,000``, ``35%``.

Each parser takes what YAML gave (an int, a float or a string) and returns an exact value or
raises ``ValueError`` with a sentence that says what would be valid. The manifest schema
carries the same grammar as regular expressions (``TOKENS_PATTERN`` and friends), so editors
flag a bad value before the loader does.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SCALE = {"": Decimal(1), "k": Decimal(1000), "m": Decimal(1_000_000)}

# Shared with manifest/schema.json (a test checks they agree).
TOKENS_PATTERN = r"^\s*[0-9][0-9,_]*(\.[0-9]+)?\s*[kKmM]?\s*$"
USD_PATTERN = r"^\s*\$?\s*[0-9][0-9,_]*(\.[0-9]+)?\s*[kKmM]?\s*$"
PERCENT_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$"

_NUMBER_WITH_SCALE = re.compile(r"^([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([kKmM]?)$")


def _scaled(text: str) -> Decimal | None:
    match = _NUMBER_WITH_SCALE.match(text.strip())
    if match is None:
        return None
    digits, scale = match.groups()
    try:
        value = Decimal(digits.replace(",", "").replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        return None
    return value * _SCALE[scale.lower()]


def parse_tokens(value: object) -> int:
    """``6000``, ``"6k"``, ``"1.5M"``, ``"6,000"`` -> a whole number of tokens."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a token count; write a number such as 6000 or 6k")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(str(value))
    elif isinstance(value, str) and (scaled := _scaled(value)) is not None:
        amount = scaled
    else:
        raise ValueError(f"{value!r} is not a token count; write a number such as 6000, 6k or 1.5M")
    if amount < 0:
        raise ValueError(f"{value!r} is negative; a token count is 0 or more")
    if amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of tokens")
    return int(amount)


def parse_usd(value: object) -> Decimal:
    """``0.01``, ``"$0.01"``, ``"$4,000"``, ``"$1.5k"`` -> exact dollars."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount; write dollars such as $0.01 or $4,000")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        text = text[1:] if text.startswith("$") else text
        scaled = _scaled(text)
        if scaled is None:
            raise ValueError(f"{value!r} is not an amount; write dollars such as $0.01 or $4,000")
        amount = scaled
    else:
        raise ValueError(f"{value!r} is not an amount; write dollars such as $0.01 or $4,000")
    if amount < 0:
        raise ValueError(f"{value!r} is negative; an amount is $0 or more")
    return amount


def parse_share(value: object) -> Decimal:
    """``"35%"`` or a fraction ``0.35`` -> ``Decimal("0.35")``, between 0 and 1."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a share; write a percentage such as 35%")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"{value!r} is not a share; write a percentage such as 35%")
        try:
            share = Decimal(text[:-1].strip()) / 100
        except InvalidOperation as err:
            raise ValueError(f"{value!r} is not a share; write a percentage such as 35%") from err
    elif isinstance(value, int | float):
        share = Decimal(str(value))
        if share > 1:
            raise ValueError(
                f"{value!r} is not a share; write {value}% or a fraction between 0 and 1"
            )
    else:
        raise ValueError(f"{value!r} is not a share; write a percentage such as 35%")
    if share < 0 or share > 1:
        raise ValueError(f"{value!r} is outside 0%..100%")
    return share


def format_tokens(tokens: int) -> str:
    """``12345`` -> ``"12,345"``."""
    return f"{tokens:,}"


def format_usd(amount: Decimal) -> str:
    """Dollars with enough digits to be meaningful: ``$4,012.50``, ``$0.00209``."""
    if amount == 0:
        return "$0"
    if abs(amount) >= 100:
        return f"${amount:,.2f}"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    # Small amounts: keep three significant digits.
    exponent = amount.copy_abs().adjusted()
    places = min(max(2, -exponent + 2), 12)
    text = f"{amount:.{places}f}".rstrip("0")
    if text.endswith("."):
        text += "00"
    return f"${text}"


def format_share(share: Decimal) -> str:
    """``Decimal("0.35")`` -> ``"35%"``."""
    percent = (share * 100).normalize()
    text = f"{percent:f}"
    return f"{text}%"
