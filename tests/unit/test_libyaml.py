"""libyaml (PyYAML's C parser) and PyYAML's pure-Python parser give the same answers through
the bounded loaders: the same data and lines for a document both accept, and, for one either
refuses, the pure-Python error (``bounded.with_fallback``). Checked on every YAML file in the
repository, on front matter of the corpus, and on generated text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptbudget import bounded
from promptbudget.errors import ManifestError
from promptbudget.manifest import loader

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not hasattr(yaml, "CSafeLoader"), reason="this PyYAML was built without libyaml"
)


@contextmanager
def pure_only() -> Iterator[None]:
    saved = bounded._LIBYAML_LOADER
    bounded._LIBYAML_LOADER = None
    try:
        yield
    finally:
        bounded._LIBYAML_LOADER = saved


def outcome(load: Callable[[str], Any], text: str) -> tuple[str, Any]:
    try:
        return "ok", load(text)
    except (yaml.YAMLError, bounded.InputBoundsError, ManifestError) as err:
        return type(err).__name__, str(err)


def compose(text: str) -> Any:
    return loader._compose_yaml(text, "budgets.yaml")


def both(text: str, *, refused_by_both: bool = False) -> None:
    """What PyYAML accepts, libyaml reads the same (data and lines); what PyYAML refuses is
    refused with PyYAML's error, unless libyaml accepts it (it accepts a few malformed
    documents, see ``bounded.with_fallback``)."""
    for load in (bounded.load_yaml, compose):
        fast = outcome(load, text)
        with pure_only():
            pure = outcome(load, text)
        if pure[0] == "ok" or refused_by_both or fast[0] != "ok":
            assert fast == pure, text


def repository_documents() -> list[Path]:
    found = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in REPO.rglob(pattern)
        if not any(part.startswith(".") or part == "node_modules" for part in path.parts)
    ]
    assert len(found) > 20
    return sorted(found)


def test_every_yaml_file_in_the_repository() -> None:
    for path in repository_documents():
        both(path.read_text(encoding="utf-8", errors="replace"))


def test_corpus_front_matter() -> None:
    seen = 0
    for path in sorted((REPO / "tests" / "corpus").rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---\n") and "\n---" in text[4:]:
            both(text[4 : text.index("\n---", 4)])
            seen += 1
    assert seen > 0


EDGES = [
    "a: [1, 2\n",  # unclosed flow sequence
    "a: 1\n b: 2\n",  # bad indentation
    "a: *nowhere\n",  # undefined alias
    "a: 'unclosed\n",
    "\tkey: value\n",  # a tab as indentation
    "a: b\x07c\n",  # a control character (a reader error: pure Python's line and message)
    # read otherwise by libyaml, so read by PyYAML alone:
    "a: x\ty\n",  # a tab as separation: libyaml accepts it, PyYAML (as before) does not
    "- a\t\n",
    "\n\ufeff",  # a byte order mark inside the stream: libyaml reads None, PyYAML the mark
    "a: !\n",  # a lone non-specific tag: libyaml reads "", PyYAML None
    "? !\n",
    "---\n",  # an empty document: libyaml puts it on line 2
    "a: 1\na: 2\n",  # a duplicate key (the loader's own error)
    "a: " + "9" * 150 + "\n",  # an integer past the digits bound
    "- " * 80 + "x\n",  # nesting past the depth bound
    "a: &x [1]\nb: !!python/object:os.system x\n",  # a tag the safe loader refuses
]


@pytest.mark.parametrize("text", EDGES, ids=range(len(EDGES)))
def test_edge_documents_read_as_pyyaml_reads_them(text: str) -> None:
    """Refused by both, or read otherwise by libyaml: the answer is PyYAML's, exactly."""
    both(text, refused_by_both=True)


def test_fallback_reports_pure_pythons_message() -> None:
    with pytest.raises(ManifestError) as fast:
        compose("workflows:\n  w: [1, 2\n")
    with pure_only(), pytest.raises(ManifestError) as pure:
        compose("workflows:\n  w: [1, 2\n")
    assert str(fast.value) == str(pure.value)


YAML_PIECES = st.sampled_from(
    [
        "a", "b", "key", "1", "-1", "0x1f", "1e3", ".inf", "~", "null", "yes", "no", "true",
        ":", ": ", "- ", "-", "#", " #", "'", '"', "[", "]", "{", "}", ",", "&a ", "*a",
        "!!str ", "!!int ", "|", ">", "|-", "? ", "---", "...", "%YAML 1.1", "\\n", "\\t",
        "é", "\u2028", "\t", " ", "  ", "\n", "\n  ", "\n- ", "<<: *a", "@", "`", "%",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_PIECES, max_size=30).map("".join))
def test_generated_text(text: str) -> None:
    both(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    ),
    st.sampled_from([None, True, False]),
)
def test_dumped_documents(data: Any, flow: bool | None) -> None:
    both(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))
