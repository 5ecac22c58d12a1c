"""Every export format loads unchanged in Hugging Face `datasets` (JSON and Parquet): the columns TRL's trainers
read, the values as written, and a chat template renders the loaded rows whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deepsearch.traces.chat_template import TemplateChecker, load_chat_template
from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.synthetic import record_synthetic_run

from tests.test_traces_chat_template import FIXTURES

datasets = pytest.importorskip("datasets")
pytest.importorskip("pyarrow")

COLUMNS = {
    "messages": {"id", "messages", "tools", "meta"},
    "sharegpt": {"id", "system", "conversations", "tools", "meta"},
    "roles": {"role", "prompt", "completion", "parsed", "meta"},
    "dpo": {"role", "prompt", "chosen", "rejected", "meta"},
}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    for seed in [*range(24), *range(97, 97 + 12)]:  # seeds k and 97 + k ask the same question: sibling runs
        record_synthetic_run(d, seed)
    return d


def without_none(node):
    """Arrow gives every struct all the keys its column has (None where a record had none)."""
    if isinstance(node, dict):
        return {k: without_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [without_none(v) for v in node]
    return node


def exported(runs_dir, tmp_path, fmt):
    target = tmp_path / ("roles" if fmt == "roles" else f"{fmt}.jsonl")
    summary = export(runs_dir, target, ExportOptions(format=fmt, parquet=True))
    jsonl = [p for p in summary.files if p.endswith(".jsonl")]
    assert jsonl and all(summary.files[p] > 0 for p in jsonl)
    return jsonl


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "roles", "dpo"])
def test_every_format_round_trips_through_datasets_json_and_parquet(runs_dir, tmp_path, fmt):
    for path in exported(runs_dir, tmp_path, fmt):
        written = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        for kind, files in (("json", path), ("parquet", path.removesuffix(".jsonl") + ".parquet")):
            loaded = datasets.load_dataset(kind, data_files=files, split="train")
            assert set(loaded.column_names) == COLUMNS[fmt], (kind, loaded.column_names)
            assert len(loaded) == len(written)
            assert [without_none(row) for row in loaded] == [without_none(r) for r in written]


def test_dpo_holds_sibling_runs_that_differ_in_outcome(runs_dir, tmp_path):
    (path,) = exported(runs_dir, tmp_path, "dpo")
    kinds = [json.loads(line)["meta"]["kind"] for line in Path(path).read_text(encoding="utf-8").splitlines()]
    assert {"sibling", "parse_retry", "revision"} <= set(kinds)


def test_loaded_rows_render_whole_with_a_tool_capable_template(runs_dir, tmp_path):
    pytest.importorskip("transformers")
    checker = TemplateChecker(load_chat_template(FIXTURES / "chatml_tools.jinja"))
    (path,) = exported(runs_dir, tmp_path, "messages")
    for kind, files in (("json", path), ("parquet", path.removesuffix(".jsonl") + ".parquet")):
        for row in datasets.load_dataset(kind, data_files=files, split="train"):
            check = checker.add(row)  # the row exactly as a trainer gets it: None-valued keys and all
            assert check.ok, (kind, check.missing)
