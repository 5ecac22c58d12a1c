"""The recorder's per-run costs made once per batch (header redaction, the redactor, prompt versions), still safe."""

import json

from deepsearch.agent.config import load_settings
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.traces.redact import Redactor
from deepsearch.traces.session import prompt_versions, start_run_recording

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx"


def _settings(tmp_path, **overrides):
    return load_settings(overrides={"traces.dir": str(tmp_path / "traces"), **overrides}).settings


def _header(recorder) -> dict:
    return json.loads(recorder.path.read_text().splitlines()[0])["header"]


def test_redactor_is_shared_for_the_same_inputs_and_new_when_the_environment_gains_a_secret(tmp_path):
    settings = _settings(tmp_path)
    env = {"HOME": "/root"}
    first = Redactor.from_settings(settings, env)
    assert Redactor.from_settings(settings, dict(env)) is first
    fresh = Redactor.from_settings(settings, {**env, "MY_API_KEY": SECRET})
    assert fresh is not first and fresh.text(f"key {SECRET}") == "key ***"


def test_header_config_is_redacted_on_every_run_including_those_served_from_the_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSEARCH_TEST_TOKEN", SECRET)
    settings = _settings(tmp_path, **{"llm.api_key": SECRET, "llm.base_url": [f"http://u:{SECRET}@h:1/v1"]})
    backend = FakeBackend(lambda r: "x")
    headers = []
    for _ in range(3):
        with start_run_recording(settings, f"q {SECRET}?", mode="closed_book", backend=backend) as recorder:
            recorder.finish("a", termination="answered")
        headers.append(_header(recorder))
        text = recorder.path.read_text()
        assert SECRET not in text and "***" in text
    assert headers[0]["config"] == headers[2]["config"] and headers[0]["question"] == "q ***?"


def test_clean_static_is_memoised_and_not_walked_again():
    redactor = Redactor([SECRET])
    config = {"llm": {"api_key": "x" * 10, "note": f"uses {SECRET}"}}
    once = redactor.clean_static(config)
    assert once == {"llm": {"api_key": "***", "note": "uses ***"}}
    assert redactor.clean_static(json.loads(json.dumps(config))) is once  # same JSON, same redacted copy
    assert redactor.redact({"header": {"config": once}})["header"]["config"] is once


def test_prompt_versions_are_kept_and_handed_out_as_copies():
    first = prompt_versions()
    first["planner"] = "changed by a caller"
    again = prompt_versions()
    assert again != first and all(len(v) == 12 for v in again.values())


def test_long_strings_are_masked_from_the_memo_the_same_way_and_page_text_apart():
    redactor = Redactor([SECRET])
    prose = "filler " * 60
    ours = f"{prose} password: hunter22 and {SECRET}"
    for _ in range(2):
        assert redactor.redact({"content": ours}) == {"content": f"{prose} password: *** and ***"}
        # The same text as page text keeps the context pattern (a page may explain passwords), not the secret.
        assert redactor.redact({"hash": "h", "text": ours})["text"] == f"{prose} password: hunter22 and ***"
    assert len(redactor._texts) == 2
