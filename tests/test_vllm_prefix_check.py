"""bench/vllm_prefix_check.py offline: Prometheus parsing of a real vLLM /metrics excerpt, the block arithmetic of
vLLM's prefix cache, and one whole run against the fake OpenAI server with /metrics served beside it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.graph_overhead import prefix_reuse, prompts_of_trace
from bench.vllm_prefix_check import (
    LocalChatTokenizer,
    cache_config,
    counters,
    delta,
    load_questions,
    messages_of_trace,
    parse_metrics,
    run,
    server_root,
    table,
    token_reuse,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

FIXTURE = Path(__file__).parent / "fixtures" / "vllm_metrics.txt"


def test_parses_a_real_vllm_metrics_excerpt():
    samples = parse_metrics(FIXTURE.read_text())
    c = counters(FIXTURE.read_text())
    assert c["hits"] == sum(v for _, v in samples["vllm:prefix_cache_hits_total"])
    assert c["queries"] == sum(v for _, v in samples["vllm:prefix_cache_queries_total"])
    assert 0 < c["hits"] < c["queries"] and c["prompt_tokens"] == c["queries"]  # no preemption: each prompt once
    assert c["requests"] == 12 and c["cached"] == c["hits"] == 1536  # no KV connector: all hits are local
    info = cache_config(samples)
    assert info["block_size"] == "128" and info["enable_prefix_caching"] == "True"
    labels = samples["vllm:prefix_cache_hits_total"][0][0]
    assert labels["model_name"] == "smollm2-135m"


def test_parsing_tolerates_comments_created_samples_and_missing_metrics():
    text = '# HELP x y\n# TYPE vllm:prefix_cache_hits counter\nvllm:prefix_cache_hits_total{engine="0"} 5.0\n'
    text += 'vllm:prefix_cache_hits_total{engine="1"} 7.0\nvllm:prefix_cache_hits_created{engine="0"} 1.7e9\n'
    c = counters(text)
    assert c["hits"] == 12.0 and c["queries"] is None
    assert delta({"hits": 2.0, "queries": None}, {"hits": 12.0, "queries": None}) == {"hits": 10.0, "queries": None}
    assert cache_config(parse_metrics(text)) == {}


def test_token_reuse_counts_longest_prefix_with_any_earlier_prompt():
    prompts = [[1, 2, 3, 4, 5], [1, 2, 3, 9], [7, 8], [1, 2, 3, 4, 5, 6]]
    assert token_reuse(prompts) == (0 + 3 + 0 + 5, 17)
    # as vLLM counts: whole blocks only (3 → 2, 5 → 4 with blocks of 2)
    assert token_reuse(prompts, block_size=2) == (0 + 2 + 0 + 4, 17)
    # a prompt equal to an earlier one never hits its last token: 5 tokens → at most 4, in blocks of 4 → 4
    assert token_reuse([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]], block_size=4) == (4, 10)
    assert token_reuse([[1, 2, 3, 4], [1, 2, 3, 4]], block_size=4) == (0, 8)
    # earlier questions' prompts carried in (a cache that was not reset)
    seen = [[7, 8, 9]]
    assert token_reuse([[7, 8, 1]], seen=seen) == (2, 3) and len(seen) == 2


def test_server_root_and_questions(tmp_path):
    assert server_root("http://h:8000/v1/") == "http://h:8000" and server_root("http://h:8000") == "http://h:8000"
    assert len(load_questions(None, 3)) == 3
    f = tmp_path / "q.txt"
    f.write_text('Who?\n\n{"question": "What?"}\n')
    assert load_questions(f, 3) == ["Who?", "What?"]


def _tiny_tokenizer(directory: Path) -> Path:
    """A small trained BPE with a ChatML template, in the files a model folder has (no transformers needed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    corpus = [line for line in (Path(__file__).parent / "fixtures" / "sample_corpus" / "hotpot_sample.jsonl").open()]
    tok.train_from_iterator(corpus, trainer)
    directory.mkdir()
    tok.save(str(directory / "tokenizer.json"))
    config = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    (directory / "chat_template.jinja").write_text(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
        "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    return directory


def test_local_chat_tokenizer_renders_the_template(tmp_path):
    tok = LocalChatTokenizer(_tiny_tokenizer(tmp_path / "tok"))
    a = tok.encode([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who was Shirley Temple?"}])
    b = tok.encode([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who was Janet Waldo?"}])
    assert a[0] == b[0] == 1  # <|im_start|> is one special token
    assert 0 < token_reuse([a, b])[0] < len(b)


class _Metrics:
    """A /metrics route beside the fake server: each scrape adds 100 queried and 30 hit tokens."""

    def __init__(self):
        self.scrapes = 0
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                metrics.scrapes += 1
                n = metrics.scrapes
                body = (
                    "# TYPE vllm:prefix_cache_queries counter\n"
                    f'vllm:prefix_cache_queries_total{{engine="0",model_name="m"}} {100.0 * n}\n'
                    f'vllm:prefix_cache_hits_total{{engine="0",model_name="m"}} {30.0 * n}\n'
                    f'vllm:prompt_tokens_total{{engine="0",model_name="m"}} {100.0 * n}\n'
                    'vllm:cache_config_info{block_size="4",enable_prefix_caching="True",engine="0"} 1.0\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_run_against_the_fake_server(tmp_path):
    index = build_sample_index(tmp_path)
    metrics = _Metrics()
    questions = load_questions(None, 2)
    try:
        with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as server:
            figures = run(
                server.base_url, str(index), questions, metrics_url=metrics.url,
                tokenizer_dir=_tiny_tokenizer(tmp_path / "tok"), traces_dir=tmp_path / "traces", log=lambda s: None,
            )  # fmt: skip
    finally:
        metrics.close()
    assert metrics.scrapes == 1 + 2 * len(questions)
    assert figures["block_size"] == 4
    rows = figures["questions"]
    assert [r["question"] for r in rows] == questions
    notes = " ".join(figures["notes"])
    assert "/tokenize unavailable" in notes and "reset_prefix_cache" in notes  # the fake has neither
    traces = sorted((tmp_path / "traces" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert len(traces) == len(questions)
    carried: list = []
    for row, trace in zip(rows, traces, strict=True):
        assert row["vllm_hits"] == 30 and row["vllm_queries"] == 100 and row["vllm_hit_share"] == 0.3
        assert not row["cache_reset"]
        assert row["llm_calls"] == len(messages_of_trace(trace)) > 1
        assert row["ours_tiktoken"] == prefix_reuse(prompts_of_trace(trace)) > 0
        (name,) = row["served"]
        e = row["served"][name]
        assert name == "local (tokenizers+jinja2)" or name == "local (transformers)"
        assert 0 < e["share"] < 1 and e["reused"] <= e["tokens"]
        # not reset: the block-rounded figure also counts hits on the earlier question's prompts
        ids = [LocalChatTokenizer(tmp_path / "tok").encode(m) for m in messages_of_trace(trace)]
        assert (e["reused"], e["tokens"]) == token_reuse(ids)
        assert e["block_reused"] == token_reuse(ids, block_size=4, seen=list(carried))[0]
        assert e["block_reused"] % 4 == 0
        within = token_reuse(ids, block_size=4)[0]
        # a second question's first call also hits the first question's prompts (the shared role prompt)
        assert e["block_reused"] > within if carried else e["block_reused"] == within
        carried.extend(ids)
    total = figures["total"]
    assert total["vllm_hits"] == 60 and total["vllm_queries"] == 200 and total["vllm_hit_share"] == 0.3
    assert total["served"][name]["tokens"] == sum(r["served"][name]["tokens"] for r in rows)
    printed = table(figures)
    assert "30.0 %" in printed and "blocks of 4" in printed
