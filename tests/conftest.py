"""Test isolation: no user config or data dirs, no traffic except loopback, a fake OpenAI server fixture."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex


def _loopback_only(address) -> None:
    if isinstance(address, tuple):
        host = address[0]
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise OSError(f"test tried to reach {host}: only loopback traffic is allowed in tests")
        except ValueError:
            raise OSError(f"test tried to reach {host}: only loopback traffic is allowed in tests") from None


def _guarded_connect(self, address):
    _loopback_only(address)
    return _REAL_CONNECT(self, address)


def _guarded_connect_ex(self, address):
    _loopback_only(address)
    return _REAL_CONNECT_EX(self, address)


@pytest.fixture(autouse=True, scope="session")
def _offline_and_isolated(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("DEEPSEARCH_")]:
        del os.environ[key]
    os.environ.update(
        {
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "DEEPSEARCH_TRACES_DIR": str(home / "traces"),
            "TIKTOKEN_CACHE_DIR": str(home / "tiktoken"),
        }
    )
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield home
    socket.socket.connect, socket.socket.connect_ex = _REAL_CONNECT, _REAL_CONNECT_EX
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fake_server():
    """A default fake OpenAI-compatible server (vLLM-flavoured); tests may tweak its attributes."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `deepsearch` CLI in a subprocess, isolated like the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSEARCH_")}
    env.update(
        {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "DEEPSEARCH_TRACES_DIR": str(tmp_path / "traces"),
            "NO_COLOR": "1",
            "COLUMNS": "160",
        }
    )
    return env
