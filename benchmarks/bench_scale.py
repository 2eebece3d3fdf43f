#!/usr/bin/env python3
"""promptbudget on generated repositories of 100 / 1,000 / 10,000 templates, against raw
tiktoken on the same text. Run by hand; the figures go in the README's Performance section.

    python benchmarks/bench_scale.py [--sizes 100,1000] [--runs 3] [--corpus DIR] [--keep DIR]
                                     [--only CASE ...] [--jobs 1,2]

Each repository is generated from a seeded random draw: template sizes log-uniform between
200 B and 20 KB, text cut from the prompt corpus (``--corpus``, default ../shared/corpus
next to the repository, else tests/corpus), with the syntax real templates use: variables,
``{% if %}`` blocks, ``{% for %}`` loops, includes of shared partials, front matter with a
model and samples in a third of them, and pasted passages. ``budgets.yaml`` declares one
workflow per 10 templates (at most 200), two steps each.

Cases (each a fresh ``python -m promptbudget`` process, bytecode caches on):
  one-file check    ``check <one template>`` (the prompt of one step, no pasted passage, so
                    every size does the same work): cold (--no-cache), and again with the cache warm
                    (nothing changed: the run memo answers), after another template
                    changed (the memo checks what PB204 takes from it and answers), and
                    after a template was added or deleted elsewhere (the memo misses, the
                    content cache answers the rest)
  full check        ``check``: cold (--no-cache), warm, and warm after one template changed
                    (what CI does with its cache restored): a trailing blank added or taken
                    away (its counts often cached already), or a word never counted before
                    put in a step's template
  count             ``count``: cold (--no-cache), warm (the run memo answers), and warm after
                    one template changed (a trailing blank, or a word never counted before):
                    the others' results from the content cache
  compress          ``compress --format json`` (what the safe passes would save)
  raw tiktoken      read every template, ``encode_ordinary_batch`` on one o200k encoding
Wall time is the median of ``--runs``, the A and B runs alternated; peak RSS is the child's
``ru_maxrss``. The load average is printed next to each figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["NO_COLOR"] = "1"
TEXT_SUFFIXES = {".jinja2", ".j2", ".prompty", ".md", ".txt", ".prompt", ".yaml", ".json"}
RAW = """
import sys, pathlib, tiktoken
from promptbudget.tokenizers import load_encoding
encoding = load_encoding("o200k_base")
texts = [p.read_text(encoding="utf-8") for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.j2"))]
print(sum(len(ids) for ids in encoding.encode_ordinary_batch(texts)))
"""


def corpus_text(corpus: Path) -> str:
    """The corpus's prose, template syntax stripped (it is added back, controlled)."""
    parts = []
    for path in sorted(corpus.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="replace")
            for token in ("{{", "}}", "{%", "%}", "{#", "#}"):
                text = text.replace(token, " ")
            parts.append(text)
    return "\n\n".join(parts)


def generate(count: int, dest: Path, corpus: Path, seed: int = 13) -> list[str]:
    """Write a project of ``count`` templates under ``dest``; return the template names."""
    rng = random.Random(seed)
    prose = corpus_text(corpus)
    passages = [prose[i : i + 600] for i in range(0, 60_000, 6_000)]
    prompts = dest / "prompts"
    (prompts / "partials").mkdir(parents=True)
    for index in range(5):
        start = rng.randrange(0, len(prose) - 2_000)
        (prompts / "partials" / f"p{index}.j2").write_text(
            prose[start : start + rng.randrange(200, 1_500)] + "\n", encoding="utf-8"
        )
    names = []
    for index in range(count):
        size = int(math.exp(rng.uniform(math.log(200), math.log(20_000))))
        start = rng.randrange(0, max(1, len(prose) - size))
        body = prose[start : start + size]
        lines = body.split("\n")
        for _ in range(1 + size // 2_000):
            where = rng.randrange(len(lines) + 1)
            kind = rng.random()
            if kind < 0.5:
                snippet = f"{{{{ {rng.choice(['question', 'context', 'user_name'])} }}}}"
            elif kind < 0.7:
                snippet = "{% if context %}Context:\n{{ context }}\n{% endif %}"
            elif kind < 0.85:
                snippet = "{% for item in items %}- {{ item }}\n{% endfor %}"
            else:
                snippet = f'{{% include "partials/p{rng.randrange(5)}.j2" %}}'
            lines.insert(where, snippet)
        if rng.random() < 0.05:
            lines.insert(rng.randrange(len(lines) + 1), "\n" + rng.choice(passages) + "\n")
        text = "\n".join(lines)
        if rng.random() < 0.33:
            model = rng.choice(["gpt-4.1-mini", "gpt-4o", "claude-sonnet-4-5"])
            text = f"---\nmodel: {model}\nsample: {{user_name: Dana, items: [a, b]}}\n---\n{text}"
        name = f"area{index % 20:02d}/t{index:05d}.j2"
        (prompts / name).parent.mkdir(parents=True, exist_ok=True)
        (prompts / name).write_text(text + "\n", encoding="utf-8")
        names.append(name)
    workflows = []
    for index in range(min(200, max(1, count // 10))):
        first, second = rng.sample(names, 2)
        workflows.append(
            textwrap.dedent(
                f"""\
                  w{index:03d}:
                    traffic: {{requests_per_day: {rng.randrange(100, 5000)}}}
                    steps:
                      - {{name: a, prompt: {first}, output_tokens: {{p50: 80, p95: 300}}}}
                      - {{name: b, prompt: {second}, output_tokens: 200}}
                """
            )
        )
    manifest = textwrap.dedent(
        """\
        version: 1
        defaults: {model: gpt-4.1-mini}
        variables:
          question: {max_tokens: 200}
          context: {max_tokens: 2000, tokens: {p50: 600, p95: 1500}}
          user_name: {max_tokens: 10}
          items: {max_tokens: 300}
        workflows:
        """
    ) + textwrap.indent("".join(workflows), "  ")
    (dest / "budgets.yaml").write_text(manifest, encoding="utf-8")
    return names


def pick_named(project: Path, names: list[str], corpus: Path) -> str:
    """The template the one-file cases name: from the middle of the list, the first that is
    the prompt of exactly one step and shares no line with another template (the text
    is cut from one corpus, so large files often overlap, and PB204 then prices every
    workflow holding a copy), so that at every size the check does the same work: the file
    and one two-step workflow. Else the middle one."""
    del corpus  # the same choice whatever the corpus
    manifest = (project / "budgets.yaml").read_text(encoding="utf-8")
    texts = {name: (project / "prompts" / name).read_text(encoding="utf-8") for name in names}
    names = sorted(names)  # as listed from a kept repository: the same choice either way
    middle = len(names) // 2
    for name in names[middle:] + names[:middle]:
        if manifest.count(f"prompt: {name},") != 1:
            continue
        others = "\n".join(text for other, text in texts.items() if other != name)
        lines = [line.strip() for line in texts[name].split("\n")]
        if not any(len(line) > 40 and line in others for line in lines):
            return name
    return names[middle]


# The measured process is started by this small one, which reports its wall time, CPU time
# and peak RSS. Started from the benchmark itself, a child's ``ru_maxrss`` would be at least
# the benchmark's own RSS (Linux keeps the high-water mark across fork and exec, and the
# benchmark holds every generated template: ~420 MB at 10,000).
MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, _, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def measure(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one ``python ARGS`` process (and of
    the worker processes it forks: their CPU time is added, the peak is the largest
    process's). CPU time (user + system) moves far less than wall time on a shared machine."""
    found = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, *args],
        cwd=cwd,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu, peak = (float(value) for value in found.stdout.split())
    return wall, cpu, peak


def edit_other(project: Path, names: list[str]) -> None:
    """Change one character of a template the measured command does not name (PB204 still
    reads it): a trailing blank added, or taken away again."""
    path = project / "prompts" / names[0]
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:-1] if text.endswith(" ") else text + " ", encoding="utf-8")


def edit_fresh(project: Path, template: str) -> None:
    """A word never counted before put in front of the first line of ``template`` (a step's
    prompt): its text must be rendered and counted again (an earlier word put there by this
    function is replaced, so the file stays the same size)."""
    path = project / "prompts" / template
    text = re.sub(r"\Azq[0-9]+ ", "", path.read_text(encoding="utf-8"))
    path.write_text(f"zq{random.SystemRandom().randrange(10**12)} {text}", encoding="utf-8")


def add_or_remove_other(project: Path) -> None:
    """A template the measured command does not name appears, or goes away again."""
    path = project / "prompts" / "extra.j2"
    if path.exists():
        path.unlink()
    else:
        path.write_text("A new template about {{ question }}.\n", encoding="utf-8")


def cases(template: str, project: Path) -> list[tuple[str, list[str], bool]]:
    """(name, arguments, whether the cache is warmed by an unmeasured run first)."""
    pb = ["-m", "promptbudget"]
    return [
        ("one-file check, cold", [*pb, "check", f"prompts/{template}", "--no-cache"], False),
        ("one-file check, cached", [*pb, "check", f"prompts/{template}"], True),
        # Another template edited since the last run: the run memo checks what PB204 takes
        # from it (passagememo.py) and answers.
        ("one-file check, edit elsewhere", [*pb, "check", f"prompts/{template}"], True),
        # A template added (or deleted again) elsewhere: the memo misses, the content cache
        # answers for everything unchanged.
        ("one-file check, new file elsewhere", [*pb, "check", f"prompts/{template}"], True),
        ("full check, cold", [*pb, "check", "--no-cache"], False),
        ("full check, cached", [*pb, "check"], True),
        # What CI does with its cache restored, after a pull request changed one template.
        ("full check, edit elsewhere", [*pb, "check"], True),
        # The same after a step's template was edited with a word never counted: its text is
        # counted, the encoding built (in the worker that evaluates it), the cache written.
        ("full check, edit with new text", [*pb, "check"], True),
        ("count, cold", [*pb, "count", "--no-cache"], False),
        ("count, cached", [*pb, "count"], True),
        # One template edited since the last run: the memo misses, every other file's
        # results come from the content cache (filecache.py).
        ("count, edit elsewhere", [*pb, "count"], True),
        ("count, edit with new text", [*pb, "count"], True),
        ("compress", [*pb, "compress", "--format", "json", "--no-cache"], False),
        ("raw tiktoken", ["-c", RAW, str(project / "prompts")], False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--keep", type=Path, help="generate the repositories here and keep them")
    parser.add_argument(
        "--only",
        action="append",
        help="run only the cases whose name contains this (repeat it for more)",
    )
    parser.add_argument(
        "--jobs",
        help="PROMPTBUDGET_JOBS values to compare (e.g. 1,2): each case once with each, "
        "alternated; default: as promptbudget decides",
    )
    options = parser.parse_args()
    corpus = options.corpus if options.corpus.is_dir() else ROOT / "tests" / "corpus"
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}"
    )
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], env=ENV)
    base = options.keep or Path(tempfile.mkdtemp(prefix="pb-scale-"))
    try:
        for size in (int(s) for s in options.sizes.split(",")):
            project = base / f"repo-{size}"
            if not (project / "budgets.yaml").exists():
                names = generate(size, project, corpus)
            else:
                names = sorted(
                    p.relative_to(project / "prompts").as_posix()
                    for p in (project / "prompts").rglob("t*.j2")
                )
            megabytes = sum(p.stat().st_size for p in project.rglob("*.j2")) / 1e6
            print(f"\n{size:,} templates ({megabytes:.1f} MB), one-file cases name ", end="")
            named = pick_named(project, names, corpus)
            print(named)
            print(f"  {'case':34} {'wall':>8} {'CPU':>8} {'wall runs':>20} {'peak RSS':>9}  load")
            selected = [
                (name, args, warmed, {})
                for name, args, warmed in cases(named, project)
                if not options.only or any(part in name for part in options.only)
            ]
            if options.jobs:
                selected = [
                    (f"{name}, jobs={jobs}", args, warmed, {"PROMPTBUDGET_JOBS": jobs})
                    for name, args, warmed, _ in selected
                    for jobs in options.jobs.split(",")
                ]
            times: dict[str, list[float]] = {name: [] for name, _, _, _ in selected}
            cpus: dict[str, list[float]] = {name: [] for name in times}
            peaks: dict[str, float] = dict.fromkeys(times, 0.0)
            loads: dict[str, list[float]] = {name: [] for name in times}
            for _ in range(options.runs):  # the cases alternate: load drifts hit them all
                for name, args, warmed, env in selected:
                    if warmed:
                        measure(args, project, env)  # fill the cache (a no-cache run may follow)
                    if "edit elsewhere" in name:
                        edit_other(project, names)  # a full check reads it: it changed
                    elif "edit with new text" in name:
                        edit_fresh(project, named)
                    elif "new file elsewhere" in name:
                        add_or_remove_other(project)
                    seconds, cpu, peak = measure(args, project, env)
                    times[name].append(seconds)
                    cpus[name].append(cpu)
                    peaks[name] = max(peaks[name], peak)
                    loads[name].append(os.getloadavg()[0])
            for name in times:
                runs = " ".join(f"{t:.2f}" for t in times[name])
                print(
                    f"  {name:34} {statistics.median(times[name]):>7.2f}s "
                    f"{statistics.median(cpus[name]):>7.2f}s {runs:>20} "
                    f"{peaks[name]:>7.0f}MB  {statistics.median(loads[name]):.1f}"
                )
    finally:
        if options.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
