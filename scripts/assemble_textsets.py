#!/usr/bin/env python3
"""Assemble the text-class test sets (prose, code, CJK, mixed) from public repositories.

Dev-only; run by hand. Reads git snapshots (bare or not) and the prompt corpus, writes one
UTF-8 file per text under OUT/<class>/ and OUT/SOURCES.tsv (class, file, repository, commit,
paths, how the text was cut). The texts themselves stay outside this repository (in
``shared/textsets`` beside the checkout); ``scripts/measure_tokenizers.py`` counts them and
writes the per-text reference counts the tests use.

Usage::

    python scripts/assemble_textsets.py --out ../shared/textsets \
        --corpus ../shared/corpus --git click=PATH --git express=PATH --git cobra=PATH \
        --git tldr=PATH --git promptszh=PATH
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

CAP = 16_000  # characters per text, cut at a line end

CODE = {
    "click": ("pallets/click", "src/click/", ".py"),
    "express": ("expressjs/express", "lib/", ".js"),
    "cobra": ("spf13/cobra", "", ".go"),
}
PROSE_CORPUS = ("danielmiessler__fabric", "microsoft__prompty")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def cut(text: str) -> str:
    if len(text) <= CAP:
        return text
    end = text.rfind("\n", 0, CAP)
    return text[: end + 1 if end > 0 else CAP]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--git", action="append", default=[])
    args = parser.parse_args()
    repos = dict(item.split("=", 1) for item in args.git)
    rows: list[list[str]] = []

    def write(cls: str, name: str, text: str, repo: str, commit: str, paths: str, how: str) -> None:
        target = args.out / cls / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        rows.append([cls, f"{cls}/{name}", repo, commit, paths, how])

    # prose: English prompt files of the corpus, whole
    for folder in PROSE_CORPUS:
        for path in sorted((args.corpus / folder).rglob("*")):
            if path.is_file():
                rel = path.relative_to(args.corpus).as_posix()
                text = path.read_text(encoding="utf-8-sig")
                write("prose", rel.replace("/", "__"), text, "corpus", "", rel, "whole file")
    # code: source files, the first CAP characters
    for key, (repo, folder, ext) in CODE.items():
        root = Path(repos[key])
        commit = git(root, "rev-parse", "HEAD").strip()
        for path in git(root, "ls-tree", "-r", "--name-only", "HEAD").split():
            if path.startswith(folder) and path.endswith(ext) and "/" not in path[len(folder) :]:
                if path.endswith("_test.go"):
                    continue
                text = git(root, "show", f"HEAD:{path}")
                if len(text) < 1500:
                    continue
                name = repo.replace("/", "__") + "__" + path.replace("/", "__")
                how = f"first {CAP} chars at a line end"
                write("code", name, cut(text), repo, commit, path, how)
    # cjk: Chinese prompts (10 a text), tldr descriptions (20 pages a text, lines > and -)
    root = Path(repos["promptszh"])
    commit = git(root, "rev-parse", "HEAD").strip()
    for source in ("prompts-zh.json", "prompts-zh-TW.json"):
        items = json.loads(git(root, "show", f"HEAD:{source}"))
        prompts = [item["prompt"] for item in items if isinstance(item.get("prompt"), str)]
        for start in range(0, len(prompts), 10):
            chunk = "\n\n".join(prompts[start : start + 10])
            write(
                "cjk",
                f"{source[:-5]}-{start:03d}.txt",
                chunk,
                "PlexPt/awesome-chatgpt-prompts-zh",
                commit,
                source,
                f"prompts {start}..{start + 9} joined by blank lines",
            )
    root = Path(repos["tldr"])
    commit = git(root, "rev-parse", "HEAD").strip()
    listing = git(root, "ls-tree", "-r", "--name-only", "HEAD").split()
    for lang in ("ja", "ko", "zh"):
        pages = sorted(p for p in listing if p.startswith(f"pages.{lang}/common/"))[:400]
        for start in range(0, len(pages), 20):
            chunk_pages = pages[start : start + 20]
            texts = [git(root, "show", f"HEAD:{p}") for p in chunk_pages]
            prose = "\n".join(
                line[2:]
                for text in texts
                for line in text.splitlines()
                if line.startswith(("> ", "- ")) and "http" not in line
            )
            span = f"{chunk_pages[0]} .. {chunk_pages[-1]}"
            write(
                "cjk",
                f"tldr-{lang}-{start:03d}.txt",
                prose,
                "tldr-pages/tldr",
                commit,
                span,
                "description lines (> and -, no URLs) of 20 pages",
            )
            if start % 40 == 0:
                write(
                    "mixed",
                    f"tldr-{lang}-{start:03d}.md",
                    "\n".join(texts),
                    "tldr-pages/tldr",
                    commit,
                    span,
                    "20 whole pages (descriptions and commands)",
                )
    with (args.out / "SOURCES.tsv").open("w", encoding="utf-8") as handle:
        handle.write("class\tfile\trepository\tcommit\tpaths\thow\n")
        for row in rows:
            handle.write("\t".join(row) + "\n")
    print(f"{len(rows)} texts")


if __name__ == "__main__":
    main()
