"""Human units in budgets: ``6k`` tokens, ``$4,000``, ``35%``.

Each parser takes what YAML gave (an int, a float or a string) and returns an exact value or
raises ``ValueError`` with a sentence that says what would be valid. The manifest schema
carries the same grammar as regular expressions (``TOKENS_PATTERN`` and friends), so editors
flag a bad value before the loader does.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

from promptbudget.errors import UsageError

_SCALE = {"": Decimal(1), "k": Decimal(1000), "m": Decimal(1_000_000)}

# Shared with manifest/schema.json (a test checks they agree).
TOKENS_PATTERN = r"^\s*[0-9][0-9,_]*(\.[0-9]+)?\s*[kKmM]?\s*$"
USD_PATTERN = r"^\s*\$?\s*[0-9][0-9,_]*(\.[0-9]+)?\s*[kKmM]?\s*$"
PERCENT_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$"

_NUMBER_WITH_SCALE = re.compile(r"^([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([kKmM]?)$")


# Bounds on what a manifest may say (SECURITY.md): far above anything real, low enough that
# no arithmetic on them overflows or takes long.
MAX_TOKENS = 1_000_000_000
MAX_USD = 1_000_000_000_000


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
    if amount > MAX_TOKENS:
        raise ValueError(f"{value!r} is more than {MAX_TOKENS:,} tokens, the most a count can be")
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
    if amount > MAX_USD:
        raise ValueError(f"{value!r} is more than ${MAX_USD:,}, the most an amount can be")
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


def parse_percent_option(value: str, option: str, example: str) -> Decimal:
    """A command-line percentage of any size from 0%: ``"25%"`` -> ``Decimal(25)``."""
    problem = f"{option} {value!r}: write a percentage such as {example}"
    text = value.strip()
    if not text.endswith("%"):
        raise UsageError(problem)
    try:
        percent = Decimal(text[:-1].strip())
    except InvalidOperation as err:
        raise UsageError(problem) from err
    if not percent.is_finite() or percent < 0:
        raise UsageError(problem)
    return percent


def format_tokens(tokens: int) -> str:
    """``12345`` -> ``"12,345"``."""
    return f"{tokens:,}"


def format_usd_apart(amount: Decimal, other: Decimal) -> str:
    """``amount`` with enough digits that it does not read as ``other`` ($0.0008004 next to a
    $0.0008 limit, not $0.000800)."""
    if abs(amount) >= 1:
        places = 2
        while places < 12 and _round_places(amount, places) == other != amount:
            places += 1
        return f"{'-' if amount < 0 else ''}${abs(_round_places(amount, places)):,.{places}f}"
    digits = 3
    while digits < 12 and _round_significant(amount, digits) == other != amount:
        digits += 1
    return format_usd(amount, significant=digits)


def quantize(amount: Decimal, exponent: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``amount.quantize(exponent)`` with as many digits as that takes: the default context's
    28 would make it fail on an amount above ~1e16 at 1e-12 (the exact mean of a heavy-tailed
    ``{p50, p95}`` can be astronomically large)."""
    digits = max(28, amount.adjusted() - exponent.adjusted() + 2)
    return amount.quantize(exponent, rounding=rounding, context=Context(prec=digits))


def _round_places(amount: Decimal, places: int) -> Decimal:
    return quantize(amount, Decimal(1).scaleb(-places), ROUND_HALF_UP)


def _round_significant(amount: Decimal, digits: int) -> Decimal:
    places = digits - 1 - amount.adjusted()
    return quantize(amount, Decimal(1).scaleb(-places), ROUND_HALF_UP)


def format_usd(amount: Decimal, *, exact: bool = False, significant: int = 3) -> str:
    """Dollars for people.

    Computed amounts: two decimals from $1 up (``$4,797.18``), three significant digits below
    (``$0.00796``, ``$0.00800``, ``$0.0000353``), rounded half up. ``exact=True`` is for values
    a user wrote (limits): shown as written, ``$4,000``, ``$0.012``, ``$12.50``.
    """
    if amount == 0:
        return "$0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if exact:
        normal = amount.normalize()
        places = max(0, -normal.as_tuple().exponent)  # type: ignore[operator]
        if places == 0:
            return f"{sign}${amount:,.0f}"
        return f"{sign}${amount:,.{max(places, 2)}f}"
    if amount >= 1:
        return f"{sign}${_round_places(amount, 2):,.2f}"
    places = significant - 1 - amount.adjusted()
    rounded = _round_significant(amount, significant)
    if rounded >= 1:
        return f"{sign}${rounded:,.2f}"
    return f"{sign}${rounded:,.{max(places, 2)}f}"


def format_ms(value: float, *, exact: bool = False, other: float | None = None) -> str:
    """``4,700 ms``; ``exact``: as written (``1,500.5 ms``); with ``other`` (a limit), enough
    decimals to tell the two apart."""
    places = 0
    for places in range(4):
        if exact:
            if round(value, places) == value:
                break
        elif other is None or value == other or round(value, places) != round(other, places):
            break
    return f"{value:,.{places}f} ms"


def format_share(share: Decimal) -> str:
    """``Decimal("0.35")`` -> ``"35%"``."""
    percent = (share * 100).normalize()
    text = f"{percent:f}"
    return f"{text}%"


def parse_percent_value(value: object) -> Decimal:
    """``10%`` -> Decimal(10) (a percentage, as ``--fail-on-increase`` takes it)."""
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = Decimal(text)
    except ArithmeticError as err:
        raise ValueError(f"{value!r} is not a percentage such as 10%") from err
    if not number.is_finite() or number < 0:
        raise ValueError(f"{value!r} is not a percentage such as 10%")
    return number
