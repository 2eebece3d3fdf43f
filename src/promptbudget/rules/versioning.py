"""Rules about versioned prompts: ``promptbudget.lock`` against the templates as they are."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.lockfile import LOCK_NAME, LockedTemplate, version_line
from promptbudget.rules.base import Rule, RuleContext, rule


def _token_changes(locked: LockedTemplate, now: LockedTemplate) -> str:
    parts = []
    for model in sorted(set(locked.tokens) & set(now.tokens)):
        before, after = locked.tokens[model], now.tokens[model]
        if before == after:
            parts.append(f"{model} {after:,} tokens, unchanged")
        else:
            parts.append(f"{model} {before:,} -> {after:,} tokens ({after - before:+,})")
    return "; ".join(parts) if parts else "no model in common with the lock"


@rule(
    "PB206",
    "version-not-bumped",
    Severity.ERROR,
    "a template's content changed but its version did not",
)
def version_not_bumped(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A template with a ``version:`` in its front matter changed since ``promptbudget.lock``
    was written, and its version is still the locked one.

    Why: teams version prompts so that a logged answer can be traced to the exact prompt that
    produced it, and so that evaluations and rollbacks name a version. A prompt edited under an
    old version number breaks that trail silently. The finding says what the edit did to the
    prompt's tokens. Templates without a ``version:`` are not checked; run
    ``promptbudget lock`` after bumping to record the new content.

    Fails:
        # promptbudget.lock has prompts/answer.j2 at version 1.2.0; the text was edited
        ---
        version: 1.2.0
        ---
        You are Acme's support assistant. Answer in two sentences.

    Passes:
        ---
        version: 1.3.0
        ---
        You are Acme's support assistant. Answer in two sentences.
    """
    if ctx.lock is None:
        return
    texts = {result.parsed.display_path: result.parsed for result in ctx.templates}
    for path, now in sorted(ctx.locked_now.items()):
        locked = ctx.lock.templates.get(path)
        if locked is None or locked.version is None:
            continue
        if locked.sha256 == now.sha256 or now.version != locked.version:
            continue
        parsed = texts.get(path)
        line = version_line(parsed.text, parsed.body_line) if parsed is not None else None
        yield self.finding(
            severity,
            f"changed since {LOCK_NAME}, but its version is still {locked.version}: bump "
            f"'version:' in its front matter, then run 'promptbudget lock' "
            f"({_token_changes(locked, now)})",
            path=path,
            line=line or 1,
        )
