#!/usr/bin/env python3
"""What the run-time guard adds to a call, beyond tokenisation.

    python benchmarks/bench_runtime.py [--runs 2000]

A 4,000-token chat request (system prompt, retrieved context, a short history, two tool
definitions) on gpt-4.1-mini, against a workflow with every limit set. Measured in one warm
process (the encoding loaded once), as medians over ``--runs`` calls:

- tokenisation alone: ``Tokenizer.count`` of every message's content and role, and of the
  tool texts the cookbook formula counts (what any exact pre-flight count has to do);
- ``preflight``: the whole check (reading the messages, counting, pricing, every limit);
- ``before_call`` + ``after_call`` with the in-process store and with a SQLite file.

Prints a Markdown table for the README; the "beyond tokenisation" column is the median of
the check minus the median of tokenisation alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from promptbudget.runtime import Budgets, SQLiteStore
from promptbudget.runtime.messages import read_tools
from promptbudget.tokenizers import get_tokenizer

MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  support-reply:
    steps: [{name: answer, prompt: answer.j2, max_output_tokens: 500}]
    limits:
      max_input_tokens: 8k
      max_output_tokens: 600
      max_turns: 10000
      max_tool_calls: 10000
      max_cost_per_request: $1000
      max_monthly_spend: $1,000,000
      max_daily_spend: $100,000
"""

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order by its number.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "description": "The order number"},
                    "detail": {"type": "string", "enum": ["summary", "full"]},
                },
            },
        },
    },
    {"type": "function", "function": {"name": "escalate", "description": "Hand over."}},
]


CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def request_of(tokens: int) -> list[dict[str, str]]:
    """System prompt, retrieved context and history: at least ``tokens`` tokens in all. The
    context is real prompt text (the files of ``tests/corpus``, in order), not a repeat."""
    tokenizer = get_tokenizer("o200k_base")
    messages = [
        {"role": "system", "content": "You are Acme's support assistant. Be brief and exact."},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "Which order do you mean?"},
        {"role": "user", "content": "Order 42, placed on Monday at noon. Where is it now?"},
    ]
    others = sum(tokenizer.count(m["content"]) + 4 for m in messages) + 3 + 40  # + tools
    text = ""
    for path in sorted(CORPUS.rglob("*.*")):
        if path.suffix in {".j2", ".prompty", ".prompt", ".txt", ".md"}:
            text += path.read_text(encoding="utf-8", errors="replace") + "\n"
        if tokenizer.count(text) > tokens:
            break
    ids = tokenizer.encode(text)[: tokens - others]
    messages[1]["content"] = "Context:\n" + tokenizer.encoding.decode(ids)
    return messages


def median_us(run: Callable[[], object], runs: int) -> float:
    for _ in range(min(50, runs)):  # warm up
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs

    root = Path(tempfile.mkdtemp())
    (root / "prompts").mkdir()
    (root / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (root / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    messages = request_of(4000)
    tokenizer = get_tokenizer("o200k_base")
    tools = read_tools(TOOLS)
    tool_texts = [f"{t.name}:{t.description}" for t in tools] + [
        f"{key}:{value.get('type', '')}:{value.get('description', '')}"
        for t in tools
        for key, value in (t.parameters.get("properties") or {}).items()
    ]
    texts = [m["content"] for m in messages] + [m["role"] for m in messages] + tool_texts

    def tokenise() -> int:
        return sum(tokenizer.count(text) for text in texts)

    memory = Budgets.load(root / "budgets.yaml")
    with memory.request("support-reply") as req:
        check = req.preflight(messages=messages, tools=TOOLS)
    store = SQLiteStore(root / "spend.db")
    sqlite = Budgets.load(root / "budgets.yaml", store=store)
    usage = {"prompt_tokens": check.input_tokens, "completion_tokens": 300}

    def preflight() -> object:
        with memory.request("support-reply") as req:
            return req.preflight(messages=messages, tools=TOOLS)

    def call(budgets: Budgets) -> Callable[[], object]:
        def run() -> object:
            with budgets.request("support-reply") as req:
                req.before_call(messages=messages, tools=TOOLS)
                return req.after_call(usage=usage)

        return run

    base = median_us(tokenise, runs)
    rows = [
        ("tokenisation alone", base),
        ("`preflight` (count + every check)", median_us(preflight, runs)),
        ("`before_call` + `after_call`, in-process store", median_us(call(memory), runs)),
        ("`before_call` + `after_call`, SQLite store", median_us(call(sqlite), runs)),
    ]
    store.close()
    print(f"{check.input_tokens:,}-token request on gpt-4.1-mini, median of {runs:,} calls:\n")
    print("| step | median | beyond tokenisation |")
    print("|---|---|---|")
    for label, micros in rows:
        extra = "" if micros is base else f"{(micros - base) / 1000:.3f} ms"
        print(f"| {label} | {micros / 1000:.3f} ms | {extra} |")


if __name__ == "__main__":
    main()
