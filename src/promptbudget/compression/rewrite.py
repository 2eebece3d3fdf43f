"""Compressing a template file: keep its front matter, encoding, BOM and line ends, and write
it back atomically only if it changed and nothing else changed it meanwhile."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from promptbudget.compression import CompressionResult, PassOptions, compress_text
from promptbudget.errors import PromptBudgetError
from promptbudget.fileio import FileWriteError, replace_file
from promptbudget.templates.source import TemplateFormat
from promptbudget.tokenizers import Tokenizer

_FRONT = re.compile(
    r"\A(?:#[^\n]*\n|[ \t]*\n)*---[ \t]*\n.*?^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S | re.M
)
_YAML_KEY = re.compile(r"^[A-Za-z_][\w.-]*\s*:", re.M)


class WriteError(PromptBudgetError):
    """A compressed template could not be written (the original is untouched)."""


@dataclass(frozen=True)
class TemplateFile:
    """A template's text as read, and how to write it back the same way."""

    path: Path
    shown: str  # the path as reports show it (relative to the project root)
    text: str  # LF line ends, no BOM
    head: str  # front matter (kept as is)
    body: str
    has_bom: bool
    crlf: bool
    mixed_line_ends: bool
    digest: str  # sha256 of the bytes read
    data: bytes  # the bytes read


def split_head(text: str, fmt: TemplateFormat) -> tuple[str, str]:
    """(front matter, body): front matter (also after ``#`` header lines, as Dotprompt allows)
    is metadata and is never compressed."""
    if fmt is TemplateFormat.TEXT:
        return "", text
    match = _FRONT.match(text)
    if match is None:
        return "", text
    head = match.group(0)
    inner = head[head.index("---") + 3 :]
    if fmt is TemplateFormat.JINJA2 and not _YAML_KEY.search(inner):
        return "", text  # a Markdown horizontal rule, not front matter
    return head, text[len(head) :]


def read_template_file(path: Path, fmt: TemplateFormat, shown: str | None = None) -> TemplateFile:
    shown = shown or str(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise WriteError(f"{shown}: cannot be read ({_reason(err)})") from err
    has_bom = data.startswith(b"\xef\xbb\xbf")
    raw = data[3:] if has_bom else data
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WriteError(f"{shown}: is not valid UTF-8; not compressed") from err
    crlf_count, lf_count = decoded.count("\r\n"), decoded.count("\n")
    crlf = crlf_count > 0 and crlf_count == lf_count
    text = decoded.replace("\r\n", "\n")
    head, body = split_head(text, fmt)
    return TemplateFile(
        path=path,
        shown=shown,
        text=text,
        head=head,
        body=body,
        has_bom=has_bom,
        crlf=crlf,
        mixed_line_ends=0 < crlf_count < lf_count,
        digest=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def compress_file(
    template: TemplateFile, passes: list[str], tokenizer: Tokenizer, options: PassOptions
) -> CompressionResult:
    """Compress the body; the result's texts are the whole file (front matter included)."""
    result = compress_text(template.body, passes, tokenizer, options)
    return CompressionResult(
        original=template.text,
        text=template.head + result.text,
        tokens_before=result.tokens_before,
        tokens_after=result.tokens_after,
        passes=result.passes,
    )


def encode_like(template: TemplateFile, text: str) -> bytes:
    """``text`` with the file's line ends and byte-order mark."""
    if template.crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    return b"\xef\xbb\xbf" + data if template.has_bom else data


def write_atomically(template: TemplateFile, text: str, *, root: Path, force: bool = False) -> Path:
    """Replace the file with ``text`` through ``fileio.replace_file``: only if it still holds
    the bytes that were read, keeping its owner, group, mode and extended attributes, so a
    kill, a crash or a concurrent edit leaves the original intact.

    Refuses a read-only file (unless ``force``), a hard-linked file, a file changed since it
    was read, a file with mixed line ends (rewriting would change lines no pass touched), and
    a symlink that leads outside ``root``; a symlink inside the project is followed and its
    target rewritten.
    """
    name = template.shown
    target = template.path.resolve()
    if not target.is_relative_to(root.resolve()):
        raise WriteError(f"{name}: is a symlink to a file outside the project; not written")
    if template.mixed_line_ends:
        raise WriteError(
            f"{name}: has both CRLF and LF line ends; not written (make them consistent first)"
        )
    try:
        replace_file(
            target,
            encode_like(template, text),
            expected=template.data,
            shown=name,
            activity="compressing",
            allow_read_only=force,
            read_only_hint=" (--force writes it anyway)",
        )
    except FileWriteError as err:
        raise WriteError(str(err)) from err
    return target


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__
