"""``reporters.jsontext.dumps`` prints what ``json.dumps(value, indent=2,
ensure_ascii=False)`` prints, character for character, for any JSON value; an ``Items`` is
printed as the array of its members and made while it is written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from promptbudget.reporters.jsontext import Items, dumps

# Any JSON text: keys and strings with newlines, quotes, backslashes, control and non-ASCII
# characters; numbers of every kind json prints (nan and infinities too: allow_nan is on).
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=60,
)


def _expected(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@given(_VALUES)
def test_the_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == _expected(value)


@given(st.lists(_VALUES, max_size=6), st.integers(min_value=0, max_value=6))
def test_items_print_as_the_array_of_their_members(members: list[Any], depth: int) -> None:
    nested: Any = Items(iter(members))
    plain: Any = members
    for level in range(depth):  # as deep as a SARIF log's results, and deeper
        if level % 2:
            nested, plain = [nested], [plain]
        else:
            nested, plain = {"k": nested, "n": level}, {"k": plain, "n": level}
    assert dumps(nested) == _expected(plain)


def test_items_are_made_while_written() -> None:
    made: list[int] = []

    def members() -> Any:
        for number in range(3):
            made.append(number)
            yield {"n": number}

    assert dumps({"a": Items(members())}) == _expected({"a": [{"n": 0}, {"n": 1}, {"n": 2}]})
    assert made == [0, 1, 2]


def test_many_members_and_non_string_keys() -> None:
    big = {"templates": [{"path": f"p/{i}.j2", "tokens": i, "ok": i % 2 == 0} for i in range(3000)]}
    assert dumps(big) == _expected(big)
    assert dumps({"templates": Items(iter(big["templates"])), "n": 1}) == _expected(
        {"templates": big["templates"], "n": 1}
    )
    odd = {"a": {1: "one", None: [], False: {}, 2.5: 0}}  # json turns such keys into strings
    assert dumps(odd) == _expected(odd)
    lazy = {"a": {1: Items(iter(["x"])), "b": []}}
    assert dumps(lazy) == _expected({"a": {1: ["x"], "b": []}})
