"""Check our prompt-prefix reuse measure against a real vLLM server's own prefix-cache counters.

For each question (sequentially) the research agent runs against the server; `/metrics` (Prometheus, at the server
root) is scraped before and after, and the prefix cache is reset in between when the server allows it
(`POST /reset_prefix_cache`, only with VLLM_SERVER_DEV_MODE=1). Per question and in total it reports:

- vLLM's hit share: delta `vllm:prefix_cache_hits` / delta `vllm:prefix_cache_queries` (both counted in prompt
  tokens; hits come in whole KV blocks of `block_size` tokens and never cover a prompt's last token);
- ours in tiktoken tokens: `prefix_reuse(prompts_of_trace(...))` of bench/graph_overhead.py ("<role>content" text);
- ours in the served model's tokens: each llm_call's messages through the model's chat template (the server's
  `/tokenize`, or a local tokenizer folder), longest common token prefix with any earlier prompt of the run;
- the same rounded the way vLLM counts (whole blocks, capped at len-1): what the counters should read.

    python -m bench.vllm_prefix_check --base-url http://127.0.0.1:8011/v1 --index deepsearch-sample \
        [--questions FILE] [--model NAME] [--tokenizer DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.graph_overhead import prefix_reuse, prompts_of_trace

SAMPLE_QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample_corpus" / "questions.jsonl"
# vLLM V1 (vllm/v1/metrics/loggers.py): Counters, so prometheus_client exposes them with a `_total` suffix.
HITS = ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits")
QUERIES = ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries")
PROMPT_TOKENS = ("vllm:prompt_tokens_total", "vllm:prompt_tokens")
REQUESTS = ("vllm:request_success_total", "vllm:request_success")
CACHED = ("vllm:prompt_tokens_cached_total",)  # local + external (KV connector) hits
CACHE_INFO = "vllm:cache_config_info"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# --- Prometheus text ---------------------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text exposition → {metric name: [(labels, value), ...]} (comments skipped)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or line.startswith("#"):
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((dict(_LABEL.findall(m.group(3) or "")), value))
    return out


def metric(samples: dict[str, list[tuple[dict[str, str], float]]], names: Sequence[str]) -> float | None:
    """The first of `names` present, summed over its label sets (engines, models); None when absent."""
    for name in names:
        if name in samples:
            return sum(v for _, v in samples[name])
    return None


def cache_config(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, str]:
    """The labels of vllm:cache_config_info (block_size, enable_prefix_caching, …); {} when absent."""
    rows = samples.get(CACHE_INFO) or []
    return dict(rows[0][0]) if rows else {}


def hit_granularity(info: dict[str, str]) -> int | None:
    """Tokens per prefix-cache hit step: `cache_hit_alignment_tokens` where vLLM sets it, else `block_size`."""
    for key in ("cache_hit_alignment_tokens", "block_size"):
        if info.get(key, "").isdigit() and int(info[key]) > 0:
            return int(info[key])
    return None


def counters(text: str) -> dict[str, float | None]:
    s = parse_metrics(text)
    return {
        "hits": metric(s, HITS),
        "queries": metric(s, QUERIES),
        "prompt_tokens": metric(s, PROMPT_TOKENS),
        "requests": metric(s, REQUESTS),
        "cached": metric(s, CACHED),
    }


def delta(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    def sub(a: float | None, b: float | None) -> float | None:
        return a - b if a is not None and b is not None else None

    return {k: sub(after[k], before.get(k)) for k in after}


# --- token-prefix reuse ------------------------------------------------------------------------------------------


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def token_reuse(
    prompts: Iterable[Sequence[int]], *, block_size: int | None = None, seen: list[Sequence[int]] | None = None
) -> tuple[int, int]:
    """(reused, total) prompt tokens: each prompt's longest common token prefix with any earlier prompt.

    With `block_size` the prefix is counted as vLLM's prefix cache does: whole blocks only, and never the prompt's
    last token (it is recomputed to get the first output). `seen` carries earlier prompts in (and is extended),
    e.g. those of earlier questions when the server's cache was not reset between them.
    """
    seen = [] if seen is None else seen
    reused = total = 0
    for ids in prompts:
        best = max((common_prefix(ids, earlier) for earlier in seen), default=0)
        if block_size:
            best = min(best, max(len(ids) - 1, 0)) // block_size * block_size
        reused += best
        total += len(ids)
        seen.append(ids)
    return reused, total


def messages_of_trace(path: Path) -> list[list[dict[str, str]]]:
    """The messages of every llm_call step, in trace order (failed calls too: the server saw them)."""
    calls = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        step = event.get("step") or {}
        if event.get("ev") == "step" and step.get("kind") == "llm_call":
            calls.append([{"role": m["role"], "content": m["content"]} for m in step["messages"]])
    return calls


def served_prompt_tokens(path: Path) -> int:
    """Sum of the prompt_tokens the server reported for the run's calls (usage.prompt_tokens)."""
    total = 0
    for line in path.read_text().splitlines():
        step = json.loads(line).get("step") or {}
        if step.get("kind") == "llm_call":
            total += int(step.get("prompt_tokens") or 0)
    return total


class LocalChatTokenizer:
    """The model's chat template + tokenizer from a local folder: transformers when installed, else `tokenizers`
    with the template rendered by jinja2 the way transformers does (trim_blocks, lstrip_blocks)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        try:
            from transformers import AutoTokenizer
        except ImportError:
            self._hf = None
            self.via = "tokenizers+jinja2"
            self._load_plain()
        else:
            self._hf = AutoTokenizer.from_pretrained(str(self.directory))
            self.via = "transformers"

    def _load_plain(self) -> None:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        config = json.loads((self.directory / "tokenizer_config.json").read_text())
        template = config.get("chat_template")
        if template is None and (self.directory / "chat_template.jinja").is_file():
            template = (self.directory / "chat_template.jinja").read_text()
        if not template:
            raise ValueError(f"{self.directory}: no chat template")

        def raise_exception(message: str) -> None:
            raise jinja2.exceptions.TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
        self._template = env.from_string(template)

        def special(key: str) -> str:
            value = config.get(key)
            return value.get("content", "") if isinstance(value, dict) else (value or "")

        self._specials = {k: special(k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        if self._hf is not None:
            out = self._hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out
            return list(ids)
        text = self._template.render(messages=messages, add_generation_prompt=True, **self._specials)
        return self._tok.encode(text, add_special_tokens=False).ids


def endpoint_tokenizer(root: str, model: str, client: httpx.Client) -> Callable[[list[dict[str, str]]], list[int]]:
    """The server's own `POST /tokenize` (vLLM): the chat template and tokenizer it serves with."""

    def encode(messages: list[dict[str, str]]) -> list[int]:
        body = {"model": model, "messages": messages, "add_generation_prompt": True}
        r = client.post(f"{root}/tokenize", json=body)
        r.raise_for_status()
        return list(r.json()["tokens"])

    return encode


# --- the run -----------------------------------------------------------------------------------------------------


def server_root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def load_questions(path: Path | None, n: int) -> list[str]:
    if path is None:
        rows = [json.loads(line) for line in SAMPLE_QUESTIONS.read_text().splitlines() if line.strip()]
        return [r["question"] for r in rows[:n]]
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    return [json.loads(line)["question"] if line.startswith("{") else line for line in lines]


def _share(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def run(
    base_url: str,
    index: str,
    questions: list[str],
    *,
    model: str = "",
    metrics_url: str | None = None,
    tokenizer_dir: Path | None = None,
    use_tokenize_endpoint: bool = True,
    reset: bool = True,
    concurrency: int = 1,
    overrides: dict[str, Any] | None = None,
    traces_dir: Path | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict:
    from deepsearch.agent.config import load_settings
    from deepsearch.agent.run import aresearch

    root = server_root(base_url)
    metrics_url = metrics_url or f"{root}/metrics"
    client = httpx.Client(timeout=60.0)
    notes: list[str] = []

    def scrape() -> str:
        r = client.get(metrics_url)
        r.raise_for_status()
        return r.text

    def reset_cache() -> bool:
        try:
            r = client.post(f"{root}/reset_prefix_cache")
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        try:
            return bool(r.json().get("success", True))  # vLLM: {"success": false} while blocks are still held
        except ValueError:
            return True

    first = scrape()
    block_size = hit_granularity(cache_config(parse_metrics(first)))
    if block_size is None:
        notes.append("no vllm:cache_config_info block_size in /metrics: block-rounded figure not computed")
    if counters(first)["hits"] is None:
        notes.append(f"no {HITS[0]} in /metrics: is this vLLM V1 with prefix caching on?")

    tokenizers: dict[str, Callable[[list[dict[str, str]]], list[int]]] = {}
    if tokenizer_dir is not None:
        try:
            local = LocalChatTokenizer(tokenizer_dir)
            tokenizers[f"local ({local.via})"] = local.encode
        except (ImportError, OSError, ValueError) as e:
            notes.append(f"local tokenizer skipped: {e}")

    figures: dict[str, Any] = {"base_url": base_url, "block_size": block_size, "questions": [], "notes": notes}
    with tempfile.TemporaryDirectory(prefix="vllm-prefix-") as d:
        tmp = Path(d)
        values = {
            "llm.backend": "openai", "llm.base_url": [base_url], "llm.model": model or None,
            "llm.concurrency": concurrency, "traces.dir": str(traces_dir or tmp / "traces"),
            "cache.dir": str(tmp / "cache"), "agent.checkpoint_db": str(tmp / "ckpt.sqlite"),
        } | (overrides or {})  # fmt: skip
        settings = load_settings(overrides=values).settings
        if use_tokenize_endpoint:
            served_model = model or client.get(f"{root}/v1/models").json()["data"][0]["id"]
            probe = endpoint_tokenizer(root, served_model, client)
            try:
                probe([{"role": "user", "content": "ping"}])
                tokenizers["server /tokenize"] = probe
            except (httpx.HTTPError, KeyError, ValueError) as e:
                notes.append(f"server /tokenize unavailable ({type(e).__name__}): that column skipped")
        carried: dict[str, list[Sequence[int]]] = {name: [] for name in tokenizers}
        was_reset = False
        for i, question in enumerate(questions, 1):
            was_reset = reset and reset_cache()
            if reset and not was_reset and i == 1:
                notes.append(
                    "the server refused POST /reset_prefix_cache (start it with VLLM_SERVER_DEV_MODE=1): the cache "
                    "persists across questions, so a later question also hits blocks of earlier ones"
                )
            before = counters(scrape())
            log(f"[{i}/{len(questions)}] {question}")
            result = asyncio.run(aresearch(question, settings=settings, indexes=[index], web=False))
            after = counters(scrape())
            d_ = delta(before, after)
            trace = settings.traces.dir / "runs" / f"{result.trace_id}.jsonl"
            calls = messages_of_trace(trace)
            row: dict[str, Any] = {
                "question": question, "termination": result.termination, "llm_calls": len(calls),
                "cache_reset": was_reset, "vllm_hits": d_["hits"], "vllm_queries": d_["queries"],
                "vllm_prompt_tokens": d_["prompt_tokens"], "vllm_requests": d_["requests"],
                "vllm_prompt_tokens_cached": d_["cached"],
                "vllm_hit_share": _share(d_["hits"], d_["queries"]),
                "usage_prompt_tokens": served_prompt_tokens(trace),
                "ours_tiktoken": prefix_reuse(prompts_of_trace(trace)),
                "served": {},
            }  # fmt: skip
            for name, encode in tokenizers.items():
                ids = [encode(m) for m in calls]
                reused, total = token_reuse(ids)
                entry: dict[str, Any] = {"reused": reused, "tokens": total, "share": _share(reused, total)}
                if was_reset:
                    carried[name].clear()
                if block_size:
                    # vLLM's view: whole blocks, and earlier questions' prompts too unless the cache was reset
                    b_reused, _ = token_reuse(ids, block_size=block_size, seen=list(carried[name]))
                    entry |= {"block_reused": b_reused, "block_share": _share(b_reused, total)}
                carried[name].extend(ids)
                row["served"][name] = entry
            figures["questions"].append(row)
            log(f"    vLLM hit share {_pct(row['vllm_hit_share'])}, ours (tiktoken) {_pct(row['ours_tiktoken'])}")
    client.close()
    figures["total"] = _totals(figures["questions"])
    return figures


def _totals(rows: list[dict]) -> dict[str, Any]:
    def add(key: str) -> float | None:
        values = [r[key] for r in rows]
        return None if any(v is None for v in values) else sum(values)

    total: dict[str, Any] = {k: add(k) for k in ("vllm_hits", "vllm_queries", "vllm_prompt_tokens", "llm_calls")}
    total["vllm_hit_share"] = _share(total["vllm_hits"], total["vllm_queries"])
    total["served"] = {}
    for name in rows[0]["served"] if rows else []:
        entries = [r["served"][name] for r in rows]
        tokens = sum(e["tokens"] for e in entries)
        t = {"reused": sum(e["reused"] for e in entries), "tokens": tokens}
        t["share"] = _share(t["reused"], tokens)
        if all("block_reused" in e for e in entries):
            t["block_reused"] = sum(e["block_reused"] for e in entries)
            t["block_share"] = _share(t["block_reused"], tokens)
        total["served"][name] = t
    return total


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def table(figures: dict) -> str:
    names = list(figures["total"]["served"])
    head = ["#", "calls", "vLLM queries", "vLLM hits", "vLLM hit share", "ours tiktoken"]
    for name in names:
        head += [f"ours {name}", f"  as vLLM counts (blocks of {figures['block_size']})"]
    rows = []
    for i, r in enumerate(figures["questions"], 1):
        row = [str(i), str(r["llm_calls"]), f"{r['vllm_queries'] or 0:.0f}", f"{r['vllm_hits'] or 0:.0f}",
               _pct(r["vllm_hit_share"]), _pct(r["ours_tiktoken"])]  # fmt: skip
        for name in names:
            e = r["served"][name]
            row += [_pct(e["share"]), _pct(e.get("block_share"))]
        rows.append(row)
    t = figures["total"]
    row = ["all", f"{t['llm_calls'] or 0:.0f}", f"{t['vllm_queries'] or 0:.0f}", f"{t['vllm_hits'] or 0:.0f}",
           _pct(t["vllm_hit_share"]), "—"]  # fmt: skip
    for name in names:
        row += [_pct(t["served"][name]["share"]), _pct(t["served"][name].get("block_share"))]
    rows.append(row)
    widths = [max(len(x[c]) for x in [head, *rows]) for c in range(len(head))]
    lines = ["  ".join(x[c].rjust(widths[c]) for c in range(len(head))) for x in [head, *rows]]
    for i, r in enumerate(figures["questions"], 1):
        lines.append(f"{i}: {r['question']} ({r['termination']}; cache reset before: {r['cache_reset']})")
    lines += [f"note: {n}" for n in figures["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="the server's OpenAI base URL, e.g. http://127.0.0.1:8011/v1")
    parser.add_argument("--model", default="", help="served model name (default: the first the server lists)")
    parser.add_argument("--index", required=True, help="a deepsearch index name or folder")
    parser.add_argument("--questions", type=Path, help="one question per line (or jsonl with 'question')")
    parser.add_argument("-n", type=int, default=3, help="how many sample questions without --questions (default 3)")
    parser.add_argument("--metrics-url", help="Prometheus endpoint (default: <server root>/metrics)")
    parser.add_argument("--tokenizer", type=Path, help="local model folder: also count in its chat-template tokens")
    parser.add_argument("--no-tokenize-endpoint", action="store_true", help="do not use the server's /tokenize")
    parser.add_argument("--no-reset", action="store_true", help="do not POST /reset_prefix_cache between questions")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="LLM requests in flight (default 1: calls in flight together cannot hit each other)",
    )
    parser.add_argument("--traces-dir", type=Path, help="keep the runs' trajectories here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = run(
        args.base_url, args.index, load_questions(args.questions, args.n), model=args.model,
        metrics_url=args.metrics_url, tokenizer_dir=args.tokenizer, use_tokenize_endpoint=not args.no_tokenize_endpoint,
        reset=not args.no_reset, concurrency=args.concurrency, traces_dir=args.traces_dir,
    )  # fmt: skip
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
