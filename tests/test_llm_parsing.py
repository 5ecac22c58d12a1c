import pytest
from deepsearch.agent.llm.parsing import JSONParseError, extract_json_object, parse_json_lenient, split_think


@pytest.mark.parametrize(
    ("raw", "content", "reasoning"),
    [
        ("<think>hmm</think>Paris", "Paris", "hmm"),
        ("<THINK>a</THINK> x <think>b</think> y", "x  y", "a\n\nb"),
        ("step one\nstep two</think>\nParis", "Paris", "step one\nstep two"),  # template opened the block
        ("Paris<think>but maybe", "Paris", "but maybe"),  # cut off while reasoning
        ("just text", "just text", None),
    ],
)
def test_split_think(raw, content, reasoning):
    assert split_think(raw) == (content, reasoning)


def test_extract_json_object_is_string_aware():
    text = 'Sure! ```json\n{"a": "x } y", "b": {"c": [1, 2]}}\n``` trailing {"other": 1}'
    assert extract_json_object(text) == '{"a": "x } y", "b": {"c": [1, 2]}}'


def test_parse_repairs_small_damage():
    value, repaired = parse_json_lenient('<think>{"no": 1}</think> {"answer": "Paris",}')
    assert value == {"answer": "Paris"} and repaired
    value, repaired = parse_json_lenient('{"answer": "Par')  # truncated at max_tokens
    assert value == {"answer": "Par"} and repaired


def test_parse_rejects_prose():
    with pytest.raises(JSONParseError, match="no JSON object"):
        parse_json_lenient("The answer is Paris.")
