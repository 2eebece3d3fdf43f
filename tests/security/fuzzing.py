"""Hypothesis strategies for hostile projects, and one fuzz case runner.

A case is a project: a ``budgets.yaml`` (a valid manifest mutated with payloads, or random
YAML) and one template of each format (a valid template mutated the same way). A case is
run in-process with ``cli.main`` (``check``, then ``count``) under an alarm; the outcome is
``ok`` (exit 0, 1 or 2 with no traceback), ``crash`` (a traceback or an exit code outside
0-2) or ``hang`` (more CPU time than the alarm, or five times that in wall-clock time).
Used by the short profile in the suite (``test_fuzz.py``) and by the long campaign
(``benchmarks/fuzz_campaign.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

MANIFEST = """\
version: 1
prompts: prompts/
defaults:
  model: gpt-4.1-mini
variables:
  question: {max_tokens: 300}
workflows:
  reply:
    traffic: {requests_per_day: 1000}
    success_rate: 90%
    steps:
      - name: answer
        prompt: a.j2
        turns: 2
        tool_calls: 1
        tool_result_tokens: 200
        output_tokens: {p50: 100, p95: 300}
        retry: {failure_rate: 2%, max_attempts: 3}
    limits:
      max_input_tokens: 8000
      max_cost_per_request: $0.05
"""

TEMPLATES = {
    "a.j2": (
        "{# promptbudget: disable-next-line=PB201 #}\n"
        "Hello {{ name | default('x') }}!\n{% for i in items %}- {{ i }}\n{% endfor %}\n"
        "{% if question %}Q: {{ question }}{% endif %}\n"
    ),
    "b.prompty": (
        "---\nname: b\nmodel:\n  api: chat\n  configuration:\n    name: gpt-4.1-mini\n"
        "inputs:\n  question:\n    type: string\nsample:\n  question: hi\n---\n"
        "system:\nYou help.\n\nuser:\n{{ question }}\n"
    ),
    "c.prompt": (
        "---\nmodel: gpt-4.1-mini\ninput:\n  schema:\n    q: string\n---\n"
        '{{role "system"}}Be brief.{{role "user"}}{{q}} {{#if q}}yes{{/if}}\n'
    ),
    "Sk/skprompt.txt": "".join(
        [
            '<message role="system">Be kind.</message>\n',
            '<message role="user">{{$input}}</message>\n',
        ]
    ),
    "Sk/config.json": '{"execution_settings": {"default": {"max_tokens": 100}}, '
    '"input_variables": [{"name": "input", "default": "hi"}]}',
    "lc.yaml": "_type: prompt\ninput_variables: [q]\ntemplate: 'Answer {q} now'\n",
    "sk.yaml": "name: s\ntemplate: 'Hi {{$name}}'\ntemplate_format: semantic-kernel\n",
    "d.txt": "plain text <!-- promptbudget: disable=PB205 --> with {{ var }}\n",
    "go.md": (
        "---\nmodel: gpt-4.1-mini\nsample:\n  Name: x\n  Items: [a, b]\n---\n"
        'Hello {{.Name}}\n{{range $i, $x := .Items}}- {{$i}} {{$x | printf "%q"}}\n{{end}}'
        '{{if .Q}}Q: {{.Q}}{{else}}none{{end}}{{define "t"}}[{{.}}]{{end}}{{template "t" .Name}}\n'
    ),
    "fmt.txt": "Answer {question} for {user[name]} in {lang!r:>10}. {{literal}}\n",
    "m.prompty": (
        "---\nname: m\ntemplate: handlebars\nsample:\n  q: hi\n  items: [a, b]\n---\n"
        "system:\nHi {{q}}\n{{#each items}}- {{@index}} {{this}}\n{{/each}}"
        "{{#if q}}{{> missing}}{{else}}no{{/if}}\n"
    ),
    "liq.yaml": (
        "name: l\ntemplate_format: liquid\ntemplate: |\n"
        "  Hi {{ name | upcase }} {% for x in items %}{{ x }}{% endfor %}\n"
    ),
    "base.j2": "Base {% block body %}{% endblock %}\n",
    "child.j2": (
        '{% extends "base.j2" %}{% block body %}{% include "a.j2" %}'
        '{% from "macros.j2" import m %}{{ m(3) }}{% endblock %}\n'
    ),
    "macros.j2": (
        "{% macro m(n) %}{% for i in range(n) %}{{ caller() if caller else i }}{% endfor %}"
        "{% endmacro %}\n"
    ),
    "promptfooconfig.yaml": (
        "prompts:\n  - file://pf.j2\ndefaultTest:\n  vars:\n    topic: cats\n"
        "tests:\n  - vars:\n      topic: dogs\n"
    ),
    "pf.j2": "Write about {{ topic }} in {{ n | default(3) }} lines\n",
}

# Files a template needs beside it (the case keeps them when it mutates the template).
COMPANIONS = {
    "Sk/skprompt.txt": ("Sk/config.json",),
    "Sk/config.json": ("Sk/skprompt.txt",),
    "child.j2": ("base.j2", "macros.j2"),
    "base.j2": ("child.j2",),
    "macros.j2": ("child.j2", "base.j2"),
    "promptfooconfig.yaml": ("pf.j2",),
    "pf.j2": ("promptfooconfig.yaml",),
}

# Files at the project root: the lock and the pyproject manifest.
LOCK = """\
{
  "lock_version": 1,
  "generated_by": "promptbudget 0.1.0",
  "templates": {
    "prompts/a.j2": {
      "version": "3",
      "sha256": "0223285c9d456223f80f4efb116f5a6697dac9b2cc3afb1f1a8c6ef77a45f840",
      "tokens": {"gpt-4.1-mini": 41, "gpt-4.1-nano": 41}
    }
  }
}
"""

PYPROJECT = """\
[project]
name = "x"

[tool.promptbudget]
version = 1
prompts = "prompts/"
defaults = { model = "gpt-4.1-mini" }
variables = { question = { max_tokens = 300 } }
rules = { PB203 = "off" }

[tool.promptbudget.workflows.reply]
traffic = { requests_per_day = 1000 }

[[tool.promptbudget.workflows.reply.steps]]
prompt = "a.j2"
output_tokens = 3
"""

# File names a pull request may commit (a template renamed to one of them).
NAME_PAYLOADS = [
    "--output=x.j2",
    "--config=evil",
    "-",
    "-h",
    "a\nb.j2",
    "::warning::x.j2",
    "a\rb.j2",
    "\x1b[2J.j2",
    "[bold]x[/].j2",
    " .j2",
    ".j2",
    "..j2",
    "x" * 250 + ".j2",
    "é\u0301.j2",
    "\u202eevil.j2",
    "\U0001f600.j2",
    "a b.j2",
    "'.j2",
    '".j2',
    "$(id).j2",
    "%s%n.j2",
    "{{x}}.j2",
    "a.j2.prompty",
    "b.prompty.j2",
    "CON.j2",
    "x.J2",
    "x.jinja2",
    "x.prompt",
    "x.yaml",
    "x.txt",
]

PAYLOADS = [
    "\x00",
    "\x07",
    "\x1b[2J",
    "\n::warning::x\n",
    "\r",
    "\u2028",
    "\ud800",
    "\\ud800",
    "\\0",
    "[",
    "]",
    "{",
    "}",
    "[" * 200,
    "{" * 200,
    "&a",
    "*a",
    "&a [*a, *a]",
    "!!python/object:os.system",
    "!!binary",
    "!!int ",  # explicit tags whose value may not fit (PyYAML's constructors raise)
    "!!float ",
    "!!bool ",
    "!!timestamp ",
    "!!str ",
    "!!set ",
    "! ",
    "\t",
    "? ",
    ": ",
    "- ",
    "---",
    "...",
    "#",
    "'",
    '"',
    "|",
    ">",
    "1" * 120,
    "1" * 5000,
    "-1",
    "0",
    "1e308",
    "1.0e+308",
    ".nan",
    ".inf",
    "-.inf",
    "1e-400",
    "10000000",
    "99999999999999999999",
    "0x10",
    "0o7",
    "1_000",
    "~",
    "null",
    "true",
    "off",
    "$1e308",
    "1.5M",
    "100%",
    "-5%",
    "1000%",
    "[/x]",
    "[i]",
    "[bold red]",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{% if %}",
    "{% for x in y %}",
    "{% endfor %}",
    "{{ x|replace('a', 'b'*100000) }}",
    "{{ 'x'*10000000 }}",
    "{{ range(10**9)|list }}",
    "{{ x.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{% include '../../etc/passwd' %}",
    "{% include '/etc/passwd' %}",
    "{% extends 'a.j2' %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{{!",
    "{{!--",
    "{{> p}}",
    "{{#each x}}",
    "{{/each}}",
    "{{[a\nb]}}",
    "{{json this}}",
    '<message role="user">',
    "</message>",
    "<!--",
    "-->",
    "{x}",
    "{{$x}}",
    "{{x.y}}",
    "(" * 300,
    ")" * 300,
    "|upper" * 300,
    "{% if a %}" * 300,
    "../" * 20,
    "/dev/zero",
    "~/.ssh/id_rsa",
    "é" * 50,
    "\U0001f600" * 20,
    "\t" * 100,
]


@dataclass(frozen=True)
class Case:
    manifest: str | None  # None: no budgets.yaml (the manifest is in pyproject.toml)
    templates: dict[str, str]  # under prompts/
    command: tuple[str, ...]
    root_files: dict[str, str] = field(default_factory=dict)  # the lock, pyproject.toml


def _mutate(base: str) -> st.SearchStrategy[str]:
    """``base`` with a few edits: a payload inserted or substituted, a span deleted or
    duplicated."""

    @st.composite
    def mutated(draw: st.DrawFn) -> str:
        text = base
        for _ in range(draw(st.integers(0, 4))):
            if not text:
                text = draw(st.sampled_from(PAYLOADS))
                continue
            where = draw(st.integers(0, len(text)))
            kind = draw(st.sampled_from(["insert", "replace", "delete", "duplicate", "text"]))
            if kind == "insert":
                text = text[:where] + draw(st.sampled_from(PAYLOADS)) + text[where:]
            elif kind == "replace":
                end = min(len(text), where + draw(st.integers(1, 12)))
                text = text[:where] + draw(st.sampled_from(PAYLOADS)) + text[end:]
            elif kind == "delete":
                end = min(len(text), where + draw(st.integers(1, 40)))
                text = text[:where] + text[end:]
            elif kind == "duplicate":
                end = min(len(text), where + draw(st.integers(1, 60)))
                text = text[:end] + text[where:end] * draw(st.integers(1, 50)) + text[end:]
            else:
                text = text[:where] + draw(st.text(max_size=20)) + text[where:]
        return text

    return mutated()


def _random_yaml() -> st.SearchStrategy[str]:
    import yaml

    scalars = st.one_of(
        st.integers(), st.floats(allow_nan=True), st.text(max_size=30), st.booleans(), st.none()
    )
    data = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )
    return data.map(lambda value: yaml.safe_dump({"version": 1, "workflows": value}))


# Most runs use 100 Monte Carlo samples (a quarter of a case's time went to the default 1,000;
# the code is the same); one ``check`` keeps the default.
COMMANDS = [
    ("check", "--format", "json"),
    ("check", "--format", "json", "--samples", "100"),
    ("check", "--format", "text", "--samples", "100"),
    ("check", "--format", "github", "--samples", "100"),
    ("check", "--format", "sarif", "--samples", "100"),
    ("count", "prompts", "--format", "junit"),
    ("count", "--format", "text"),
    ("estimate", "--format", "markdown", "--samples", "100"),
]

TARGETS = [
    "manifest",
    "random-manifest",
    "lock",
    "pyproject",
    "file-name",
    "all",
    *TEMPLATES,
]


def _file_name() -> st.SearchStrategy[str]:
    """A file name (no ``/``, no NUL): a payload, random text, or both."""
    text = st.text(
        alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    )
    suffix = st.sampled_from([".j2", ".prompty", ".prompt", ".txt", ".md", ".yaml", ""])
    return st.one_of(
        st.sampled_from(NAME_PAYLOADS),
        st.builds(lambda a, b: a + b, text, suffix),
    ).filter(lambda name: name not in (".", "..") and len(name.encode("utf-8")) <= 255)


def cases() -> st.SearchStrategy[Case]:
    """A hostile project: the manifest, the lock, pyproject.toml, a file name or one template
    (with the files it needs) mutated, or everything at once. Only the files a case needs are
    written (the manifest's ``a.j2`` always), so a case is quick."""

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        target = draw(st.sampled_from(TARGETS))
        manifest: str | None = MANIFEST
        templates = {"a.j2": TEMPLATES["a.j2"]}
        root_files: dict[str, str] = {}
        if target == "manifest":
            manifest = draw(_mutate(MANIFEST))
        elif target == "random-manifest":
            manifest = draw(_random_yaml())
        elif target == "lock":
            root_files["promptbudget.lock"] = draw(_mutate(LOCK))
        elif target == "pyproject":
            manifest = None
            root_files["pyproject.toml"] = draw(_mutate(PYPROJECT))
        elif target == "file-name":
            source = draw(st.sampled_from(sorted(TEMPLATES)))
            name = draw(_file_name())
            folder = source.rpartition("/")[0]
            templates[f"{folder}/{name}" if folder else name] = TEMPLATES[source]
        elif target == "all":
            manifest = draw(_mutate(MANIFEST))
            templates = {name: draw(_mutate(text)) for name, text in TEMPLATES.items()}
            root_files["promptbudget.lock"] = draw(_mutate(LOCK))
        else:
            templates[target] = draw(_mutate(TEMPLATES[target]))
            for companion in COMPANIONS.get(target, ()):
                templates.setdefault(companion, TEMPLATES[companion])
        command = draw(st.sampled_from(COMMANDS))
        return Case(manifest, templates, command, root_files)

    return case()


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok, crash, hang
    exit_code: int | None
    detail: str = ""
    peak_mb: float = 0.0  # the peak RSS of the case's process (forked runs only)
    output: str = ""  # stdout, then stderr (in-process runs only)


class _Alarm(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` swallows it."""


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    """Raise ``_Alarm`` after ``seconds`` of CPU time of this process (``ITIMER_PROF``), so a
    loaded machine does not turn a slow case into a hang; a second, wall-clock alarm at five
    times that catches a case blocked without using CPU (a FIFO)."""

    def fire(signum: int, frame: Any) -> None:
        raise _Alarm

    previous_prof = signal.signal(signal.SIGPROF, fire)
    previous_alarm = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.alarm(seconds * 5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.alarm(0)
        signal.signal(signal.SIGPROF, previous_prof)
        signal.signal(signal.SIGALRM, previous_alarm)


def write_case(case: Case, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "prompts").mkdir(parents=True)
    if case.manifest is not None:
        (root / "budgets.yaml").write_bytes(case.manifest.encode("utf-8", "surrogatepass"))
    for name, text in case.root_files.items():
        (root / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    for name, text in case.templates.items():
        path = root / "prompts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogatepass"))


def _build_cli_once() -> None:
    """Typer rebuilds the Click command tree on every call (about a third of a case's time):
    build it once for the process."""
    import functools

    import typer.main

    if not hasattr(typer.main.get_command, "cache_info"):
        typer.main.get_command = functools.lru_cache(maxsize=None)(typer.main.get_command)


def run_case(case: Case, root: Path, *, seconds: int = 10, write: bool = True) -> Outcome:
    """Write ``case`` under ``root`` (unless ``write`` is false: run it again, on the cache
    the last run left) and run it in-process."""
    from promptbudget.cli import main

    _build_cli_once()

    if write:
        write_case(case, root)
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(root)
    try:
        with _alarm(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(case.command))
    except _Alarm:
        return Outcome("hang", None, f"over {seconds} s of CPU (or {seconds * 5} s of wall clock)")
    except SystemExit as exit_:  # never expected: main returns its code
        return Outcome("crash", None, f"SystemExit {exit_.code}")
    except BaseException as error:  # a Rust panic, MemoryError...: all are findings here
        return Outcome("crash", None, f"{type(error).__name__}: {error}"[:500])
    finally:
        os.chdir(previous)
    stderr = err.getvalue()
    if code not in (0, 1, 2) or "Traceback" in stderr or "internal error" in stderr:
        return Outcome("crash", code, stderr[-1500:])
    return Outcome("ok", code, output=out.getvalue() + stderr)


def warm_up(root: Path) -> None:
    """Run the unmutated project once with every command in this process, so what a case
    imports and builds (modules, tokenizers, the CLI) is there before any fork."""
    for command in COMMANDS:
        run_case(Case(MANIFEST, dict(TEMPLATES), command, {"promptbudget.lock": LOCK}), root)


def run_case_forked(
    case: Case, root: Path, *, seconds: int = 10, memory_bytes: int = 1024**3
) -> Outcome:
    """``run_case`` in a forked child under its own address-space limit (``memory_bytes``):
    a case that needs more than that fails with MemoryError (a crash) instead of growing the
    campaign, and one that kills its process (a C-level abort) is a crash of that case only.
    The child inherits everything already imported, so a fork costs a few milliseconds."""
    import json
    import resource
    import select
    import time

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report one JSON line, leave without cleanup
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            outcome = run_case(case, root, seconds=seconds)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            report = [outcome.kind, outcome.exit_code, outcome.detail, peak]
            os.write(write_end, json.dumps(report).encode("utf-8"))
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    give_up = time.monotonic() + seconds * 5 + 5
    try:
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                return Outcome("hang", None, f"over {seconds * 5 + 5} s of wall clock (killed)")
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                block = os.read(read_end, 1 << 16)
                if not block:
                    break
                data += block
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if not data:
        how = (
            f"killed by signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit status {os.WEXITSTATUS(status)}"
        )
        return Outcome("crash", None, f"the case's process died ({how}) before reporting")
    kind, code, detail, peak = json.loads(data)
    return Outcome(kind, code, detail, peak_mb=peak)
