"""``promptbudget.lock``: what each template was when it was last locked.

Per template: its declared ``version`` (front matter), a sha256 of its text (read the way the
tokenizer reads it: BOM dropped, LF line ends, so a CRLF checkout does not look changed), and
its request tokens per model it is sent to. ``check`` compares templates with the lock
(PB206 version-not-bumped); ``lock --check`` fails when the lock is out of date.

The file is JSON with sorted keys and one value per line: stable, and easy to review in a pull
request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptbudget.bounded import MAX_JSON_BYTES, InputBoundsError, load_json
from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import PromptBudgetError

LOCK_NAME = "promptbudget.lock"
LOCK_VERSION = 1
_VERSION_LINE = re.compile(r"^version\s*:(?P<value>.*)$")


class LockError(PromptBudgetError):
    """``promptbudget.lock`` cannot be read."""


@dataclass(frozen=True)
class LockedTemplate:
    version: str | None
    sha256: str
    tokens: Mapping[str, int] = field(default_factory=dict)  # model -> request tokens


@dataclass(frozen=True)
class Lock:
    templates: Mapping[str, LockedTemplate]  # display path -> entry
    path: Path | None = None

    def to_json(self, *, generated_by: str) -> str:
        payload = {
            "lock_version": LOCK_VERSION,
            "generated_by": generated_by,
            "templates": {
                name: {
                    "version": entry.version,
                    "sha256": entry.sha256,
                    "tokens": dict(sorted(entry.tokens.items())),
                }
                for name, entry in sorted(self.templates.items())
            },
        }
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"

    def same_as(self, other: Lock) -> bool:
        """Equal templates, versions, hashes and tokens (who generated it does not matter)."""
        return dict(self.templates) == dict(other.templates)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def version_text(value: object) -> str | None:
    """A front matter version as text: ``1.2`` (a YAML float) and ``"1.2"`` are the same."""
    if value is None:
        return None
    return str(value)


def _version_match(text: str, body_line: int) -> tuple[int, str] | None:
    for number, line in enumerate(text.split("\n")[: max(body_line - 1, 0)], start=1):
        match = _VERSION_LINE.match(line)
        if match:
            return number, match.group("value")
    return None


def version_line(text: str, body_line: int) -> int | None:
    """The file line of a top-level ``version:`` in a template's front matter, if any."""
    found = _version_match(text, body_line)
    return found[0] if found is not None else None


def declared_version(text: str, body_line: int, parsed: object) -> str | None:
    """The version as written: ``version: 1.10`` is "1.10", not the float 1.1 YAML reads
    (which would make 1.1 -> 1.10 look like no bump). ``parsed``: the value from the front
    matter, for versions not on a top-level line (Prompty's ``metadata``)."""
    found = _version_match(text, body_line)
    if found is None:
        return version_text(parsed)
    value = found[1].split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value or version_text(parsed)


def read_lock(path: Path, shown: str) -> Lock:
    """The lock at ``path``; a broken lock is an error naming the file and line."""
    try:
        raw = read_confined(path, root=path.absolute().parent, limit=MAX_JSON_BYTES).decode(
            "utf-8-sig"
        )
    except UnicodeDecodeError as err:
        raise LockError(f"{shown}: not UTF-8 text; regenerate it with 'promptbudget lock'") from err
    except ConfinementError as err:
        raise LockError(f"{shown}: {err.reason}; regenerate it with 'promptbudget lock'") from err
    try:
        data = load_json(raw)
    except json.JSONDecodeError as err:
        raise LockError(
            f"{shown}:{err.lineno}: not valid JSON ({err.msg}); regenerate it with "
            "'promptbudget lock'"
        ) from err
    except InputBoundsError as err:
        where = f"{shown}:{err.line}" if err.line else shown
        raise LockError(f"{where}: {err.message}; regenerate it with 'promptbudget lock'") from err
    return Lock(_templates(data, shown), path)


def _templates(data: Any, shown: str) -> dict[str, LockedTemplate]:
    def fail(message: str) -> LockError:
        return LockError(f"{shown}: {message}; regenerate it with 'promptbudget lock'")

    if not isinstance(data, dict) or not isinstance(data.get("templates"), dict):
        raise fail("expected an object with a 'templates' object")
    version = data.get("lock_version")
    if version != LOCK_VERSION:
        raise fail(f"lock_version {version!r} is not supported (this promptbudget writes 1)")
    templates: dict[str, LockedTemplate] = {}
    for name, entry in data["templates"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise fail(f"templates.{name} needs a sha256 string")
        tokens = entry.get("tokens", {})
        if not isinstance(tokens, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in tokens.values()
        ):
            raise fail(f"templates.{name}.tokens must map model names to token counts")
        templates[name] = LockedTemplate(
            version=version_text(entry.get("version")),
            sha256=entry["sha256"],
            tokens={str(k): int(v) for k, v in tokens.items()},
        )
    return templates
