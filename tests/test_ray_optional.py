"""Ray is optional: a local batch never imports it, and `--ray` without it installed says how to get it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fakes.openai_server import FakeOpenAIServer

LOCAL_BATCH = """
import sys
from deepsearch.agent.cli import main
sys.argv = ["deepsearch", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("ray imported" if any(m == "ray" or m.startswith("ray.") for m in sys.modules) else "no ray")
"""


def test_a_local_batch_never_imports_ray(tmp_path, cli_env):
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "a", "question": "Capital of France?", "answer": "Paris"}\n')
    with FakeOpenAIServer(responder=lambda body: json.dumps({"answer": "Paris"})) as server:
        done = subprocess.run(
            [sys.executable, "-c", LOCAL_BATCH, "batch", str(questions), "-o", str(tmp_path / "out.jsonl"),
             "--closed-book", "--llm-base-url", server.base_url, "-q"],
            env=cli_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("no ray")


def test_ray_flag_without_ray_installed_is_one_line(tmp_path, capsys, monkeypatch):
    from deepsearch.agent.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "a", "question": "Capital of France?"}\n')
    argv = ["deepsearch", "batch", str(questions), "-o", str(tmp_path / "out.jsonl"), "--ray", "local",
            "--closed-book", "--llm-base-url", "http://127.0.0.1:9/v1"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    try:
        main()
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err == "deepsearch: error: --ray needs Ray: pip install 'deepsearch[ray]'\n"


def test_ray_workers_without_ray_is_refused(tmp_path, capsys, monkeypatch):
    from deepsearch.agent.cli import main

    questions = tmp_path / "in.jsonl"
    questions.write_text('{"id": "a", "question": "Capital of France?"}\n')
    for command in (["batch", str(questions), "-o", str(tmp_path / "out.jsonl")], ["eval", str(questions)]):
        monkeypatch.setattr(sys, "argv", ["deepsearch", *command, "--ray-workers", "2", "--closed-book"])
        try:
            main()
        except SystemExit as e:
            code = e.code
        assert code == 2 and capsys.readouterr().err == "deepsearch: error: --ray-workers needs --ray ADDRESS\n"
