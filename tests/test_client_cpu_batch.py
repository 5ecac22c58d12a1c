"""The client's CPU per question in a batch: the judge's logprobs, the collector during a batch, the bench's warm-up."""

import asyncio
import gc
import json
import re

from deepsearch.agent.batch import execute
from deepsearch.agent.batch.execute import BatchJob, batch_gc
from deepsearch.agent.batch.inputs import BatchQuestion
from deepsearch.agent.config import LLMSettings

from bench import batch_throughput
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder, settings_for


def test_judge_asks_for_belief_top_logprobs_and_its_belief_keeps_an_entropy(tmp_path):
    """The judge's reply carries top_logprobs alternatives for every generated token; belief reads only the chosen
    tokens, so the judge asks for llm.belief_top_logprobs (2), not the 5 that yes/no reranking needs."""
    assert LLMSettings().belief_top_logprobs == 2 and LLMSettings().top_logprobs == 5
    with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as server:
        settings = settings_for(tmp_path, indexes=[str(build_sample_index(tmp_path))], web=False)
        settings.llm.base_url, settings.llm.model, settings.llm.server_kind = [server.base_url], "fake-model", "vllm"
        job = BatchJob(settings, tmp_path / "out.jsonl", concurrency=1, quiet=True)
        rows = asyncio.run(job.run([BatchQuestion(id="q0", question="Who portrayed Corliss Archer?")]))
        logprob_requests = [r for r in server.requests if r.get("logprobs")]
    assert rows and not rows[0]["error"]
    assert logprob_requests and all(r["top_logprobs"] == 2 for r in logprob_requests)
    text = "".join(p.read_text() for p in (tmp_path / "traces").rglob("*.jsonl"))
    summaries = [json.loads(m) for m in re.findall(r'"logprobs":(\{"tokens"[^}]*\})', text)]
    assert summaries and all(s["mean_entropy"] > 0 for s in summaries)  # two alternatives: still an entropy


def test_batch_gc_freezes_what_exists_and_raises_generation_0_only_during_the_batch():
    before = gc.get_threshold()
    with batch_gc():
        assert gc.get_threshold()[0] >= execute.BATCH_GC_GEN0 and gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_bench_measures_after_an_untimed_warm_up(monkeypatch, tmp_path):
    calls = []

    class Server:
        base_url = "http://x"

        def __init__(self, *a, **kw):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def measure(tmp, server, index, concurrency, closed_book, n, latency_s):
        calls.append((tmp.name, concurrency, closed_book, n))
        return {"concurrency": concurrency}

    monkeypatch.setattr(batch_throughput, "FakeOpenAIServerProcess", Server)
    monkeypatch.setattr(batch_throughput, "build_sample_index", lambda tmp: tmp / "index")
    monkeypatch.setattr(batch_throughput, "_measure", measure)
    figures = batch_throughput.run(concurrency=(32,), memory_questions=0)
    assert calls[:2] == [("warm-up", 2, False, 2), ("warm-up", 2, True, 2)]
    assert set(figures["throughput"]) == {"research@32", "closed_book@32"} and len(calls) == 4
