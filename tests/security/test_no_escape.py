"""A project full of outward symlinks: no command opens, writes, renames or removes anything
outside the project (issue 11, "Done means"; an audit hook on ``open``, ``os.rename``,
``os.replace``, ``os.remove``... is the cheap equivalent of strace). Each command runs in a
child process under a timeout and an address-space limit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from security.bounded_run import python_in_child
from security.forkserver import ForkServer

AUDITED = """
import json, os, sys
outside = os.path.realpath(sys.argv[1])
touched = []
def hook(event, args):
    if event in ("open", "os.rename", "os.replace", "os.remove", "os.unlink", "os.rmdir",
                 "os.mkdir", "os.symlink", "os.link", "os.truncate", "os.chmod", "os.chown",
                 "shutil.copyfile", "shutil.move"):
        for arg in args[:2]:
            if isinstance(arg, (str, bytes, os.PathLike)):
                path = os.fsdecode(arg)
                try:
                    real = os.path.realpath(path)
                except (OSError, ValueError):
                    continue
                if real == outside or real.startswith(outside + os.sep):
                    touched.append((event, path))
sys.addaudithook(hook)
from promptbudget.cli import main
code = main(sys.argv[2:])
sys.stdout.flush()
sys.stderr.write("\\nAUDIT " + json.dumps({"code": code, "touched": touched}) + "\\n")
"""

SECRET = "OUTSIDE-SECRET-51c2"

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
    steps:
      - name: answer
        prompt: support/answer.j2
        output_tokens: 50
      - name: b
        prompt: b.prompty
        output_tokens: 50
"""


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """(project, outside): a copy of the example project whose files and lookups are
    symlinks to a directory outside it."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    for name in ("secret.j2", "secret.json", "secret.yaml", "lock", "config.json", "passwd"):
        (outside / name).write_text(f"{SECRET} {{{{ x }}}}\n", encoding="utf-8")
    (outside / "sample.json").write_text(json.dumps({"x": SECRET}), encoding="utf-8")
    (outside / "promptfooconfig.yaml").write_text(
        f"prompts: [file://**/*.txt]\ndefaultTest: {{vars: {{x: {SECRET}}}}}\n", encoding="utf-8"
    )
    # A small project of its own (not a copy of examples/, whose manifest uses keys an older
    # promptbudget refuses: the commands would stop at the manifest and touch nothing).
    root = tmp_path / "project"
    prompts = root / "prompts"
    (prompts / "support").mkdir(parents=True)
    (root / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    (prompts / "support" / "answer.j2").write_text("Answer {{ question }}\n", encoding="utf-8")
    links = {
        prompts / "leak.j2": outside / "secret.j2",
        prompts / "leak.prompty": outside / "secret.j2",
        prompts / "support" / "leak.json": outside / "secret.json",
        prompts / "support" / "leak.yaml": outside / "secret.yaml",
        prompts / "dirlink": outside / "dir",
        prompts / "promptfooconfig.yaml": outside / "promptfooconfig.yaml",
        prompts / "Sk" / "config.json": outside / "config.json",
        prompts / "s.json": outside / "sample.json",
        root / ".budgets.yaml.baseline": outside / "passwd",
        root / "partials": outside / "dir",
    }
    (prompts / "Sk").mkdir()
    (prompts / "Sk" / "skprompt.txt").write_text("Hi {{$x}}\n", encoding="utf-8")
    (prompts / "p.txt").write_text("Hi {{ x }}\n", encoding="utf-8")
    (prompts / "b.prompty").write_text(
        "---\nname: b\nsample: s.json\n---\nuser:\n{{ x }} {% include 'leak.j2' %}\n",
        encoding="utf-8",
    )
    for link, target in links.items():
        link.symlink_to(target)
    return root, outside


COMMANDS = [
    ["check"],
    ["check", "prompts/leak.j2", "prompts/b.prompty"],
    ["count"],
    ["count", "prompts/leak.j2", "prompts/b.prompty", "prompts/Sk/skprompt.txt", "prompts/p.txt"],
    ["baseline", "--diff"],
    ["lock"],
    ["compress", "--write", "prompts"],
    ["compress", "--write", "prompts/leak.j2"],
    ["estimate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_nothing_outside_the_project_is_touched(
    command: list[str], hostile: tuple[Path, Path], fork_server: ForkServer
) -> None:
    root, outside = hostile
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["NO_COLOR"] = "1"
    args = [str(outside), *command]
    if command[0] not in {"baseline", "lock"}:
        args += ["--format", "json"]
    done = python_in_child(fork_server, AUDITED, args, timeout=120, cwd=root, env=env)
    assert done is not None, f"{' '.join(command)} ran longer than 120 s"
    audit_line = [line for line in done.stderr.splitlines() if line.startswith("AUDIT ")]
    assert audit_line, done.stderr[-3000:]
    audit = json.loads(audit_line[-1][len("AUDIT ") :])
    assert audit["touched"] == [], audit["touched"]
    assert audit["code"] in {0, 1, 2}
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert SECRET not in done.stdout
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    assert (root / ".budgets.yaml.baseline").is_symlink()  # not replaced, not removed
