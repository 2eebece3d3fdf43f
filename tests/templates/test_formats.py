"""Semantic Kernel, LangChain and promptfoo prompts, rendered with their real syntax, and what
is read from each (model, output limit, samples, declared inputs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPUS, Run
from promptbudget.templates.parse import parse_template
from promptbudget.templates.source import TemplateFormat, detect_format, read_prompt_text

RunCli = Callable[..., Run]
SK = CORPUS / "microsoft__semantic-kernel"
PROMPTFOO = CORPUS / "promptfoo__promptfoo/examples"


def parsed(path: Path) -> Any:
    return parse_template(path, path.name, detect_format(path), read_prompt_text(path))


def count(run_cli: RunCli, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    run = run_cli("count", *args, "--format", "json", cwd=cwd)
    assert run.exit_code in (0, 1), run.stderr
    data: dict[str, Any] = run.json()
    return data


def rules(data: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in data["findings"] if f["rule"] == rule]


def skprompt(data: dict[str, Any]) -> dict[str, Any]:
    (template,) = [t for t in data["templates"] if t["path"].endswith("skprompt.txt")]
    return template


# -- Semantic Kernel ----------------------------------------------------------------------------


def test_skprompt_reads_its_config_json() -> None:
    template = parsed(SK / "prompt_template_samples/ChatPlugin/ChatGPT/skprompt.txt")
    assert template.format is TemplateFormat.SEMANTIC_KERNEL
    assert template.meta.engine == "semantic-kernel"
    assert template.meta.max_output_tokens == 150  # execution_settings.default.max_tokens
    poem = parsed(SK / "prompt_template_samples/WriterPlugin/ShortPoem/skprompt.txt")
    assert poem.meta.max_output_tokens == 60
    assert poem.meta.declared_inputs == frozenset({"input"})
    assert poem.meta.samples == {}  # default "" means: the caller always passes it


def test_skprompt_legacy_completion_config() -> None:
    template = parsed(
        SK / "dotnet/samples/LearnResources/Plugins/OrchestratorPlugin/GetIntent/skprompt.txt"
    )
    assert template.meta.max_output_tokens == 500  # completion.max_tokens
    assert template.meta.declared_inputs == frozenset({"input", "history", "options"})


def test_skprompt_variables_and_functions(run_cli: RunCli) -> None:
    data = count(run_cli, str(SK / "prompt_template_samples/ChatPlugin/ChatGPT/skprompt.txt"))
    assert rules(data, "PB001") == []
    (template,) = data["templates"]
    names = {v["name"] for v in template["variables"]}
    assert {"firstName", "botName", "attitude", "history", "input", "date", "recall"} <= names
    unbounded = {f["message"].split("'")[1]: f for f in rules(data, "PB201")}
    assert "provided by your application" in unbounded["recall"]["message"]
    assert "provided by your application" in unbounded["date"]["message"]
    assert unbounded["firstName"]["message"].startswith("variable 'firstName'")
    assert unbounded["recall"]["line"] == 12
    # Functions are not inputs the template forgot to declare.
    assert not [f for f in rules(data, "PB202") if "'recall'" in f["message"]]


def sk_project(make_project: Callable[..., Path], template: str, budgets: str) -> Path:
    return make_project(
        {
            "budgets.yaml": budgets,
            "prompts/Chat/skprompt.txt": template,
            "prompts/Chat/config.json": json.dumps(
                {
                    "schema": 1,
                    "execution_settings": {"default": {"max_tokens": 100, "model_id": "gpt-4o"}},
                    "input_variables": [{"name": "input", "default": "What is Acme?"}],
                }
            ),
        },
        dedent=False,
    )


def test_a_capped_sk_function_is_charged_its_cap(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    template = "Answer the question.\n{{recall $input}}\nQuestion: {{$input}}\n"
    bare = sk_project(make_project, template, "version: 1\n")
    capped = sk_project(
        make_project, template, "version: 1\nvariables:\n  recall: {max_tokens: 200}\n"
    )
    before = count(run_cli, cwd=bare)
    after = count(run_cli, cwd=capped)
    assert skprompt(after)["model"] == "gpt-4o"  # model_id
    assert rules(after, "PB201") == []
    assert rules(before, "PB201")  # unbounded until capped
    grown = skprompt(after)["request_tokens"] - skprompt(before)["request_tokens"]
    # the cap, plus one token: with nothing in between, the two newlines were one token
    assert grown == 200 + 1


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ('Say {{ "{{" }}hi{{ "}}" }}.\n', "Say {{hi}}.\n"),
        ("Plain {{ }} text.\n", "Plain  text.\n"),
        ("An unclosed {{ block stays text.\n", "An unclosed {{ block stays text.\n"),
        ("Input: {{ $input }}!\n", "Input: What is Acme?!\n"),
    ],
)
def test_sk_literals_and_spaces(
    run_cli: RunCli, make_project: Callable[..., Path], template: str, text: str
) -> None:
    root = sk_project(make_project, template, "version: 1\n")
    data = count(run_cli, cwd=root)
    assert rules(data, "PB001") == []
    tokens = count(run_cli, str(root / "prompts/Chat/skprompt.txt"), cwd=root)
    from promptbudget.tokenizers import get_tokenizer

    assert tokens["templates"][0]["text_tokens"] == get_tokenizer("o200k_base").count(text)


@pytest.mark.parametrize(
    ("template", "line", "fragment"),
    [
        ("One.\nTwo {{$bad-name}}.\n", 2, "'$bad-name' is not a valid variable name"),
        ("One.\n\n{{ $ }}\n", 3, "'$' is not a valid variable name"),
        ("{{$a $b}}\n", 1, "a variable stands alone in its block"),
        ("{{ fn arg }}\n", 1, "'arg' in '{{fn arg}}' is not a $variable or a quoted value"),
    ],
)
def test_sk_syntax_errors_name_the_line(
    run_cli: RunCli, make_project: Callable[..., Path], template: str, line: int, fragment: str
) -> None:
    root = sk_project(make_project, template, "version: 1\n")
    (finding,) = rules(count(run_cli, cwd=root), "PB001")
    assert finding["line"] == line
    assert fragment in finding["message"]
    assert finding["message"].startswith("Semantic Kernel template error: ")


def test_sk_message_tags_are_chat_messages(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    template = (
        '<message role="system">You answer questions about Acme.</message>\n'
        '<message role="user">{{$input}}</message>\n'
    )
    root = sk_project(make_project, template, "version: 1\n")
    counted = skprompt(count(run_cli, cwd=root))
    assert [m["role"] for m in counted["messages"]] == ["system", "user"]


def test_sk_crlf_counts_like_lf(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    template = "Answer.\r\nQuestion: {{$input}}\r\n"
    crlf = sk_project(make_project, template, "version: 1\n")
    lf = sk_project(make_project, template.replace("\r\n", "\n"), "version: 1\n")
    assert count(run_cli, cwd=crlf)["templates"] == count(run_cli, cwd=lf)["templates"]


def test_sk_prompt_yaml_handlebars_with_a_bom() -> None:
    path = SK / "dotnet/samples/Concepts/Resources/GenerateStoryHandlebars.yaml"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    template = parsed(path)
    assert template.format is TemplateFormat.SEMANTIC_KERNEL
    assert template.meta.engine == "handlebars"
    assert template.meta.model == "gpt-4"  # the first service's model_id (no default one)
    assert template.body_line == 3  # the line after "template: |"
    assert template.meta.declared_inputs == frozenset({"topic", "length"})
    assert template.meta.declared_lines == {"topic": 7, "length": 10}  # "- name: topic"


def test_sk_prompt_yaml_liquid(run_cli: RunCli) -> None:
    data = count(run_cli, str(SK / "dotnet/samples/Concepts/Resources/LiquidPrompt.yaml"))
    assert rules(data, "PB001") == []
    (template,) = data["templates"]
    assert template["format"] == "semantic-kernel"
    assert [m["role"] for m in template["messages"]] == ["system"]  # history is unbounded
    assert {v["name"] for v in template["variables"]} == {"customer", "history"}


def test_liquid_tags_that_jinja_lacks(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "prompt.yaml": (
                "name: x\n"
                "template_format: liquid\n"
                "template: |\n"
                "  {% assign greeting = 'Hello' %}{% comment %}not sent{% endcomment %}\n"
                "  {% unless quiet %}{{ greeting | upcase }}, {{ name }}{% endunless %}\n"
                "input_variables:\n"
                "  - name: name\n"
                "    default: Ada\n"
                "  - name: quiet\n"
                "    default: false\n"
            )
        },
        dedent=False,
    )
    data = count(run_cli, str(root / "prompt.yaml"))
    assert rules(data, "PB001") == []
    from promptbudget.tokenizers import get_tokenizer

    # the tag lines' newlines stay, as they do in SK's Liquid engine
    assert data["templates"][0]["text_tokens"] == get_tokenizer("o200k_base").count(
        "\nHello, Ada\n"
    )


def test_sk_prompt_yaml_default_format_is_sks_own(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "prompt.yaml": (
                "name: summarize\n"
                "template: 'Summarize: {{$input}}'\n"
                "execution_settings:\n"
                "  default: {max_tokens: 64}\n"
            )
        },
        dedent=False,
    )
    template = parsed(root / "prompt.yaml")
    assert (template.meta.engine, template.meta.max_output_tokens) == ("semantic-kernel", 64)
    assert template.body_line == 2
    data = count(run_cli, str(root / "prompt.yaml"))
    assert [v["name"] for v in data["templates"][0]["variables"]] == ["input"]


def test_an_unknown_template_format_is_pb001(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {"prompt.yaml": "name: x\ntemplate_format: razor\ntemplate: |\n  Hi @name\n"},
        dedent=False,
    )
    (finding,) = rules(count(run_cli, str(root / "prompt.yaml")), "PB001")
    assert "template_format 'razor' is not one Semantic Kernel knows" in finding["message"]
    assert finding["line"] == 4


# -- LangChain --------------------------------------------------------------------------------


LANGCHAIN_YAML = """\
_type: prompt
input_variables:
- context
- question
output_parser: null
partial_variables: {}
template: 'Use the context to answer the question.

  Context: {context}

  Question: {question}

  Answer in {{JSON}}:'
template_format: f-string
validate_template: false
"""


def test_langchain_saved_prompt_yaml(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project({"qa.yaml": LANGCHAIN_YAML}, dedent=False)
    template = parsed(root / "qa.yaml")
    assert template.format is TemplateFormat.LANGCHAIN
    assert template.meta.engine == "fstring"
    assert template.meta.declared_inputs == frozenset({"context", "question"})
    assert template.meta.declared_lines == {"context": 3, "question": 4}
    data = count(run_cli, str(root / "qa.yaml"))
    assert rules(data, "PB001") == []
    (counted,) = data["templates"]
    assert counted["format"] == "langchain"
    assert {v["name"] for v in counted["variables"]} == {"context", "question"}
    from promptbudget.tokenizers import get_tokenizer

    text = "Use the context to answer the question.\nContext: \nQuestion: \nAnswer in {JSON}:"
    assert counted["text_tokens"] == get_tokenizer("o200k_base").count(text)
    # the quoted scalar's lines are where they are in the file, blank lines between
    assert {f["line"] for f in rules(data, "PB201")} == {9, 11}


def test_langchain_json_with_partial_variables(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    prompt = {
        "_type": "prompt",
        "input_variables": ["question"],
        "partial_variables": {"tone": "friendly"},
        "template": "Answer in a {tone} tone: {question}",
        "template_format": "f-string",
    }
    root = make_project({"qa.json": json.dumps(prompt, indent=2)}, dedent=False)
    data = count(run_cli, str(root / "qa.json"))
    variables = {v["name"]: v["source"] for v in data["templates"][0]["variables"]}
    assert variables == {"tone": "sample", "question": "none"}


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("Hi {user.name}", "'{user.name}' is not a variable name"),
        ("Hi {0}", "'{0}' is not a variable name"),
        ("Hi {name!r}", "format specs and conversions"),
        ("Hi {name", "f-string template error"),
    ],
)
def test_langchain_fstring_refuses_lookups(
    run_cli: RunCli, make_project: Callable[..., Path], template: str, fragment: str
) -> None:
    prompt = {"_type": "prompt", "input_variables": ["name"], "template": template}
    root = make_project({"p.json": json.dumps(prompt)}, dedent=False)
    (finding,) = rules(count(run_cli, str(root / "p.json")), "PB001")
    assert fragment in finding["message"]


@pytest.mark.parametrize(
    ("template_format", "template"),
    [("jinja2", "Hello {{ name }}!"), ("mustache", "Hello {{name}}!")],
)
def test_langchain_jinja2_and_mustache(
    run_cli: RunCli, make_project: Callable[..., Path], template_format: str, template: str
) -> None:
    prompt = {
        "_type": "prompt",
        "input_variables": ["name"],
        "partial_variables": {"name": "Ada"},
        "template": template,
        "template_format": template_format,
    }
    root = make_project({"p.json": json.dumps(prompt)}, dedent=False)
    data = count(run_cli, str(root / "p.json"))
    assert rules(data, "PB001") == []
    from promptbudget.tokenizers import get_tokenizer

    assert data["templates"][0]["text_tokens"] == get_tokenizer("o200k_base").count("Hello Ada!")


# -- promptfoo ---------------------------------------------------------------------------------


def test_promptfoo_prompts_split_on_dashes_with_the_configs_vars(run_cli: RunCli) -> None:
    data = count(run_cli, str(PROMPTFOO / "nunjucks-custom-filters/prompts.txt"))
    assert rules(data, "PB001") == []  # allcaps is the application's filter
    assert rules(data, "PB201") == []  # language and body come from the config's tests
    first, second = data["templates"]
    assert (first["variant"], second["variant"]) == ("1 of 2", "2 of 2")
    from promptbudget.tokenizers import get_tokenizer

    o200k = get_tokenizer("o200k_base")
    # allcaps passes its value through: counted as it goes in
    assert first["text_tokens"] == o200k.count("Rephrase this in French: Hello world")
    assert second["text_tokens"] == o200k.count(
        "Translate this to conversational French: Hello world"
    )


def test_a_file_no_promptfoo_config_names_is_not_split(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project({"prompts.txt": "One {{ a }}\n---\nTwo {{ a }}\n"}, dedent=False)
    data = count(run_cli, str(root / "prompts.txt"))
    assert [t["variant"] for t in data["templates"]] == [None]


def test_a_glob_in_the_config_names_the_file(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "promptfooconfig.yaml": "prompts:\n  - file://prompts/*.txt\n",
            "prompts/a.txt": "One\n---\nTwo\n---\n\nThree\n",
        },
        dedent=False,
    )
    data = count(run_cli, str(root / "prompts/a.txt"))
    assert [t["variant"] for t in data["templates"]] == ["1 of 3", "2 of 3", "3 of 3"]
    assert [m["tokens"] for t in data["templates"] for m in t["messages"]] == [1, 1, 1]


def test_promptfoo_chat_json(run_cli: RunCli, tmp_path: Path) -> None:
    example = tmp_path / "llama-gpt-comparison"
    shutil.copytree(PROMPTFOO / "llama-gpt-comparison", example)
    data = count(run_cli, str(example / "prompts/chat_prompt.json"))
    (template,) = data["templates"]
    assert [m["role"] for m in template["messages"]] == ["system", "user"]
    assert template["messages"][0]["tokens"] == 4  # "You are a pirate"


def test_a_jinja_filter_the_application_registers_passes_its_value(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {"a.j2": "---\nsample: {name: Ada Lovelace}\n---\nHello {{ name | shout | trim }}!\n"},
        dedent=False,
    )
    data = count(run_cli, str(root / "a.j2"))
    assert rules(data, "PB001") == []
    from promptbudget.tokenizers import get_tokenizer

    assert data["templates"][0]["text_tokens"] == get_tokenizer("o200k_base").count(
        "Hello Ada Lovelace!\n"
    )


@pytest.mark.parametrize("named", [["a.j2"], ["b.j2"], ["a.j2", "b.j2"], ["b.j2", "a.j2"]])
def test_a_partials_application_filter_does_not_depend_on_what_was_compiled_first(
    run_cli: RunCli, make_project: Callable[..., Path], named: list[str]
) -> None:
    """b.j2 uses no filter itself; the partial it includes does. Whether a.j2, which uses the
    same filter, was compiled before it once decided whether b.j2 rendered (PB001)."""
    root = make_project(
        {
            "a.j2": "---\nsample: {name: Ada}\n---\nHello {{ name | shout }}\n",
            "b.j2": '---\nsample: {who: Grace}\n---\nIntro\n{% include "p.j2" %}\n',
            "p.j2": "Partial {{ who | shout }}\n",
        },
        dedent=False,
    )
    data = count(run_cli, *(str(root / name) for name in named))
    assert rules(data, "PB001") == []
    if "b.j2" in named:  # the filter passes the value: as if the partial had none
        (root / "p.j2").write_text("Partial {{ who }}\n", encoding="utf-8")
        plain = count(run_cli, str(root / "b.j2"))
        (b,) = [t for t in data["templates"] if t["path"].endswith("b.j2")]
        assert b["text_tokens"] == plain["templates"][0]["text_tokens"] > 2


def test_sk_handlebars_plugin_functions_and_message_tags(run_cli: RunCli) -> None:
    data = count(run_cli, str(SK / "dotnet/samples/LearnResources/Resources/getIntent.prompt.yaml"))
    assert rules(data, "PB001") == []
    (template,) = data["templates"]
    assert template["model"] == "gpt-3.5-turbo-0613"  # the default service's model_id
    assert [m["role"] for m in template["messages"]] == ["system", "user", "system"]
    function = "ConversationSummaryPlugin.SummarizeConversation"
    (finding,) = [f for f in rules(data, "PB201") if function in f["message"]]
    assert "provided by your application" in finding["message"]
    assert finding["line"] == 14
    assert not [f for f in rules(data, "PB202") if function in f["message"]]


def test_sk_handlebars_index_without_a_dot(run_cli: RunCli, tmp_path: Path) -> None:
    """Handlebars.Net (SK) accepts ``choices[0]``, as an older getIntent.prompt.yaml of SK's own
    samples wrote it; Handlebars.js (Dotprompt) rejects it, and so do we there."""
    source = SK / "dotnet/samples/LearnResources/Resources/getIntent.prompt.yaml"
    text = source.read_text(encoding="utf-8")
    assert "{{choices.[0]}}" in text
    (tmp_path / "getIntent.prompt.yaml").write_text(
        text.replace("{{choices.[0]}}", "{{choices[0]}}"), encoding="utf-8"
    )
    older = count(run_cli, str(tmp_path / "getIntent.prompt.yaml"))
    assert rules(older, "PB001") == []
    (old,) = older["templates"]
    (new,) = count(run_cli, str(source))["templates"]
    assert (old["text_tokens"], old["messages"]) == (new["text_tokens"], new["messages"])
    (tmp_path / "x.prompt").write_text("Pick {{choices[0]}}.\n", encoding="utf-8")
    (finding,) = rules(count(run_cli, str(tmp_path / "x.prompt")), "PB001")
    assert finding["line"] == 1


# -- Prompty ------------------------------------------------------------------------------------

PROMPTY_WITH_SAMPLE_FILE = """\
---
name: Json Format Prompt
model:
  api: chat
  parameters:
    max_tokens: 128
inputs:
  first_name:
    type: string
    default: John
  question:
    type: string
sample: {sample}
---
system:
You help {{{{first_name}}}}.

user:
{{{{question}}}}
"""


@pytest.mark.parametrize("reference", ["sample.json", "${file:sample.json}"])
@pytest.mark.parametrize(
    "content",
    ['{"question": "Where is my order 12345?"}', '[{"question": "Where is my order 12345?"}]'],
)
def test_prompty_sample_names_a_file(
    run_cli: RunCli, tmp_path: Path, reference: str, content: str
) -> None:
    """Prompty's spec: ``sample`` is an object or a file name (a list file gives its first)."""
    (tmp_path / "p.prompty").write_text(
        PROMPTY_WITH_SAMPLE_FILE.format(sample=reference), encoding="utf-8"
    )
    (tmp_path / "sample.json").write_text(content, encoding="utf-8")
    data = count(run_cli, str(tmp_path / "p.prompty"))
    assert rules(data, "PB001") == []
    (template,) = data["templates"]
    question = {v["name"]: v for v in template["variables"]}["question"]
    assert question["source"] == "sample" and question["tokens"] == 8  # o200k_base
    assert rules(data, "PB201") == []


def test_a_missing_sample_file_leaves_the_variable_unbounded(
    run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "p.prompty").write_text(
        PROMPTY_WITH_SAMPLE_FILE.format(sample="sample.json"), encoding="utf-8"
    )
    data = count(run_cli, str(tmp_path / "p.prompty"))
    assert rules(data, "PB001") == []
    (finding,) = rules(data, "PB201")
    assert "'question'" in finding["message"]


CONTEXT_PROMPTY = """\
---
name: Prompt with complex context
model:
  api: chat
  connection:
    azure_deployment: gpt-35-turbo
inputs: ${file:context.json}
---
system:
{% for item in documentation %}
catalog: {{item.id}}
{% endfor %}
You are helping {{customer.firstName}}.

user:
{{question}}
"""


def test_prompty_inputs_from_a_file(run_cli: RunCli, tmp_path: Path) -> None:
    """``inputs: ${file:context.json}`` (prompty's own tests): the file's values are the
    samples and its names the declared inputs; without the file, PB202 does not guess."""
    (tmp_path / "context.prompty").write_text(CONTEXT_PROMPTY, encoding="utf-8")
    missing = count(run_cli, str(tmp_path / "context.prompty"))
    assert rules(missing, "PB001") == [] and rules(missing, "PB202") == []
    assert {f["message"].split("'")[1] for f in rules(missing, "PB201")} == {
        "customer",
        "documentation",
        "question",
    }
    context = {
        "documentation": [{"id": "17"}, {"id": "42"}],
        "customer": {"firstName": "Sally"},
        "question": "What tent fits four?",
    }
    (tmp_path / "context.json").write_text(json.dumps(context), encoding="utf-8")
    found = count(run_cli, str(tmp_path / "context.prompty"))
    assert rules(found, "PB201") == [] and rules(found, "PB202") == []
    (template,) = found["templates"]
    assert template["model"] == "gpt-3.5-turbo"  # Azure's gpt-35-turbo
    assert {v["name"]: v["source"] for v in template["variables"]} == {
        "customer": "sample",
        "documentation": "sample",
        "question": "sample",
    }


SK_CHAT = """\
name: Chat
template: |
  {{#message role="system"}}
  You are a helpful assistant for {{company}}.
  {{/message}}
  {{#each history}}
  {{#message role=role}}
  {{content}}
  {{/message}}
  {{/each}}
  {{#message role="user"}}
  {{request}}
  {{/message}}
template_format: handlebars
input_variables:
  - name: company
    default: Contoso
  - name: request
    default: What is my balance?
  - name: history
    default:
      - {role: user, content: Hi there}
      - {role: assistant, content: "Hello! How can I help?"}
"""


def test_sk_handlebars_message_helper_makes_chat_messages(run_cli: RunCli, tmp_path: Path) -> None:
    """SK's ``{{#message role=…}}`` block writes a ``<message role>`` tag: one chat message."""
    (tmp_path / "chat.yaml").write_text(SK_CHAT, encoding="utf-8")
    data = count(run_cli, str(tmp_path / "chat.yaml"))
    assert data["findings"] == []
    (template,) = data["templates"]
    assert [m["role"] for m in template["messages"]] == ["system", "user", "assistant", "user"]
    assert template["text_tokens"] == sum(m["tokens"] for m in template["messages"])
    assert template["messages"][2]["tokens"] == 7  # "Hello! How can I help?" in o200k_base


def test_sk_handlebars_message_helper_with_a_capped_history(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": """\
                version: 1
                defaults: {model: gpt-4o}
                variables:
                  history: {max_tokens: 500}
                """,
            "prompts/chat.yaml": SK_CHAT.split("    default:\n      - {role: user")[0],
        },
        dedent=True,
    )
    data = count(run_cli, cwd=root)
    assert rules(data, "PB001") == [] and rules(data, "PB201") == []
    (template,) = data["templates"]
    roles = [(m["role"], m["tokens"] >= 500) for m in template["messages"]]
    assert roles == [("system", False), ("user", True), ("user", False)]


def test_a_prompt_yaml_that_is_not_yaml_is_pb001(run_cli: RunCli, tmp_path: Path) -> None:
    broken = SK_CHAT.replace('content: "Hello! How can I help?"}', "content: Hello! Help?}")
    (tmp_path / "chat.yaml").write_text(broken, encoding="utf-8")
    (finding,) = rules(count(run_cli, str(tmp_path / "chat.yaml")), "PB001")
    assert finding["line"] == 23
    assert "looks like a Semantic Kernel prompt, but is not valid YAML" in finding["message"]
    # A data file that is no prompt stays plain text, whatever its syntax.
    (tmp_path / "notes.yaml").write_text("notes: [unclosed\n", encoding="utf-8")
    data = count(run_cli, str(tmp_path / "notes.yaml"))
    assert rules(data, "PB001") == []
    assert data["templates"][0]["format"] == "text"


def test_sk_names_ignore_case(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    """SK's KernelArguments ignore case: ``{{$Input}}`` reads the declared ``input``."""
    root = sk_project(make_project, "Question: {{$Input}}\n{{recall $INPUT}}\n", "version: 1\n")
    data = count(run_cli, cwd=root)
    assert rules(data, "PB202") == []
    template = skprompt(data)
    variables = {v["name"]: v["source"] for v in template["variables"]}
    assert variables == {"input": "sample", "recall": "none"}
    same = sk_project(make_project, "Question: {{$input}}\n{{recall $input}}\n", "version: 1\n")
    assert template["text_tokens"] == skprompt(count(run_cli, cwd=same))["text_tokens"]
