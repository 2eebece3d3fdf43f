"""The JSON codec of a file's settled evaluation (``resultcodec``, for the per-file cache of
issue 13): real ``FileCheck``s and generated values come back equal and of the same types
through the cache's own shards, and damaged or hostile data is a ``ValueError``, never
anything else (no pickle: nothing in the data picks what code runs)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import re
import shutil
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CORPUS, EXAMPLES
from promptbudget import evaluation, filecache, resultcodec
from promptbudget.cache import Store
from promptbudget.compression import CompressionResult, PassSaving
from promptbudget.compression.passages import IndexPart
from promptbudget.counting import TemplateCount
from promptbudget.evaluation import FileCheck
from promptbudget.manifest.model import Distribution
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.resultcodec import Unencodable, decode, encode, settle_exactly
from promptbudget.rules.base import TemplateResult
from promptbudget.suppressions import Suppression
from promptbudget.templates.meta import ParsedTemplate, TemplateMeta
from promptbudget.templates.rendered import Message, RenderedPrompt, Slot, VariableValue
from promptbudget.templates.source import TemplateFormat
from promptbudget.tools import Tool

# A small project for what examples/ and the corpus lack: a released file's suppression
# comments, a Prompty sample holding floats, nested lists and maps, and a sized variable.
MADE = {
    "budgets.yaml": (
        "version: 1\nprompts: prompts/\ndefaults: {model: gpt-4.1-mini}\n"
        "variables:\n  question: {max_tokens: 40, tokens: {p50: 10, p95: 30}}\n"
    ),
    "prompts/quiet.j2": (
        "{# promptbudget: disable=PB201 #}\nHello {{ nobody }} and {{ question }}.\n"
        "{# promptbudget: disable-next-line=PB203 #}\nBye.\n"
    ),
    "prompts/sampled.prompty": (
        "---\nname: sampled\nsample:\n  items: [1, 2.5, {a: [true, null]}, [x, y]]\n"
        "  who: Zo\u00eb\n---\nsystem:\nHi {{who}}: {% for i in items %}{{i}} {% endfor %}\n"
    ),
}


def _file_checks(root: Path, keep: bool) -> list[FileCheck]:
    """Every FileCheck ``check_templates`` makes in ``root`` (taken where
    ``filecache.through_cache`` hands each file's evaluation to ``parallel.in_order``),
    keeping text and messages or not."""
    made: list[FileCheck] = []
    real = filecache.in_order

    def kept(items: Any, work: Callable[[int], FileCheck], *args: Any, **kw: Any) -> Any:
        def recorded(index: int) -> FileCheck:
            made.append(work(index))
            return made[-1]

        return real(items, recorded, *args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMPTBUDGET_JOBS", "1")
        patch.setattr(filecache, "in_order", kept)
        project = Project.open(Options(cwd=root, use_cache=False), require_manifest=True)
        assert project.manifest is not None
        evaluation.check_templates(
            project, project.manifest.compression, keep_text=keep, keep_messages=lambda _: keep
        )
    return made


@pytest.fixture(scope="module")
def real_checks(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, list[FileCheck]]:
    corpus = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS, corpus / "prompts")
    (corpus / "budgets.yaml").write_text("version: 1\nprompts: prompts/\n", encoding="utf-8")
    made = tmp_path_factory.mktemp("made")
    for name, text in MADE.items():
        (made / name).parent.mkdir(parents=True, exist_ok=True)
        (made / name).write_text(text, encoding="utf-8")
    roots = (EXAMPLES, corpus, made)
    return {keep: [c for root in roots for c in _file_checks(root, keep)] for keep in (False, True)}


def through_the_cache(values: list[Any], directory: Path) -> list[Any]:
    """``values`` written to a cache shard and read back by another Store, as a run does."""
    store = Store(directory / "cache", directory / "key")
    keys = [f"{n:032x}" for n in range(len(values))]
    for key, value in zip(keys, values, strict=True):
        store.put(key, value)
    store.flush()
    again = Store(directory / "cache", directory / "key")
    return [again.get(key) for key in keys]


def assert_same(back: Any, value: Any, where: str = "") -> None:
    """Equal, and of the same type all the way down (a tuple stays a tuple, a frozenset a
    frozenset, a Path a Path, an enum an enum, a bool a bool)."""
    assert type(back) is type(value), (where, type(back), type(value))
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            name = field.name
            assert_same(getattr(back, name), getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        assert len(back) == len(value), where
        for n, (a, b) in enumerate(zip(back, value, strict=True)):
            assert_same(a, b, f"{where}[{n}]")
    elif isinstance(value, dict):
        assert list(back) == list(value), where
        for key in value:
            assert_same(back[key], value[key], f"{where}[{key!r}]")
    elif isinstance(value, frozenset):
        assert {(type(x), x) for x in back} == {(type(x), x) for x in value}, where
    elif isinstance(value, float) and math.isnan(value):
        pytest.fail(f"a NaN came back at {where}")
    else:
        assert back == value, where


def _types_in(value: Any, found: set[type]) -> set[type]:
    found.add(type(value))
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            _types_in(getattr(value, field.name), found)
    elif isinstance(value, list | tuple | frozenset):
        for item in value:
            _types_in(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _types_in(item, found)
    return found


@pytest.mark.parametrize("keep", [False, True], ids=["settled", "with text and messages"])
def test_real_file_checks_come_back_equal_through_a_cache_shard(
    real_checks: dict[bool, list[FileCheck]], keep: bool, tmp_path: Path
) -> None:
    checks = real_checks[keep]
    # examples/ (5 files), the corpus (109 files, two in no format we read), the made project
    assert len(checks) >= 115
    encoded = [settle_exactly(check, FileCheck) for check in checks]
    assert all(data is not None for data in encoded)
    for back, check in zip(through_the_cache(encoded, tmp_path), checks, strict=True):
        assert_same(decode(back, FileCheck), check)
    # what the round trip went through: every kind of value FileCheck holds in real runs
    found: set[type] = set()
    for check in checks:
        _types_in(check, found)
    expected = {Distribution, Tool, Suppression, VariableValue, PassSaving, float}
    assert expected | {TemplateFormat, frozenset, type(Path())} <= found
    assert (Slot in found) == keep  # a capped variable's part of a kept message
    assert any(check.released for check in checks)
    assert any(result.rendered.messages for check in checks for result in check.results) == keep
    assert any(result.parsed.text for check in checks for result in check.results) == keep


def test_a_typical_file_check_is_a_few_kilobytes(real_checks: dict[bool, list[FileCheck]]) -> None:
    sizes = sorted(
        len(json.dumps(encode(check, FileCheck), separators=(",", ":")))
        for check in real_checks[False]
    )
    assert 500 < sizes[len(sizes) // 2] < 5000  # the module docstring gives the figures


# -- generated values ------------------------------------------------------------------------

# Unicode, lone surrogates (a file name read with surrogateescape holds them), no pairs
TEXT = st.text(max_size=12) | st.sampled_from(["\udcff", "a\udc80b", "\ud800", "\U0001f600"])
INTS = st.integers(-(2**64), 2**64)
SCALARS = st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | TEXT
ANY = st.recursive(
    SCALARS | st.builds(Distribution, INTS, INTS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(TEXT, inner, max_size=3)
    ),
    max_leaves=8,
)
# What rules/base.py imports for its hints only under TYPE_CHECKING
NAMES = {
    "CompressionResult": CompressionResult,
    "ParsedTemplate": ParsedTemplate,
    "RenderedPrompt": RenderedPrompt,
    "TemplateCount": TemplateCount,
}


def strategy(kind: Any) -> st.SearchStrategy[Any]:
    """Values of ``kind``, written from the hints alone (hypothesis's ``from_type`` neither
    resolves the TYPE_CHECKING names nor makes an ``Any``, and leaves defaults alone)."""
    if kind is Any:
        return ANY
    simple = {str: TEXT, int: INTS, bool: st.booleans(), bytes: st.binary(max_size=8)}
    if kind in simple:
        return simple[kind]
    if kind is type(None):
        return st.none()
    if kind is Path:
        return st.builds(Path, TEXT)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind, localns=NAMES)
        fields = [f.name for f in dataclasses.fields(kind)]
        return st.builds(kind, **{name: strategy(hints[name]) for name in fields})
    if isinstance(kind, type):  # an enum
        return st.sampled_from(list(kind))
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*map(strategy, args))
    if origin is tuple and args[-1:] == (Ellipsis,):
        return st.lists(strategy(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*map(strategy, args))
    if origin in (list, frozenset):
        return st.lists(strategy(args[0]), max_size=3).map(origin)
    assert origin in (dict, Mapping), kind
    return st.dictionaries(TEXT, strategy(args[1]), max_size=3)


# A high surrogate then a low one: JSON text makes them one character (``"\ud800\udc00"``
# is read back as U+10000)
PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def assert_round_trip(value: Any, kind: Any) -> None:
    """``value`` comes back through JSON text written as cache.Store.flush writes it, unless
    it holds a string JSON cannot give back (then ``settle_exactly`` refuses it)."""
    data = settle_exactly(value, kind)
    assert (data is None) == bool(PAIR.search(strings_in(value)))
    if data is not None:
        text = json.dumps(data, separators=(",", ":")).encode()
        assert_same(decode(json.loads(text), kind), value)


def strings_in(value: Any) -> str:
    """Every string in ``value`` (field values, items, keys), one after another, apart."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, str):
            found.append(item)
        elif dataclasses.is_dataclass(item):
            for field in dataclasses.fields(item):
                walk(getattr(item, field.name))
        elif isinstance(item, Mapping):
            for key, element in item.items():
                walk(key)
                walk(element)
        elif isinstance(item, list | tuple | frozenset):
            for element in item:
                walk(element)
        elif isinstance(item, Path):
            walk(str(item))

    walk(value)
    return "\0".join(found)


# Every field generated: message parts that are text or a Slot, samples of every kind, ...
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(strategy(FileCheck))
def test_generated_file_checks_come_back_equal(check: FileCheck) -> None:
    assert_round_trip(check, FileCheck)


@settings(max_examples=200, deadline=None)
@given(st.lists(strategy(Message), max_size=4), st.dictionaries(TEXT, ANY, max_size=4))
def test_messages_with_slots_and_samples_of_every_kind(
    messages: list[Message], samples: dict[str, Any]
) -> None:
    assert_round_trip(messages, list[Message])
    assert_round_trip(samples, Mapping[str, Any])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)), max_size=4))
def test_surrogates_come_back_unless_json_would_join_them(texts: list[str]) -> None:
    assert_round_trip(tuple(texts), tuple[str, ...])
    assert_round_trip(Message("user", tuple(texts)), Message)


def test_a_surrogate_pair_written_apart_is_not_settled() -> None:
    assert json.loads(json.dumps("\ud800\udc00")) == "\U00010000"
    message = Message("user", ("a\ud800\udc00",))
    assert encode(message, Message) == ["user", ["a\ud800\udc00"], None]
    assert settle_exactly(message, Message) is None
    assert settle_exactly(Message("user", ("a\ud800", "\udc00")), Message) is not None


def test_lone_surrogates_and_other_unicode_survive_the_cache(tmp_path: Path) -> None:
    text = "\udcff caf\u00e9 \U0001f600 \ud800"
    message = Message("user", (text, Slot("x\udcff", 5, True)), name=text)
    data = encode(message, Message)
    [back] = through_the_cache([data], tmp_path)
    assert_same(decode(back, Message), message)


@pytest.mark.parametrize("text", ["zz", "AB", "ab cd", "abc", 7])
def test_bytes_are_canonical_hex(text: Any) -> None:
    with pytest.raises(ValueError):
        decode(text, bytes)


def test_values_are_kept_as_their_declared_type() -> None:
    assert encode(TemplateFormat.PROMPTY, TemplateFormat) == "prompty"
    assert encode(b"\x00\xff", bytes) == "00ff"
    assert encode(Path("a/b"), Path) == "a/b"
    assert encode(frozenset({"b", "c", "a"}), frozenset[str]) == ["a", "b", "c"]
    assert encode(("t", 1), tuple[str, int]) == ["t", 1]
    assert encode(PassSaving("json", 3), PassSaving) == ["json", 3]
    samples = {"d": Distribution(3, 9), "t": (1, [2.5]), "n": None}
    assert encode(samples, Mapping[str, Any]) == {
        "d": ["D", 3, 9],
        "t": ["t", 1, ["l", 2.5]],
        "n": None,
    }
    assert encode(("x", Slot("v", 2, False)), tuple[str | Slot, ...]) == ["x", ["v", 2, False]]


def test_a_distribution_is_rebuilt_with_its_cached_sigma() -> None:
    spread = Distribution(250, 600)
    assert spread.sigma > 0  # computed and kept in the instance: not a field, not encoded
    assert encode(spread, Distribution) == [250, 600]
    back = decode([250, 600], Distribution)
    assert back == spread and back.sigma == spread.sigma and back.at(1.0) == spread.at(1.0)


# -- what cannot be kept exactly ----------------------------------------------------------------


def _with_samples(check: FileCheck, samples: Any) -> FileCheck:
    result = check.results[0]
    parsed = result.parsed
    meta = dataclasses.replace(parsed.meta, samples=samples)
    parsed = dataclasses.replace(parsed, meta=meta)
    return dataclasses.replace(check, results=[dataclasses.replace(result, parsed=parsed)])


@pytest.mark.parametrize(
    "sample",
    [
        {1: "a key that is not a string"},
        {"a", "set"},
        float("nan"),
        [1, (2, float("nan"))],
        2**2000,
        Path("p"),
        b"bytes",
    ],
    ids=lambda value: type(value).__name__,
)
def test_a_sample_json_cannot_hold_is_unencodable(
    real_checks: dict[bool, list[FileCheck]], sample: Any
) -> None:
    check = _with_samples(real_checks[False][0], {"x": sample})
    with pytest.raises(Unencodable):
        encode(check, FileCheck)
    assert settle_exactly(check, FileCheck) is None


@pytest.mark.parametrize(
    "sample",
    [
        datetime.date(2026, 12, 5),  # YAML reads an unquoted date as one
        datetime.datetime(2026, 12, 5, 22, 30),
        datetime.datetime(2026, 12, 5, 22, 30, 1, 250, tzinfo=datetime.timezone.utc),
        datetime.datetime(
            2026, 12, 5, 22, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))
        ),
        [datetime.date(1, 1, 1), {"t": (datetime.date(9999, 12, 31),)}],
    ],
    ids=str,
)
def test_a_yaml_timestamp_comes_back_the_same(
    real_checks: dict[bool, list[FileCheck]], sample: Any
) -> None:
    check = _with_samples(real_checks[False][0], {"x": sample})
    back = decode(json.loads(json.dumps(encode(check, FileCheck))), FileCheck)
    assert back == check
    value = back.results[0].parsed.meta.samples["x"]
    assert type(value) is type(sample) and str(value) == str(sample)  # as Jinja2 prints it
    assert settle_exactly(check, FileCheck) is not None


@pytest.mark.parametrize(
    "tagged",
    [["d"], ["d", 5], ["d", "2026-13-01"], ["T", "noon"], ["d", "2026-12-05", "x"], ["T", None]],
    ids=str,
)
def test_a_damaged_timestamp_is_a_value_error(
    real_checks: dict[bool, list[FileCheck]], tagged: list[Any]
) -> None:
    data = encode(_with_samples(real_checks[False][0], {"x": "placeholder"}), FileCheck)
    text = json.dumps(data).replace('"placeholder"', json.dumps(tagged))
    with pytest.raises(ValueError):
        decode(json.loads(text), FileCheck)


def test_a_sample_nested_too_deep_is_unencodable() -> None:
    deep: Any = "leaf"
    for _ in range(resultcodec.MAX_DEPTH):
        deep = [deep]
    encode(deep, Any)  # as deep as allowed
    with pytest.raises(Unencodable):
        encode([deep], Any)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, int),
        (1, bool),
        (1, float),
        (1.5, int),
        ("x", bytes),
        ("prompty", TemplateFormat),
        ([1], tuple[int, ...]),
        ((1,), list[int]),
        ({"x"}, frozenset[str]),
        ((1, 2, 3), tuple[int, int]),
        ({1: 2}, dict[str, int]),
        (PassSaving("json", True), PassSaving),
        (Tool("t", "", {}), Message),
        (Suppression("a.j2", 1, "everywhere", (), ()), Suppression),
        (Slot("v", 1, True), str | None),
        (float("inf") * 0, float),
    ],
    ids=str,
)
def test_a_value_not_of_its_declared_type_is_unencodable(value: Any, kind: Any) -> None:
    with pytest.raises(Unencodable):
        encode(value, kind)
    assert settle_exactly(value, kind) is None


# -- damaged and hostile data ------------------------------------------------------------------


def _encoded(real_checks: dict[bool, list[FileCheck]]) -> Any:
    """A real FileCheck's JSON, fresh (the tests damage it)."""
    data = encode(real_checks[True][0], FileCheck)
    return json.loads(json.dumps(data))


def _parsed(data: Any) -> list[Any]:
    """The ParsedTemplate of the first result, in a FileCheck's JSON."""
    return typing.cast(list[Any], data[0][0][0])


def _released(scope: str) -> Any:
    return [["a.j2", 1, scope, ["PB201"], ["PB201"], 1, None]]


def _paragraphs(digest: Any) -> Any:
    return [["a.j2", [[digest, 1, "paragraph"]]]]


def test_the_parts_the_damage_tests_write_decode_when_well_formed(
    real_checks: dict[bool, list[FileCheck]],
) -> None:
    data = _encoded(real_checks)
    data[3], data[4] = _paragraphs("ab00"), _released("next-line")
    check = decode(data, FileCheck)
    assert check.paragraphs == [("a.j2", [("ab00", 1, "paragraph")])]
    assert check.released == [Suppression("a.j2", 1, "next-line", ("PB201",), ("PB201",), 1)]


DAMAGE: dict[str, Callable[[Any], None]] = {
    "truncated FileCheck": lambda data: data.pop(),
    "truncated ParsedTemplate": lambda data: _parsed(data).pop(),
    "a longer ParsedTemplate": lambda data: _parsed(data).append(None),
    "a bool where an int goes": lambda data: _parsed(data).__setitem__(5, True),
    "an int where a bool goes": lambda data: _parsed(data).__setitem__(11, 1),
    "a float where an int goes": lambda data: _parsed(data).__setitem__(5, 1.0),
    "a string where an int goes": lambda data: _parsed(data).__setitem__(5, "9" * 5000),
    "an int far too large": lambda data: _parsed(data).__setitem__(5, 10**400),
    "a bad enum value": lambda data: _parsed(data).__setitem__(2, "mustache"),
    "an int for a Path": lambda data: _parsed(data).__setitem__(0, 7),
    "an object for a list": lambda data: data.__setitem__(0, {}),
    "None for a list": lambda data: data.__setitem__(0, None),
    "an unknown tag in a sample": lambda data: _parsed(data)[6][3].__setitem__("x", ["os", 1]),
    "an untagged list in a sample": lambda data: _parsed(data)[6][3].__setitem__("x", [1, 2]),
    "an empty list in a sample": lambda data: _parsed(data)[6][3].__setitem__("x", []),
    "a short Distribution": lambda data: _parsed(data)[6][3].__setitem__("x", ["D", 1]),
    "a Distribution of floats": lambda data: _parsed(data)[6][3].__setitem__("x", ["D", 1.0, 2]),
    "a NaN in a sample": lambda data: _parsed(data)[6][3].__setitem__("x", float("nan")),
    "a literal out of its set": lambda data: data.__setitem__(4, _released("all")),
    "an int for a digest": lambda data: data.__setitem__(3, _paragraphs(7)),
    "a list for a digest": lambda data: data.__setitem__(3, _paragraphs(["ab"])),
    "a non-string key": lambda data: data.__setitem__(2, {1: ["b", 1]}),
    "a non-string key in a sample": lambda data: _parsed(data)[6][3].__setitem__("x", {1: 2}),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=str)
def test_damaged_data_is_a_value_error(
    real_checks: dict[bool, list[FileCheck]], damage: str
) -> None:
    data = _encoded(real_checks)
    decode(data, FileCheck)  # undamaged, it decodes
    DAMAGE[damage](data)
    with pytest.raises(ValueError) as raised:
        decode(data, FileCheck)
    assert type(raised.value) is ValueError


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        ("truncated FileCheck", "FileCheck of 5"),
        ("truncated ParsedTemplate", "ParsedTemplate of 17"),
        ("a longer ParsedTemplate", "ParsedTemplate of 17"),
    ],
)
def test_a_list_of_the_wrong_length_says_what_it_should_hold(
    real_checks: dict[bool, list[FileCheck]], damage: str, where: str
) -> None:
    data = _encoded(real_checks)
    DAMAGE[damage](data)
    with pytest.raises(ValueError, match=f"^found list where {where} goes$"):
        decode(data, FileCheck)


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = ["l", leaf]
    return leaf


def test_nesting_ten_thousand_deep_is_a_value_error(
    real_checks: dict[bool, list[FileCheck]],
) -> None:
    assert sys.getrecursionlimit() < 10_000
    data = _encoded(real_checks)
    _parsed(data)[6][3]["x"] = _nested(10_000, 1)
    with pytest.raises(ValueError, match="nested more than 100 deep"):
        decode(data, FileCheck)
    plain: Any = []
    for _ in range(10_000):
        plain = [plain]
    for kind in (FileCheck, Any, list[Any], str):
        with pytest.raises(ValueError):
            decode(plain, kind)
    deepest: Any = 1
    for _ in range(resultcodec.MAX_DEPTH):
        deepest = [deepest]
    assert decode(_nested(resultcodec.MAX_DEPTH, 1), Any) == deepest
    with pytest.raises(ValueError, match="nested more than"):
        decode(_nested(resultcodec.MAX_DEPTH + 1, 1), Any)


def test_a_huge_int_in_the_json_text_is_refused_before_decoding() -> None:
    with pytest.raises(ValueError):  # json's own limit on digits: the cache's read misses
        json.loads("[" + "9" * 5000 + "]")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=40,
)
KINDS = [
    FileCheck,
    TemplateResult,
    ParsedTemplate,
    TemplateMeta,
    RenderedPrompt,
    Message,
    Tool,
    Suppression,
    CompressionResult,
    IndexPart,
    Mapping[str, Any],
    Any,
    Distribution,
    TemplateFormat,
    tuple[str | Slot, ...],
    frozenset[str],
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), JSON)
def test_any_json_decodes_or_is_a_value_error(kind: Any, data: Any) -> None:
    with contextlib.suppress(ValueError):
        decode(data, kind)


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(data, list):
        for n, item in enumerate(data):
            yield from _nodes(item, (*path, n))
    elif isinstance(data, dict):
        for key, item in data.items():
            yield from _nodes(item, (*path, key))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_real_encoding_with_one_part_replaced_decodes_or_is_a_value_error(
    real_checks: dict[bool, list[FileCheck]], data: st.DataObject
) -> None:
    encoded = _encoded(real_checks)
    path = data.draw(st.sampled_from(list(_nodes(encoded))[1:]))
    parent = encoded
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(JSON)
    try:
        back = decode(encoded, FileCheck)
    except ValueError:
        return
    assert type(back) is FileCheck


# -- the codecs themselves ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Looped:
    again: Looped | None


@pytest.mark.parametrize(
    "kind",
    [
        str | Path,  # both strings
        list[int] | tuple[int, ...],  # both lists
        int | Literal[3],  # both ints
        dict[int, str],
        set[str],
        tuple,
        Looped,
        datetime.date,
    ],
    ids=str,
)
def test_a_type_json_cannot_tell_apart_is_refused_when_its_codec_is_built(kind: Any) -> None:
    with pytest.raises(TypeError):
        encode(None, kind)


@dataclasses.dataclass(frozen=True)
class Hidden:
    value: Unknown  # noqa: F821 (as if imported under TYPE_CHECKING only)


def test_a_name_the_codec_cannot_resolve_says_where_it_goes() -> None:
    with pytest.raises(TypeError, match="Hidden: name 'Unknown' is not defined: add it to"):
        encode(None, Hidden)


def test_a_codec_is_built_once_per_type() -> None:
    first = resultcodec._codec(FileCheck)
    assert resultcodec._codec(FileCheck) is first
    assert resultcodec._codec(tuple[str | Slot, ...]) is resultcodec._codec(tuple[str | Slot, ...])


def test_a_frozenset_of_unhashable_values_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unhashable"):
        decode([{"a": 1}], frozenset[Mapping[str, int]])
