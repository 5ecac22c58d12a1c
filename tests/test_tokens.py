import os
import socket
import subprocess
import sys

from deepsearch.agent.tokens import count_tokens, ensure_offline_encodings, truncate_to_tokens


def test_counts_offline_with_an_empty_cache(tmp_path, monkeypatch):
    # The test session already refuses non-loopback connections; also refuse DNS outright.
    def no_dns(*args, **kwargs):
        raise OSError("DNS disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    cache = ensure_offline_encodings(tmp_path / "tk")
    assert len(list(cache.iterdir())) == 2
    assert count_tokens("hello world") == 2
    assert count_tokens("hello world", "cl100k_base") == 2


def test_truncate_to_tokens():
    text = "one two three four five six"
    assert count_tokens(truncate_to_tokens(text, 3)) == 3
    assert truncate_to_tokens(text, 100) == text


def test_fresh_process_needs_no_network(tmp_path):
    # A separate interpreter with no cache and a proxy that goes nowhere: the first call must not download.
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "fresh"), "HTTPS_PROXY": "http://127.0.0.1:9"}
    code = "from deepsearch.agent.tokens import count_tokens; print(count_tokens('offline tokens'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
