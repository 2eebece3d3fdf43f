"""Whitespace normalised by ``str.split`` (the duplicates pass) is what
the regex ``\\s+`` gave, and the report escaper's per-class field list is ``dataclasses``'."""

from __future__ import annotations

import dataclasses
import re
import sys

from hypothesis import given
from hypothesis import strategies as st

from promptbudget.compression.duplicates import _is_role_line, _normal
from promptbudget.compression.passages import _paragraphs
from promptbudget.compression.protect import CLOSE, OPEN, PLACEHOLDER, Protected
from promptbudget.findings import Finding, Severity
from promptbudget.reporters.escape import _init_fields, escape_report

_SPACES = re.compile(r"\s+")


def test_split_and_the_regex_agree_on_every_code_point() -> None:
    differ = [
        code
        for code in range(sys.maxunicode + 1)
        if bool(_SPACES.fullmatch(chr(code))) != chr(code).isspace()
    ]
    assert differ == []


_TEXT = st.text(alphabet=st.sampled_from(list("ab .\t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000")))


@given(_TEXT)
def test_normal_is_the_regex_normalisation(text: str) -> None:
    assert _normal(text) == _SPACES.sub(" ", text).strip()


@given(_TEXT)
def test_paragraphs_are_normalised_as_before(text: str) -> None:
    for paragraph, _ in _paragraphs(text, 1):
        assert paragraph == _SPACES.sub(" ", paragraph).strip()
    assert _paragraphs("a  b\n c\t\n\nd", 3) == [("a b c", 3), ("d", 6)]


@dataclasses.dataclass(frozen=True)
class _Row:
    name: str
    shown: str = dataclasses.field(init=False, default="")


def test_init_fields_are_the_dataclass_init_fields() -> None:
    assert _init_fields(_Row) == ("name",)
    assert _init_fields(Finding) == tuple(f.name for f in dataclasses.fields(Finding))
    assert _init_fields(str) is None
    finding = Finding(
        rule="PB001", slug="template-error", severity=Severity.ERROR, message="a\nb", path="x"
    )
    assert escape_report((finding,))[0].message == "a\\nb"


class _EveryOtherRole(Protected):
    def kind(self, index: int) -> str:
        return "role" if index % 2 == 0 else "text"


def _role_line_by_match(line: str, protected: Protected) -> bool:
    """The check as it was written before its fast path."""
    matches = list(PLACEHOLDER.finditer(line.strip()))
    return (
        len(matches) == 1
        and matches[0].group(0) == line.strip()
        and protected.kind(int(matches[0].group(1))) == "role"
    )


@given(st.text(alphabet=st.sampled_from(["a", " ", "\t", OPEN, CLOSE, "0", "1", "x"])))
def test_role_line_fast_path_agrees_with_the_match(line: str) -> None:
    protected = _EveryOtherRole(line, ())
    assert _is_role_line(line, protected) == _role_line_by_match(line, protected)
    assert _is_role_line(f" {OPEN}4{CLOSE}\t", protected)
