#!/usr/bin/env python3
"""The release steps, one subcommand each, so the release workflow and its tests run the same
code (``.github/workflows/release.yml``; ``tests/integrations/test_release.py``).

    python scripts/release.py version        # the version in pyproject.toml
    python scripts/release.py tag            # the tag it is released under: v<version>
    python scripts/release.py needs-tag      # exit 0 if that tag does not exist yet, else 1
    python scripts/release.py build DIR      # wheel and sdist into DIR (no network)

A version is released by changing ``version`` in pyproject.toml on main: the workflow tags
that commit ``v<version>`` and builds the distributions. See RELEASING.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?")


def read_version(root: Path = ROOT) -> str:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    with (root / "pyproject.toml").open("rb") as file:
        version = str(tomllib.load(file)["project"]["version"])
    if not _VERSION.fullmatch(version):
        raise SystemExit(f"pyproject.toml: version {version!r} is not X.Y.Z (or X.Y.ZrcN)")
    return version


def tag_name(version: str) -> str:
    return f"v{version}"


def tag_exists(tag: str, root: Path = ROOT) -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--quiet", "--verify", f"refs/tags/{tag}"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def build(destination: Path, root: Path = ROOT) -> list[Path]:
    """The wheel and the sdist, built with the installed build backend (no download)."""
    destination.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(destination), str(root)],
        check=True,
    )
    return sorted(destination.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("version")
    sub.add_parser("tag")
    sub.add_parser("needs-tag")
    built = sub.add_parser("build")
    built.add_argument("destination", type=Path)
    args = parser.parse_args(argv)
    version = read_version()
    if args.step == "version":
        print(version)
    elif args.step == "tag":
        print(tag_name(version))
    elif args.step == "needs-tag":
        return 1 if tag_exists(tag_name(version)) else 0
    else:
        for path in build(args.destination):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
