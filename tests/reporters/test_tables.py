"""Tables without colour are laid out by ``plain_table``: it must draw exactly what Rich
draws for them (Rich is the reference here), and hand back to Rich what it does not lay out."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.reporters.tables import plain_table, print_table


def _table(*columns: tuple[str, str]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table


def _rich(table: Table, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, no_color=True)
    console.width = 1_000_000
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in out.splitlines()]


def _tables() -> dict[str, Table]:
    tables = {}
    counts = _table(("template", "left"), ("model", "left"), ("tokens", "right"))
    counts.add_row("prompts/a.j2", "gpt-4o", "1,234")
    counts.add_row("prompts/日本語/説明.j2", "claude-sonnet-4-5", "~12")  # wide characters
    counts.add_row("p", "", "0")  # an empty cell
    counts.add_section()
    counts.add_row(Text("total", style="bold"), "gpt-4o", "1,246")
    tables["counts"] = counts
    narrow = _table(("a", "right"), ("b", "default"), ("c", "right"))
    narrow.add_row("1", "x" * 300, "2")  # wider than any terminal
    narrow.add_row(Text("é", style="red"), "ÿ", "e\u0301")  # combining accent
    tables["narrow"] = narrow
    header_only = _table(("workflow", "left"), ("$/request", "right"))
    tables["header only"] = header_only
    models = _table(("model", "left"), ("input", "right"), ("cached", "right"))
    models.add_row("gpt-4.1-mini\n  a note under it", "$0.40", "$0.10")  # as `models` draws
    models.add_row("o3", "$2.00\n$8.00", Text("—\nnone", style="dim"))
    models.add_row("a\nb\nc", "", "1")
    tables["lines in cells"] = models
    return tables


@pytest.mark.parametrize("name", list(_tables()))
@pytest.mark.parametrize("width", [20, 80, 200])
def test_plain_tables_are_what_rich_draws(name: str, width: int) -> None:
    table = _tables()[name]
    lines = plain_table(table)
    assert lines is not None
    assert [line.rstrip() for line in lines] == _rich(table, width)
    console = Console(file=io.StringIO(), width=width, color_system=None, no_color=True)
    print_table(console, table)
    printed = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert [line.rstrip() for line in printed] == _rich(table, width)


def test_tables_it_does_not_lay_out_go_to_rich() -> None:
    multiline = _table(("a", "left"), ("b", "left"))
    multiline.add_row("one\n\ntwo", "x")  # a blank line inside a cell
    tabbed = _table(("a", "left"))
    tabbed.add_row("a\tb")
    centred = _table(("a", "center"))
    centred.add_row("x")
    empty_column = _table(("", "left"), ("b", "left"))
    empty_column.add_row("", "x")
    boxed = Table()
    boxed.add_column("a")
    for table in (multiline, tabbed, centred, empty_column, boxed):
        assert plain_table(table) is None
    console = Console(file=io.StringIO(), width=80, color_system=None, no_color=True)
    print_table(console, multiline)
    drawn = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert [line.rstrip() for line in drawn[1:4]] == ["one  x", "", "two"]
