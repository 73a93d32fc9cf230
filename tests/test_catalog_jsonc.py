"""The JSON-with-comments reader of definition files (SPEC §3.1)."""

from __future__ import annotations

import pytest

from agentgw.catalog import jsonc


def test_three_comment_styles_outside_strings() -> None:
    text = """
    // line comment
    {
      # hash comment
      "a": 1, /* block
      comment */ "b": "keeps // and # and /* inside strings */",
      "url": "http://example.com/#frag"
    }
    """
    assert jsonc.loads(text) == {
        "a": 1,
        "b": "keeps // and # and /* inside strings */",
        "url": "http://example.com/#frag",
    }


def test_triple_quoted_system_prompt_keeps_indentation_and_drops_one_newline_each_side() -> None:
    text = '{"systemPrompt": """\r\n  line one\r\n    "quoted" \\ back\r\n\r\n"""}'
    assert jsonc.loads(text) == {"systemPrompt": '  line one\n    "quoted" \\ back\n'}


def test_triple_quote_allowed_on_any_key_ending_in_system_prompt_case_insensitive() -> None:
    text = '{"planSystemPrompt": """a""", "SYSTEMPROMPT": """b""", "x_1_systemprompt": """c"""}'
    assert jsonc.loads(text) == {"planSystemPrompt": "a", "SYSTEMPROMPT": "b", "x_1_systemprompt": "c"}


def test_triple_quote_elsewhere_is_an_error_naming_the_line() -> None:
    text = '{\n  "name": "x",\n  "description": """\nnot allowed\n"""\n}'
    with pytest.raises(jsonc.JsoncError) as info:
        jsonc.loads(text)
    assert info.value.line == 3
    assert "description" in str(info.value)
    assert "systemPrompt" in str(info.value)


def test_unterminated_triple_quote_names_key_and_line() -> None:
    text = '{\n  "systemPrompt": """\nnever closed\n}'
    with pytest.raises(jsonc.JsoncError) as info:
        jsonc.loads(text)
    assert info.value.key == "systemPrompt"
    assert info.value.line == 2
    assert "unterminated" in str(info.value)


def test_line_numbers_survive_comments_and_multiline_strings() -> None:
    text = '{\n  /* one\n  two */\n  "systemPrompt": """\nA\nB\n""",\n  "x": oops\n}'
    with pytest.raises(jsonc.JsoncError) as info:
        jsonc.loads(text)
    assert info.value.line == 8
    assert info.value.column == 8


def test_unterminated_block_comment_is_an_error() -> None:
    with pytest.raises(jsonc.JsoncError, match="unterminated /\\* comment"):
        jsonc.loads('{"a": 1} /* open')


def test_plain_json_passes_through_unchanged() -> None:
    assert jsonc.to_json('{"a": [1, 2]}') == '{"a": [1, 2]}'
