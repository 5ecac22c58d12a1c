"""The configured secrets reach every surface: the CLI's error line, batch rows and exports."""

from __future__ import annotations

import pytest
from deepsearch.agent import cli
from deepsearch.agent.batch.output import ExistingOutput, OutputWriter
from deepsearch.agent.batch.rows import BatchRow
from deepsearch.agent.errors import UsageError
from deepsearch.agent.result import RunUsage
from deepsearch.traces.redact import Redactor

from tests.graph_support import settings_for

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def test_the_cli_error_line_never_echoes_a_credential(monkeypatch, capsys):
    def boom():
        raise UsageError(f"cannot use the token {TOKEN} for this server")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and err.count("\n") == 1
    assert TOKEN not in err and "cannot use the token" in err


def test_batch_rows_mask_the_configured_patterns(tmp_path):
    settings = settings_for(tmp_path)
    settings.traces.redact_patterns = [r"CASE-\d{6}"]
    path = tmp_path / "answers.jsonl"
    writer = OutputWriter.open(path, ExistingOutput(), redactor=Redactor.from_settings(settings))
    writer.append(BatchRow(id="q1", question="What is CASE-123456?", answer="It is CASE-123456.", mode="research",
                           termination="answered", usage=RunUsage(), backend="fake", model="m"))  # fmt: skip
    writer.close()
    text = path.read_text()
    assert "CASE-123456" not in text and '"id": "q1"' in text
