"""Named chat messages are counted as OpenAI counts them.

The reference is the OpenAI cookbook's ``num_tokens_from_messages`` ("How to count tokens
with tiktoken"), written out here: 3 tokens per message, the tokens of every value (role,
content, name), 1 more for a ``name``, and 3 to prime the reply, for gpt-4o, gpt-4o-mini,
gpt-4 and gpt-3.5-turbo. Message lists are generated, written as role-marker templates with
Prompty's ``user[name="bob"]:`` arguments, rendered and counted by promptbudget.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from promptbudget.counting import count_prompt
from promptbudget.templates.parse import parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.rendered import RenderedPrompt
from promptbudget.templates.source import detect_format, read_prompt_text
from promptbudget.tokenizers import get_tokenizer

# tiktoken.encoding_for_model, as the cookbook calls it
ENCODING_OF = {
    "gpt-4o": "o200k_base",
    "gpt-4o-mini": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
}


def num_tokens_from_messages(messages: list[dict[str, str]], model: str) -> int:
    """The cookbook's function for these models (tokens_per_message 3, tokens_per_name 1)."""
    encoding = get_tokenizer(ENCODING_OF[model])
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += encoding.count(value)
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
    return num_tokens


WORDS = re.findall(
    r"\S+",
    "answer the question using only context below refund policy order number thirty days "
    "Grüße naïve 東京 🙂 ok, yes; no. (maybe) 42 3.14 -- ** `code` <tag> $5 @user",
)
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def generate(rng: random.Random) -> list[dict[str, str]]:
    messages = []
    for _ in range(rng.randint(1, 6)):
        message = {
            "role": rng.choice(("system", "user", "assistant")),
            "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25))),
        }
        if rng.random() < 0.6:
            message["name"] = "".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(1, 20)))
        messages.append(message)
    if not any("name" in message for message in messages):
        messages[0]["name"] = "example_user"
    return messages


def as_template(messages: list[dict[str, str]]) -> str:
    lines = []
    for message in messages:
        name = f'[name="{message["name"]}"]' if "name" in message else ""
        lines.append(f"{message['role']}{name}:\n{message['content']}")
    return "\n".join(lines) + "\n"


def rendered_of(path: Path) -> RenderedPrompt:
    parsed = parse_template(path, path.name, detect_format(path), read_prompt_text(path))
    return TemplateRenderer(path.parent).render(parsed, {})


def test_named_messages_match_the_cookbook_on_generated_lists(tmp_path: Path) -> None:
    rng = random.Random(12)
    checked = 0
    for index in range(520):
        messages = generate(rng)
        path = tmp_path / f"chat{index}.j2"
        path.write_text(as_template(messages), encoding="utf-8")
        rendered = rendered_of(path)
        assert [(m.role, m.name) for m in rendered.messages] == [
            (m["role"], m.get("name")) for m in messages
        ]
        for model, encoding in ENCODING_OF.items():
            count = count_prompt(rendered, get_tokenizer(encoding))
            assert count.request_tokens == num_tokens_from_messages(messages, model), (
                model,
                messages,
            )
            assert count.exact
        checked += 1
    assert checked >= 500


def test_the_reference_counts_names(tmp_path: Path) -> None:
    # the cookbook's own example message: {"role": "system", "name": "example_user", ...}
    plain = [{"role": "system", "content": "New synergies will help drive top-line growth."}]
    named = [{**plain[0], "name": "example_user"}]
    o200k = get_tokenizer("o200k_base")
    assert num_tokens_from_messages(named, "gpt-4o") - num_tokens_from_messages(
        plain, "gpt-4o"
    ) == 1 + o200k.count("example_user")


def test_promptfoo_json_chat_and_semantic_kernel_tags_carry_names(tmp_path: Path) -> None:
    chat = [
        {"role": "system", "content": "Be brief.", "name": "policy"},
        {"role": "user", "content": "Hi", "name": "bob"},
    ]
    (tmp_path / "promptfooconfig.yaml").write_text("prompts:\n  - file://chat.json\n")
    (tmp_path / "chat.json").write_text(json.dumps(chat) + "{{ '' }}", encoding="utf-8")
    rendered = rendered_of(tmp_path / "chat.json")
    assert [(m.role, m.name) for m in rendered.messages] == [("system", "policy"), ("user", "bob")]

    sk = tmp_path / "sk" / "skprompt.txt"
    sk.parent.mkdir()
    sk.write_text('<message role="user" name="bob">Hi {{$x}}</message>\n', encoding="utf-8")
    rendered = rendered_of(sk)
    assert [(m.role, m.name) for m in rendered.messages] == [("user", "bob")]
    count = count_prompt(rendered, get_tokenizer("o200k_base"))
    reference = num_tokens_from_messages(
        [{"role": "user", "content": "Hi ", "name": "bob"}], "gpt-4o"
    )
    assert count.request_tokens == reference


@pytest.mark.parametrize(
    ("marker", "name"),
    [('user[name="bob"]:', "bob"), ("user[name='ann', x=1]:", "ann"), ("user[name=cy]:", "cy")],
)
def test_prompty_marker_arguments(tmp_path: Path, marker: str, name: str) -> None:
    path = tmp_path / "a.j2"
    path.write_text(f"{marker}\nHello\n", encoding="utf-8")
    assert [m.name for m in rendered_of(path).messages] == [name]
