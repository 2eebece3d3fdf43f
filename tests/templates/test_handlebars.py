"""The Handlebars engine on its own: syntax, exact whitespace, errors, sandbox, variables.

Expected outputs marked ``spec/…`` come from google/dotprompt's language-neutral spec suite
(https://github.com/google/dotprompt/tree/main/spec); "Mustache spec" cases from
mustache/spec ``specs/*.yml``, which Handlebars follows for standalone lines.
"""

from __future__ import annotations

from typing import Any

import pytest

from promptbudget.templates.handlebars import (
    BUILTIN_HELPERS,
    MAX_ITERATIONS,
    MAX_PARTIAL_DEPTH,
    Dialect,
    HandlebarsError,
    Marker,
    parse_handlebars,
    partial_names,
    read_variables,
    render_handlebars,
    split_dotprompt_messages,
)


def _loader(partials: dict[str, str] | None):  # type: ignore[no-untyped-def]
    def load(name: str) -> str | None:
        if name.startswith("/"):
            raise LookupError("not a relative path")
        return (partials or {}).get(name)  # None: not in the project

    return load


def render(
    source: str,
    context: dict[str, Any] | None = None,
    partials: dict[str, str] | None = None,
    functions: dict[str, Any] | None = None,
    **options: Any,
) -> str:
    """Text only; markers shown as ``<kind:value>``."""
    template = parse_handlebars(source, **options)
    chunks = render_handlebars(
        template, context or {}, partials=_loader(partials), functions=functions
    )
    return "".join(c if isinstance(c, str) else f"<{c.kind}:{c.value}>" for c in chunks)


def error(source: str, context: dict[str, Any] | None = None, **kw: Any) -> HandlebarsError:
    with pytest.raises(HandlebarsError) as info:
        render(source, context, **kw)
    return info.value


def messages(source: str, context: dict[str, Any] | None = None) -> list[tuple[str, list[str]]]:
    chunks = render_handlebars(parse_handlebars(source), context or {})
    return [(m.role, list(m.texts)) for m in split_dotprompt_messages(chunks)]


# -- expressions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        # spec/variables.yaml "basic"
        ("Hello, {{name}}!\n", {"name": "Michael"}, "Hello, Michael!\n"),
        # spec/unicode.yaml "unicode_nested"
        (
            '{{user.name}} says "{{user.greeting}}" in {{user.language}}\n',
            {"user": {"name": "田中太郎", "greeting": "こんにちは", "language": "日本語"}},
            '田中太郎 says "こんにちは" in 日本語\n',
        ),
        # Dotprompt compiles with noEscape: nothing is HTML-escaped
        ("<b>{{x}}</b> {{{x}}} {{& x}}", {"x": "<i>&'\""}, "<b><i>&'\"</b> <i>&'\" <i>&'\""),
        ("{{a/b}} {{this.a.b}} {{./a.b}} {{[a].[b]}}", {"a": {"b": 1}}, "1 1 1 1"),
        ("{{[odd key]}}", {"odd key": "ok"}, "ok"),
        ("{{list.length}} {{list.[1]}} {{text.length}}", {"list": [1, 2], "text": "abc"}, "2 2 3"),
        ("{{missing}}{{missing.deep.path}}|", {}, "|"),
        # JavaScript's String(): booleans, numbers, arrays, objects
        (
            "{{t}} {{f}} {{i}} {{x}} {{big}} {{small}} {{l}} {{o}} {{n}}",
            {
                "t": True,
                "f": False,
                "i": 3,
                "x": 2.0,
                "big": 1e21,
                "small": 0.00001,
                "l": [1, "a", None, [2, 3]],
                "o": {"k": 1},
                "n": None,
            },
            "true false 3 2 1e+21 0.00001 1,a,,2,3 [object Object] ",
        ),
        (
            "{{lookup map key}} {{lookup list 1}}",
            {"map": {"a": "A"}, "key": "a", "list": [5, 6]},
            "A 6",
        ),
        ('{{json (lookup map "a")}}', {"map": {"a": [1, 2]}}, "[1,2]"),
        ("{{log 'ignored'}}x", {}, "x"),
        ('{{"quoted key"}}', {"quoted key": "v"}, "v"),
    ],
)
def test_expressions(source: str, context: dict[str, Any], expected: str) -> None:
    assert render(source, context) == expected


def test_escaped_mustaches_are_text() -> None:
    assert render("\\{{name}} {{name}}", {"name": "x"}) == "{{name}} x"
    assert render("\\\\{{name}}", {"name": "x"}) == "\\x"


def test_html_escaping_when_asked_for() -> None:
    source = "{{x}} {{{x}}}"
    assert render(source, {"x": "<a href='/'>"}, escape_html=True) == (
        "&lt;a href&#x3D;&#x27;/&#x27;&gt; <a href='/'>"
    )


# -- blocks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {"b": 1}, "B"),
        ("{{#if a}}A{{else if b}}B{{else}}C{{/if}}", {}, "C"),
        ("{{^if a}}not a{{/if}}", {"a": ""}, "not a"),
        ("{{#if a}}yes{{^}}no{{/if}}", {"a": []}, "no"),
        ("{{#if a}}yes{{else}}no{{/if}}", {"a": {}}, "yes"),  # {} is truthy in JavaScript
        ("{{#if zero}}yes{{else}}no{{/if}}", {"zero": 0}, "no"),
        ("{{#if zero includeZero=true}}yes{{else}}no{{/if}}", {"zero": 0}, "yes"),
        ("{{#unless a}}none{{/unless}}", {"a": []}, "none"),
        (
            "{{#each o}}{{@key}}={{this}}{{#unless @last}},{{/unless}}{{/each}}",
            {"o": {"a": 1, "b": 2}},
            "a=1,b=2",
        ),
        (
            "{{#each xs}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} {{/each}}",
            {"xs": "ab"},
            "",
        ),
        (
            "{{#each xs}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} {{/each}}",
            {"xs": [7, 8, 9]},
            "0F 1 2L ",
        ),
        ("{{#each xs}}x{{else}}empty{{/each}}", {"xs": []}, "empty"),
        (
            "{{#each xs as |item i|}}{{i}}:{{item.n}} {{/each}}",
            {"xs": [{"n": "a"}, {"n": "b"}]},
            "0:a 1:b ",
        ),
        ("{{#each xs}}{{../sep}}{{this}}{{/each}}", {"xs": [1, 2], "sep": "-"}, "-1-2"),
        ("{{#each xs}}{{@root.sep}}{{@../index}}{{/each}}", {"xs": [1], "sep": "|"}, "|"),
        (
            "{{#with p}}{{name}}/{{../top}}{{else}}none{{/with}}",
            {"p": {"name": "N"}, "top": "T"},
            "N/T",
        ),
        ("{{#with p}}{{name}}{{else}}none{{/with}}", {"p": None}, "none"),
        ("{{#with p as |q|}}{{q.name}}{{/with}}", {"p": {"name": "N"}}, "N"),
        # Mustache-style sections (Handlebars' blockHelperMissing)
        (
            "{{#items}}[{{.}}]{{/items}}{{^empty}}E{{/empty}}",
            {"items": [1, 2], "empty": []},
            "[1][2]E",
        ),
        ("{{#flag}}on{{/flag}}{{#obj}}{{k}}{{/obj}}", {"flag": True, "obj": {"k": "v"}}, "onv"),
    ],
)
def test_blocks(source: str, context: dict[str, Any], expected: str) -> None:
    assert render(source, context) == expected


@pytest.mark.parametrize(
    ("helper", "left", "right", "expected"),
    [
        # spec/helpers/ifEquals.yaml "basic" and "type_safety"
        ("ifEquals", 5, 5, "Values are equal\n"),
        ("ifEquals", 5, 6, "Values are not equal\n"),
        ("ifEquals", 5, "5", "Values are not equal\n"),
        ("ifEquals", True, 1, "Values are not equal\n"),
        # spec/helpers/unlessEquals.yaml
        ("unlessEquals", 5, 6, "Values are equal\n"),
        ("unlessEquals", 5, 5, "Values are not equal\n"),
    ],
)
def test_equality_helpers(helper: str, left: object, right: object, expected: str) -> None:
    source = (
        f"{{{{#{helper} value1 value2}}}}\nValues are equal\n{{{{else}}}}\n"
        f"Values are not equal\n{{{{/{helper}}}}}\n"
    )
    assert render(source, {"value1": left, "value2": right}) == expected


def test_json_helper() -> None:
    # spec/helpers/json.yaml "basic" and "indented"
    assert render("{{json this}}", {"test": True}) == '{"test":true}'
    assert render("{{json this indent=2}}", {"test": True}) == '{\n  "test": true\n}'
    # JSON.stringify: insertion order, no ASCII escaping, integral floats as integers
    data = {"b": [1.0, "é", None], "a": {}}
    assert render("{{json data}}", {"data": data}) == '{"b":[1,"é",null],"a":{}}'


# -- whitespace ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        # spec/whitespace.yaml (google/dotprompt)
        ("Hello   {{~name~}}   World\n", {"name": "Beautiful"}, "HelloBeautifulWorld\n"),
        ("Hello   {{~name}} World\n", {"name": "Beautiful"}, "HelloBeautiful World\n"),
        ("Hello {{name~}}   World\n", {"name": "Beautiful"}, "Hello BeautifulWorld\n"),
        ("<div>\n    {{~value~}}\n</div>\n", {"value": "Content"}, "<div>Content</div>\n"),
        (
            "Items:{{#each items~}}\n- {{this}}\n{{~/each}}Done\n",
            {"items": ["one", "two", "three"]},
            "Items:- one- two- threeDone\n",
        ),
        ("Start\n{{~#if show~}}\nContent\n{{~/if~}}\nEnd\n", {"show": True}, "StartContentEnd\n"),
        ("Start\n{{~#if show~}}\nContent\n{{~/if~}}\nEnd\n", {"show": False}, "StartEnd\n"),
        ("Hello {{ name }} World\n", {"name": "Beautiful"}, "Hello Beautiful World\n"),
        # Mustache spec, sections.yml: standalone lines are removed entirely
        (
            "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line",
            {"boolean": True},
            "| This Is\n|\n| A Line",
        ),
        (
            "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line",
            {"boolean": True},
            "| This Is\n|\n| A Line",
        ),
        ("|\r\n{{#boolean}}\r\n{{/boolean}}\r\n|", {"boolean": True}, "|\r\n|"),
        ("  {{#boolean}}\n#{{/boolean}}\n/", {"boolean": True}, "#\n/"),
        ("#{{#boolean}}\n/\n  {{/boolean}}", {"boolean": True}, "#\n/\n"),
        (
            " | {{#boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n",
            {"boolean": True},
            " |  \n  | \n",
        ),
        # Mustache spec, comments.yml
        ("Begin.\n{{! Comment Block! }}\nEnd.", {}, "Begin.\nEnd."),
        ("Begin.\n    {{! Indented Comment Block! }}\nEnd.", {}, "Begin.\nEnd."),
        ("!\n  {{! I'm Still Standalone }}", {}, "!\n"),
        ("Begin.\n{{!\nSomething's going on here...\n}}\nEnd.", {}, "Begin.\nEnd."),
        ("  12 {{! 34 }}\n", {}, "  12 \n"),
        ("Begin.\n{{!-- long {{comment}} --}}\nEnd.", {}, "Begin.\nEnd."),
        # Mustache spec, inverted.yml and {{else}} on its own line
        (
            "| This Is\n{{^boolean}}\n|\n{{/boolean}}\n| A Line",
            {"boolean": False},
            "| This Is\n|\n| A Line",
        ),
        ("{{#if a}}\n  A\n{{else}}\n  B\n{{/if}}\n", {"a": 0}, "  B\n"),
        ("{{#if a}}\nA\n{{else if b}}\nB\n{{else}}\nC\n{{/if}}\n", {"b": 1}, "B\n"),
        # Not standalone: another tag or text on the line keeps the newline
        ("x {{#if a}}\ny\n{{/if}} z\n", {"a": 1}, "x \ny\n z\n"),
        (
            "{{#each xs}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}\n",
            {"xs": ["a", "b"]},
            "a, b\n",
        ),
        # Handlebars quirk (matches Handlebars.js): an inner block that ends a line of the
        # outer block keeps the indentation of the next line
        (
            "{{#each xs}}\n  {{#if @first}}first\n  {{/if}}\n  - {{this}}\n{{/each}}\n",
            {"xs": [1, 2]},
            "  first\n  - 1\n    - 2\n",
        ),
        # A simple mustache such as {{role}} is never standalone: its newline stays
        ('{{role "system"}}\nHi\n', {}, "<role:system>\nHi\n"),
    ],
)
def test_whitespace(source: str, context: dict[str, Any], expected: str) -> None:
    assert render(source, context) == expected


def test_standalone_partials_are_indented_like_handlebars() -> None:
    partials = {"p": "x\n\ny\n", "greeting": "Hello from a partial!"}
    assert render("A\n  {{> p}}\nB", partials=partials) == "A\n  x\n  \n  y\nB"
    # spec/partials.yaml "basic_partial"
    assert (
        render("{{> greeting}} This is the main template.\n", partials=partials)
        == "Hello from a partial! This is the main template.\n"
    )


# -- partials -----------------------------------------------------------------------------------


def test_partials_with_context_and_hash() -> None:
    partials = {"userGreeting": "Welcome back, {{name}}!", "card": "{{title}} by {{author}}"}
    # spec/partials.yaml "partial_with_context": a standalone partial drops its line's newline
    assert render("{{> userGreeting name=username}}\n", {"username": "Alice"}, partials) == (
        "Welcome back, Alice!"
    )
    context = {"book": {"title": "T", "author": "A"}, "author": "root"}
    assert (
        render("{{> card book}}|{{> card book author='B'}}", context, partials) == "T by A|T by B"
    )


def test_nested_partials() -> None:
    # spec/partials.yaml "nested_resolved_partial"
    partials = {
        "resolvedOuter": "Hello from {{> resolvedInner}}!",
        "resolvedInner": "a nested resolved partial",
    }
    assert render("{{> resolvedOuter}}\n", partials=partials) == (
        "Hello from a nested resolved partial!"
    )


def test_partial_names_are_listed_without_rendering() -> None:
    template = parse_handlebars("{{> a}}{{#if x}}{{> b}}{{else}}{{> a}}{{/if}}")
    assert partial_names(template) == ("a", "b")


# -- Dotprompt helpers and messages -------------------------------------------------------------


def test_role_markers_make_messages() -> None:
    # spec/helpers/role.yaml "system_role" and "all_roles"
    source = (
        '{{role "system"}}{{systemGreeting}} from system\n'
        '{{role "user"}}{{userGreeting}} from user\n'
    )
    assert messages(source, {"systemGreeting": "hi", "userGreeting": "howdy"}) == [
        ("system", ["hi from system\n"]),
        ("user", ["howdy from user\n"]),
    ]
    source = (
        '{{role "system"}}this is system\n{{role "user"}}this is user1\n'
        '{{role "model"}}this is model\n{{role "user"}}this is user2\n'
    )
    assert messages(source) == [
        ("system", ["this is system\n"]),
        ("user", ["this is user1\n"]),
        ("model", ["this is model\n"]),
        ("user", ["this is user2\n"]),
    ]


def test_text_before_any_role_is_the_users() -> None:
    assert messages("Hello, {{name}}!\n", {"name": "Ann"}) == [("user", ["Hello, Ann!\n"])]
    # a role marker after whitespace only renames that (empty) message
    assert messages('\n  {{role "system"}}S') == [("system", ["S"])]
    assert messages("   \n") == []


def test_history_renders_nothing_and_starts_a_model_message() -> None:
    # spec/helpers/history.yaml "empty_history"
    source = '{{role "system"}}System prompt\n{{history}}\n{{role "user"}}User message\n'
    assert messages(source) == [("system", ["System prompt\n"]), ("user", ["User message\n"])]
    assert messages('{{role "user"}}Q\n{{history}}\nafter') == [
        ("user", ["Q\n"]),
        ("model", ["\nafter"]),
    ]


def test_section_and_media_markers_split_text_parts() -> None:
    # spec/helpers/section.yaml "basic_section"
    source = (
        '{{section "intro"}}\nHello world\n{{section "main"}}\nMain content\n'
        '{{section "conclusion"}}\nGoodbye\n'
    )
    assert messages(source) == [("user", ["\nHello world\n", "\nMain content\n", "\nGoodbye\n"])]
    # spec/helpers/media.yaml "basic": a media part and no text
    chunks = render_handlebars(
        parse_handlebars("{{media contentType=contentType url=url}}"),
        {"contentType": "image/jpeg", "url": "http://a/b/c"},
    )
    assert chunks == (Marker("media", "http://a/b/c", "image/jpeg"),)
    (message,) = split_dotprompt_messages(chunks)
    assert message.texts == () and message.media == ("http://a/b/c",)


# -- errors and their lines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("a\n{{#if x}}\nno close\n", 2, "'{{#if}}' is never closed (expected '{{/if}}')"),
        ("{{#if x}}\n\n{{/each}}", 3, "'{{/each}}' does not match '{{#if}}' opened on line 1"),
        ("ok\n{{/if}}", 2, "'{{/if}}' closes no open block"),
        ("{{else}}", 1, "outside any block"),
        ("a\nType here: {{\n\n{{! c }}", 2, "'{{' is never closed"),
        ("{{name", 1, "'{{' is never closed"),
        ("{{!-- open", 1, "comment '{{!--' is never closed"),
        ('{{x "open}}', 1, "string is never closed"),
        ("line\nextra closing brace: }}\n", 2, "unbalanced braces: this '}}' on line 2 closes"),
        ("{{x}}\n\n{{y}} }}", 3, "unbalanced braces: this '}}' on line 3 closes no '{{'"),
        ("{{#if a}}A{{else}}B{{else}}C{{/if}}", 1, "a second '{{else}}'"),
        ("{{x y=1 z}}", 1, "arguments go before hash arguments"),
        ("{{#gt a 1}}\nx\n{{/lt}}", 3, "'{{/lt}}' does not match '{{#gt}}' opened on line 1"),
        ("{{#gt a 1}}\n{{#lt b}}x{{/gt}}", 2, "'{{/gt}}' does not match '{{#lt}}'"),
        ("{{#gt a 1}}x", 1, "'{{#gt}}' is never closed"),
        ("{{x.y a}}", 1, "unknown helper 'x.y'"),
        ("{{#each xs as |h|}}{{json (h)}}{{/each}}", 1, "'(h …)' calls no helper"),
        ("{{json (if a)}}", 1, "'if' cannot be used in a subexpression"),
        ("{{#each}}x{{/each}}", 1, "'each' takes 1 argument, not 0"),
        ("{{if a}}", 1, "'if' is a block helper"),
        ('\n{{#role "system" 1}}\nx\n{{/role}}', 2, "'role' takes 1 argument, not 2"),
        ("{{#json a}}x{{/json}}", 1, "'json' is not a block helper"),
        ('{{role "System"}}', 1, "role must be a lowercase name"),
        ("{{{{raw}}}}x{{{{/raw}}}}", 1, "raw blocks"),
        ("{{#> layout}}x{{/layout}}", 1, "partial blocks"),
        ("{{#*inline 'x'}}y{{/inline}}", 1, "inline partials"),
        ("{{> (which)}}", 1, "dynamic partial names"),
        ("{{=<% %>=}}", 1, "set-delimiter"),
        ('x\n\n{{> "/abs"}}', 3, "partial '/abs' cannot be used: not a relative path"),
        ("{{> broken}}", 1, "in partial 'broken', line 2: '{{#if}}' is never closed"),
    ],
)
def test_errors_name_the_problem_and_its_line(source: str, line: int, fragment: str) -> None:
    err = error(source, partials={"broken": "ok\n{{#if x}}"})
    assert fragment in err.message
    assert err.line == line


def test_lines_count_from_the_first_line_of_the_body() -> None:
    with pytest.raises(HandlebarsError) as info:
        parse_handlebars("a\n{{#if x}}", first_line=10)
    assert info.value.line == 11
    template = parse_handlebars("\n{{name}}", first_line=10)
    assert read_variables(template).names == {"name": 11}


@pytest.mark.parametrize(
    "text",
    [
        'Reply as {"user": {"name": "x", "tags": [{"a": 1}]}}\n{ nested { braces }}\n',
        '{"a": {"b": 1}}',
        "a } b } c }",
        "{{!-- a long comment may hold }} and {{ --}}ok",
        "\\{{escaped}} ok",
    ],
)
def test_braces_in_text_are_not_errors(text: str) -> None:
    """Only a '}}' that closes no '{{' (nor a '{') is an error: JSON is fine."""
    template = parse_handlebars(text)
    assert template.warnings == ()
    render(text)


def test_braces_around_mustaches_nest() -> None:
    source = '{"name": "{{name}}", "meta": {"n": {{n}}}}'
    assert render(source, {"name": "Ann", "n": 3}) == '{"name": "Ann", "meta": {"n": 3}}'


def test_a_short_comment_that_holds_a_mustache_leaks_its_rest() -> None:
    source = "{{!\n  The `{{> partial }}` syntax\n}}\nHello\n"  # as in the corpus's partials.prompt
    # exactly what Handlebars.js prints: the comment ends at its first '}}'
    assert render(source) == "` syntax\n}}\nHello\n"
    template = parse_handlebars(source, first_line=12)
    ((message, line),) = template.warnings
    assert line == 12
    assert "comment contains a '{{', so it ends at its first '}}' (line 13)" in message
    assert "up to the '}}' on line 14, is sent to the model as text" in message
    assert "write comments that contain mustaches as '{{!-- … --}}'" in message
    # the same text in a long comment is a comment
    fixed = source.replace("{{!", "{{!--").replace("\n}}", "\n--}}")
    assert render(fixed) == "Hello\n" and parse_handlebars(fixed).warnings == ()


@pytest.mark.parametrize(
    "source",
    [
        "{{! a plain comment }}\nHello }",
        "{{! see {{name }}\nHello",  # nothing leaks: no '}}' closes the comment's '{{'
    ],
)
def test_comments_that_leak_nothing_are_quiet(source: str) -> None:
    assert parse_handlebars(source).warnings == ()


def test_a_stray_brace_after_a_leak_is_still_an_error() -> None:
    err = error("{{! a {{b}} c }} d\n}}")
    assert err.line == 2 and "this '}}' on line 2 closes no '{{'" in err.message


# -- what the application provides: helpers and partials ---------------------------------------


def test_an_application_helper_renders_as_its_function_value() -> None:
    source = "{{#each xs}}\n{{add @index 1}}. {{this}}\n{{/each}}"
    assert render(source, {"xs": ["a", "b"]}) == ". a\n. b\n"  # no value: nothing
    assert render(source, {"xs": ["a", "b"]}, functions={"add": 7}) == "7. a\n7. b\n"
    # the function's value wherever it is called from, never the data's
    source = "{{add 1 2}}|{{#with o}}{{add 1}}{{/with}}|{{fmt when=o}}"
    context = {"o": {"add": "data"}}
    assert render(source, context, functions={"add": "A", "fmt": "F"}) == "A|A|F"


def test_a_subexpression_of_an_application_helper_is_its_value() -> None:
    source = "{{#if (add 1 2)}}yes{{else}}no{{/if}}"
    assert render(source) == "no"  # no value: undefined, so falsy
    assert render(source, functions={"add": "3"}) == "yes"
    assert render("{{json (now)}} {{json (lookup (pick) 'a')}}", functions={"now": [1]}) == ("[1] ")


def test_an_application_block_helper_renders_its_main_block_once() -> None:
    source = "{{#gt score 5}}\nhigh: {{score}}\n{{else}}\nlow\n{{/gt}}\n"
    assert render(source, {"score": 9}) == "high: 9\n"
    assert render(source, {"score": 1}, functions={"gt": "X"}) == "high: 1\n"  # not its value
    nested = "{{#outer a}}[{{#inner b}}{{x}}{{else}}-{{/inner}}]{{/outer}}"
    assert render(nested, {"x": "X"}) == "[X]"
    assert render("{{^never a}}shown{{/never}}") == "shown"
    # block parameters it would pass are unknown: nothing, never the data's
    assert render("{{#pairs m as |k v|}}{{k}}={{v}};{{/pairs}}", {"k": "data"}) == "=;"


def test_application_helpers_are_functions_not_variables() -> None:
    source = "\n".join(
        [
            "{{add a b}}",  # 1
            "{{#if (gt score 5)}}high{{/if}}",  # 2
            "{{#repeat n}}{{item}}{{else}}{{none}}{{/repeat}}",  # 3
            "{{add 1 2}} {{json x}} {{lookup t k}} {{log 'x'}}",  # 4
            "{{format-date d}}",  # 5
            "{{#outer p}}{{#inner q}}{{/inner}}{{/outer}}{{inner 1}}",  # 6
        ]
    )
    reads = read_variables(parse_handlebars(source))
    assert reads.names == {
        "a": 1,
        "b": 1,
        "score": 2,
        "n": 3,
        "item": 3,
        "none": 3,
        "x": 4,
        "t": 4,
        "k": 4,
        "d": 5,
        "p": 6,
        "q": 6,
    }
    # built-ins (if, json, lookup, log) are not functions; a name no manifest variable can
    # have is listed in a readable form
    assert reads.functions == {
        "add": 1,
        "gt": 2,
        "repeat": 3,
        "{{format-date}}": 5,
        "outer": 6,
        "inner": 6,
    }
    assert reads.block_functions == {"repeat", "outer"}  # inner is also called inline


def test_a_partial_the_project_does_not_hold_is_the_applications() -> None:
    source = "A\n{{> header}}\nB {{> footer year=2025}}\n  {{> common/sig}}\n"
    assert render(source) == "A\nB \n"
    functions = {"header": "H\n", "footer": "F", "{{> common/sig}}": "S\nT"}
    assert render(source, functions=functions) == "A\nH\nB F\n  S\n  T"
    partials = {"card": "{{> missing}} {{fmt user}}"}
    reads = read_variables(
        parse_handlebars(source + "{{> card}}\n{{> other who title=t}}\n"),
        partials=_loader(partials),
    )
    assert reads.functions == {
        "header": 2,
        "footer": 3,
        "{{> common/sig}}": 4,
        "missing": 5,  # on the line of the partial that uses it
        "fmt": 5,
        "other": 6,
    }
    assert reads.names == {"user": 5, "who": 6, "t": 6}


def test_a_role_block_renders_the_role_then_its_text_with_a_warning() -> None:
    source = (
        'Intro\n{{#role "system"}}\nBe brief.\n{{/role}}\n\n'
        '{{#role "user"}}\nHi {{name}}\n{{/role}}\n'
    )
    assert render(source, {"name": "Ann"}) == "Intro\n<role:system>Be brief.\n\n<role:user>Hi Ann\n"
    assert messages(source, {"name": "Ann"}) == [
        ("user", ["Intro\n"]),
        ("system", ["Be brief.\n\n"]),
        ("user", ["Hi Ann\n"]),
    ]
    template = parse_handlebars(source, first_line=10)
    assert [line for _, line in template.warnings] == [11, 15]
    message = template.warnings[0][0]
    assert "Dotprompt's runtime drops the text of a '{{#role \"system\"}}' block" in message
    assert "Write '{{role \"system\"}}' on its own line before the text instead" in message
    reads = read_variables(template)
    assert reads.warnings == template.warnings and reads.names == {"name": 16}
    assert reads.functions == {}


def test_warnings_in_a_partial_are_reported_where_it_is_included() -> None:
    partials = {"sys": '{{#role "system"}}\nBe brief.\n{{/role}}'}
    reads = read_variables(parse_handlebars("x\n{{> sys}}\n{{> sys}}"), partials=_loader(partials))
    ((message, line),) = reads.warnings
    assert line == 2
    assert message.startswith("in partial 'sys', line 1: Dotprompt's runtime drops the text")


# -- sandbox ------------------------------------------------------------------------------------


def test_private_and_python_names_render_nothing() -> None:
    source = (
        "{{__class__}}{{constructor}}{{x.__class__}}{{x.upper}}{{x._private}}"
        "{{lookup x '__class__'}}{{obj.secret}}{{fn}}|{{own.constructor}}"
    )

    class Secretive:
        secret = "leaked"

    context = {"x": "text", "obj": Secretive(), "fn": print, "own": {"constructor": "data"}}
    assert render(source, context) == "|data"


def test_loops_are_bounded() -> None:
    huge = [0] * (MAX_ITERATIONS + 1)
    err = error("\n{{#each huge}}{{this}}{{/each}}", {"huge": huge})
    assert "more than 1,000,000 iterations" in err.message
    assert err.line == 2


def test_output_is_bounded() -> None:
    context = {"a": list(range(40)), "big": "x" * 10_000}
    err = error("{{#each a}}{{#each ../a}}{{../../big}}{{/each}}{{/each}}", context)
    assert "rendered output is larger than" in err.message


def test_a_partial_that_includes_itself_stops() -> None:
    err = error("\n{{> self}}", partials={"self": "again {{> self}}"})
    assert f"partials nested more than {MAX_PARTIAL_DEPTH} deep" in err.message
    assert err.line == 2


def test_recursive_data_stops() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert "nested too deeply" in error("{{json a}}", {"a": loop}).message
    assert "nested too deeply" in error("{{a}}", {"a": loop}).message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    source = "{{#if a}}" * 200 + "{{/if}}" * 200
    assert "nested deeper than" in error(source).message


# -- placeholders (the renderer's capped variables) ---------------------------------------------


class Part:
    """Like render.py's ``_SlotPart``: any field or item is another part."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __str__(self) -> str:
        return f"<part {self.index}>"

    def __getitem__(self, key: object) -> Part:
        return Part(self.index)

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield Part(self.index)

    def __call__(self) -> Part:  # callable, like _SlotPart: still a value, never called
        return self


class Whole(str):
    """Like render.py's ``_SlotValue``: prints as itself, iterates and indexes into parts."""

    def __new__(cls, index: int) -> Whole:
        return super().__new__(cls, f"<whole {index}>")

    def __getitem__(self, key: object) -> Part:  # type: ignore[override]
        return Part(0)

    def __iter__(self):  # type: ignore[no-untyped-def,override]
        yield Part(0)


def test_placeholders_render_iterate_and_answer_lookups() -> None:
    context = {"docs": Whole(0)}
    assert render("{{docs}}", context) == "<whole 0>"
    source = "{{#each docs}}- {{title}} {{this.body}} {{@index}}\n{{/each}}{{docs.length}}"
    assert render(source, context) == "- <part 0> <part 0> 0\n<part 0>"
    assert render("{{#if docs}}yes{{/if}}{{#docs}}[{{.}}]{{/docs}}", context) == "yes[<part 0>]"
    assert render("{{json docs}}", context) == '"<whole 0>"'


# -- variables ----------------------------------------------------------------------------------


def test_variables_are_root_names_resolved_through_scopes() -> None:
    source = "\n".join(
        [
            "{{title}}",  # 1
            "{{#each items}}{{name}} {{../title2}} {{@root.footer}} {{@index}}{{/each}}",  # 2
            "{{#with user}}{{email}}{{else}}{{fallback}}{{/with}}",  # 3
            "{{#each rows as |row i|}}{{row.x}} {{i}}{{/each}}",  # 4
            "{{#if flag}}{{inside}}{{/if}}",  # 5
            '{{role "system"}}{{history}}{{json payload indent=2}}',  # 6
            "{{lookup table key}} {{this.explicit}} {{./dotted}}",  # 7
            "{{> p}} {{> q title='x'}} {{> r user}}",  # 8
            "{{title}} {{#with this}}{{same}}{{/with}} {{#items}}{{field}}{{/items}}",  # 9
        ]
    )
    partials = {
        "p": "{{signature}} {{#each xs}}{{y}}{{/each}}",
        "q": "{{title}} {{other}}",
        "r": "{{email}}",
    }
    reads = read_variables(parse_handlebars(source), partials=_loader(partials))
    assert reads.names == {
        "title": 1,
        "items": 2,
        "title2": 2,
        "footer": 2,
        "user": 3,
        "fallback": 3,
        "rows": 4,
        "flag": 5,
        "inside": 5,
        "payload": 6,
        "table": 7,
        "key": 7,
        "explicit": 7,
        "dotted": 7,
        "signature": 8,
        "xs": 8,
        "other": 8,
        "same": 9,
    }
    assert reads.whole_input_line is None


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("{{#with a}}{{#with b}}{{../x}}{{/with}}{{/with}}", {"a"}),  # ../x is a.x
        ("{{#with a}}{{#with this}}{{../x}}{{/with}}{{/with}}", {"a", "x"}),  # same context
        ("{{#each a}}{{#if y}}{{../x}}{{/if}}{{/each}}", {"a", "x"}),  # #if keeps the context
        ("{{#each a}}{{#with b}}{{../../x}}{{/with}}{{/each}}", {"a", "x"}),
    ],
)
def test_parent_scopes_follow_handlebars_depths(source: str, names: set[str]) -> None:
    assert set(read_variables(parse_handlebars(source)).names) == names


def test_printing_the_root_reads_every_input() -> None:
    reads = read_variables(parse_handlebars("a\n{{json this indent=2}}\n{{#each this}}{{/each}}"))
    assert reads.names == {} and reads.whole_input_line == 2
    assert read_variables(parse_handlebars("{{#with this}}{{a}}{{/with}}")).whole_input_line is None


def test_a_recursive_partial_is_read_once() -> None:
    partials = {"tree": "{{label}}{{#each children}}{{> tree}}{{/each}}"}
    reads = read_variables(parse_handlebars("{{> tree}}"), partials=_loader(partials))
    assert reads.names == {"label": 1, "children": 1}


# -- Mustache (Prompty's template: mustache) ----------------------------------------------------


def test_mustache_dialect() -> None:
    def mustache(source: str, context: dict[str, Any]) -> str:
        return render(source, context, dialect=Dialect.MUSTACHE, escape_html=True)

    # names are found up the context stack; {{x}} is HTML-escaped like chevron does
    assert (
        mustache(
            "{{#items}}{{name}}/{{title}} {{/items}}", {"items": [{"name": "a"}], "title": "T"}
        )
        == "a/T "
    )
    assert (
        mustache("{{x}} {{{x}}} {{&x}}", {"x": "<a & 'b'>"})
        == "&lt;a &amp; 'b'&gt; <a & 'b'> <a & 'b'>"
    )
    assert (
        mustache("{{^none}}empty{{/none}}{{#zero}}z{{/zero}}", {"none": [], "zero": 0}) == "empty"
    )
    assert mustache("{{t}} {{f}}", {"t": True, "f": 1.5}) == "True 1.5"  # chevron's str()
    with pytest.raises(HandlebarsError, match="Mustache has no helpers"):
        parse_handlebars("{{#if x}}{{/if}}", dialect=Dialect.MUSTACHE)


def test_plain_handlebars_has_no_dotprompt_helpers() -> None:
    with pytest.raises(HandlebarsError, match="unknown helper 'json'"):
        parse_handlebars("{{json x}}", helpers=BUILTIN_HELPERS, app_helpers=False)
    with pytest.raises(HandlebarsError, match="unknown helper 'role'"):
        parse_handlebars('{{#role "x"}}y{{/role}}', helpers=BUILTIN_HELPERS, app_helpers=False)
    # without the helper, {{role}} is just a variable
    assert render("{{role}}", {"role": "r"}, helpers=BUILTIN_HELPERS) == "r"
