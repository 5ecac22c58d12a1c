"""End to end with the real embedded model (SmolLM2-135M via llama.cpp) over the sample corpus.

The model is tiny: answers are often wrong. What must hold is the contract: every run ends with a
termination reason, a complete trajectory, and citations that map to stored evidence.
"""

import json

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.llm.llamacpp_backend import LlamaCppBackend, packaged_model_path
from deepsearch.traces.reader import find_log, load_trajectory

from tests.graph_support import SAMPLE, build_sample_index, local_tools, settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        packaged_model_path() is None, reason='embedded model not installed (pip install -e ".[embedded]")'
    ),
]
# One question: the contract is the same for each, and a run of the real model costs minutes on 2 cores.
QUESTIONS = [json.loads(line) for line in (SAMPLE / "questions.jsonl").open()][:1]
TERMINATIONS = {"answered", "plateau", "no_new_results", "loop_detected", "abstained", "budget_rounds"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("embedded"))


@pytest.mark.parametrize("item", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
async def test_embedded_research_run_terminates_with_a_trace(tmp_path, index_dir, item):
    settings = settings_for(tmp_path, max_subgoals=2, max_rounds=1, detect_ambiguity=False)
    # Keep CI time bounded: fewer kept passages and no per-passage evidence calls (the rerank tests cover those).
    settings.rerank.max_keep = 3
    settings.rerank.evidence = False
    settings.rerank.max_tokens = 256
    settings.llm.n_ctx = 4096
    backend = LlamaCppBackend(settings.llm)
    tools = local_tools(index_dir, settings)
    result = await aresearch(item["question"], settings=settings, backend=backend, tools=tools, gold=item["answers"])
    assert result.termination in TERMINATIONS or result.termination.startswith("budget_"), result.termination
    assert result.usage.llm_calls >= 3 and result.usage.searches >= 1 and result.subgoals
    trajectory = load_trajectory(find_log(settings.traces.dir, result.trace_id))
    assert trajectory.status == "complete" and trajectory.final.termination == result.termination
    assert trajectory.final.scores is not None  # scored against the gold answer
    kept = {e for s in result.subgoals for e in s.get("evidence_ids") or []}
    assert all(c.evidence_id in kept for c in result.citations)
