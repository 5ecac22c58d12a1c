from pathlib import Path

import pytest
from deepsearch.agent.config import env_name, leaf_keys, load_settings, redacted_dump
from deepsearch.agent.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_default_file_env_flag(tmp_path):
    cfg = write(tmp_path / "c.toml", '[llm]\nmodel = "from-file"\ntimeout_s = 5\nmax_tokens = 100\n')
    env = {"DEEPSEARCH_LLM_TIMEOUT_S": "7", "DEEPSEARCH_LLM_MAX_TOKENS": "200"}
    loaded = load_settings(cfg, {"llm.max_tokens": 300, "llm.model": None}, environ=env)
    s = loaded.settings.llm
    assert (s.model, s.timeout_s, s.max_tokens, s.max_retries) == ("from-file", 7.0, 300, 3)
    assert loaded.sources["llm.model"] == f"file {cfg}"
    assert loaded.sources["llm.timeout_s"] == "env DEEPSEARCH_LLM_TIMEOUT_S"
    assert loaded.sources["llm.max_tokens"] == "flag"
    assert loaded.sources["llm.max_retries"] == "default"


def test_base_url_list_from_env_and_backend_auto(tmp_path):
    env = {"DEEPSEARCH_LLM_BASE_URL": "http://127.0.0.1:1/v1, http://127.0.0.1:2/v1"}
    s = load_settings(None, environ=env).settings.llm
    assert s.base_url == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    assert s.resolved_backend() == "openai"
    assert load_settings(None, environ={}).settings.llm.resolved_backend() == "llamacpp"


def test_default_config_file_is_read_from_user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "deepsearch").mkdir()
    write(tmp_path / "deepsearch" / "config.toml", "[llm]\nconcurrency = 3\n")
    loaded = load_settings(None, environ={})
    assert loaded.settings.llm.concurrency == 3
    assert loaded.config_file == tmp_path / "deepsearch" / "config.toml"


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[llm]\ntimeout_s = 'soon'\n", {}, "llm.timeout_s = 'soon' (from file"),
        ("", {"DEEPSEARCH_LLM_CONCURRENCY": "many"}, "llm.concurrency = 'many' (from env DEEPSEARCH_LLM_CONCURRENCY)"),
        ("[llm]\nbogus = 1\n", {}, "unknown config key 'llm.bogus'"),
        ("[llm\n", {}, "is not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_source(tmp_path, toml, env, needle):
    cfg = write(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, environ=env)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_value_names_expected_type(tmp_path):
    with pytest.raises(ConfigError, match="expected int"):
        load_settings(None, environ={"DEEPSEARCH_LLM_MAX_TOKENS": "lots"})


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_secret_never_echoed(tmp_path):
    env = {"DEEPSEARCH_LLM_API_KEY": "sk-secret-123"}
    s = load_settings(None, environ=env).settings
    assert s.llm.api_key.get_secret_value() == "sk-secret-123"
    assert "sk-secret-123" not in repr(s) and "sk-secret-123" not in str(redacted_dump(s))
    with pytest.raises(ConfigError) as e:
        load_settings(None, environ={**env, "DEEPSEARCH_LLM_API_KEY": ""} | {"DEEPSEARCH_LLM_TEMPERATURE": "x"})
    assert "sk-secret" not in str(e.value)


def test_every_leaf_has_an_env_name():
    keys = leaf_keys()
    assert "llm.base_url" in keys and "traces.dir" in keys
    assert env_name("llm.base_url") == "DEEPSEARCH_LLM_BASE_URL"
    assert env_name("traces.dir") == "DEEPSEARCH_TRACES_DIR"
