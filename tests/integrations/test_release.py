"""The release, as far as it runs offline: the version is read and the tag computed by
``scripts/release.py`` (what ``.github/workflows/release.yml`` runs), a copy of this
repository is tagged the same way, and the README's pinned references (pip/pipx URL,
pre-commit ``rev:``, the Action's ``@v``) resolve against that tag; the wheel and the sdist
build without a download and the installed wheel runs ``check`` on the root project."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from conftest import REPO, readme_snippet
from integrations.sandbox import GIT, commit_all, git, init_repo, isolated_env
from promptbudget import __version__

pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")
needs_build = pytest.mark.skipif(
    importlib.util.find_spec("build") is None, reason="the 'build' package is not installed"
)


def _release_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", REPO / "scripts" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = _release_script()


def test_version_and_tag_come_from_pyproject() -> None:
    assert release.read_version() == __version__
    assert release.tag_name("1.2.3") == "v1.2.3"


def test_a_malformed_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "next"\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"not X\.Y\.Z"):
        release.read_version(tmp_path)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A repository holding this checkout's tracked files, tagged as the workflow tags it."""
    tmp = tmp_path_factory.mktemp("release")
    env = isolated_env(tmp)
    origin = init_repo(tmp / "origin", env)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in filter(None, tracked):
        source = REPO / os.fsdecode(raw)
        if not source.is_file():
            continue  # deleted in the working tree
        target = origin / os.fsdecode(raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        target.chmod(source.stat().st_mode & 0o777)
    commit_all(origin, "release", env)
    assert not release.tag_exists(release.tag_name(__version__), origin)
    git(origin, "tag", release.tag_name(__version__), env=env)  # the workflow's step
    assert release.tag_exists(release.tag_name(__version__), origin)
    return origin, env


def _pinned(snippet: str) -> list[str]:
    return re.findall(r"@(v\d+\.\d+\.\d+)", snippet)


def test_every_pinned_reference_in_the_readme_is_the_release_tag() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pins = set(re.findall(r"promptbudget/promptbudget@(v[\w.]+)", readme))
    pins |= set(re.findall(r"rev: (v[\w.]+)", readme))
    assert pins == {release.tag_name(__version__)}


def test_pre_commit_rev_and_action_ref_resolve_at_the_tag(
    tagged: tuple[Path, dict[str, str]],
) -> None:
    from pre_commit.clientlib import load_manifest

    origin, env = tagged
    (repo,) = yaml.safe_load(readme_snippet("pre-commit-remote"))["repos"]
    hooks_file = origin.parent / "hooks-at-tag.yaml"
    hooks_file.write_text(git(origin, "show", f"{repo['rev']}:.pre-commit-hooks.yaml", env=env))
    published = {hook["id"] for hook in load_manifest(str(hooks_file))}
    assert {hook["id"] for hook in repo["hooks"]} <= published
    (job,) = yaml.safe_load(readme_snippet("ci-action"))["jobs"].values()
    ref = job["steps"][1]["uses"].rpartition("@")[2]
    action = yaml.safe_load(git(origin, "show", f"{ref}:action.yml", env=env))
    assert action["runs"]["using"] == "composite"


def _run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``promptbudget ARGS`` from the package installed in ``target`` (not this checkout)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import promptbudget, pathlib;"
        "assert pathlib.Path(promptbudget.__file__).is_relative_to(sys.argv[1]), "
        "promptbudget.__file__;"
        "from promptbudget.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code, str(target), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@needs_build
def test_the_readme_pip_url_installs_the_tag_and_checks_the_root_project(
    tagged: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    origin, env = tagged
    (line,) = [line for line in readme_snippet("ci-plain").splitlines() if line.startswith("pip ")]
    argv = shlex.split(line)
    requirement = argv[-1].replace(
        "https://github.com/promptbudget/promptbudget", f"file://localhost{origin}"
    )
    assert requirement.endswith(f"@{release.tag_name(__version__)}")
    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            requirement,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    version = _run_installed(target, origin, "--version")
    assert version.stdout.strip() == f"promptbudget {__version__}", version.stderr
    checked = _run_installed(target, origin, "check", "--format", "json")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_build
def test_wheel_and_sdist_build_offline_and_carry_the_package_data(
    tagged: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    origin, _ = tagged
    built = release.build(tmp_path / "dist", origin)
    wheel = next(p for p in built if p.suffix == ".whl")
    sdist = next(p for p in built if p.name.endswith(".tar.gz"))
    data = (
        "promptbudget/tokenizers/data/o200k_base.tiktoken",
        "promptbudget/pricing/catalog.jsonl",
        "promptbudget/pricing/corrections.json",
        "promptbudget/manifest/schema.json",
    )
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(data) <= names
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"src/{path}" for path in data} <= members
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # a wheel is installed by unpacking it
    checked = _run_installed(target, origin, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_user_install_commands_pin_the_release_tag() -> None:
    lines = [line for line in readme_snippet("install-user").splitlines() if line.strip()]
    url = f"git+https://github.com/promptbudget/promptbudget@{release.tag_name(__version__)}"
    assert shlex.split(lines[0]) == ["pipx", "install", url]
    assert shlex.split(lines[1], comments=False)[1:] == ["or:", "uv", "tool", "install", url]
