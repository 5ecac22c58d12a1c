"""The settings sections, one pydantic model each, and their defaults (user config/data/cache dirs).

`agent/config.py` layers values onto them (defaults < TOML < env < flags) and reports where each came from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

APP_NAME = "deepsearch"


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _data_dir(sub: str) -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / sub


def _cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMSettings(Section):
    backend: Literal["auto", "llamacpp", "openai", "fake"] = Field(
        "auto", description="auto = openai when base_url is set, else the embedded llamacpp model"
    )
    base_url: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible base URL(s), e.g. http://127.0.0.1:8000/v1; several = balanced by least "
        "outstanding requests, a failing one out of rotation for a while",
    )
    model: str = Field("", description="model name on the server; empty = the first one it lists")
    api_key: SecretStr | None = Field(None, description="sent as a bearer token; never logged")
    server_kind: Literal["auto", "vllm", "llamacpp", "openai"] = Field(
        "auto", description="how to ask for JSON-schema output; auto = detect from /v1/models"
    )
    model_path: str = Field("", description="GGUF file for llamacpp; empty = the packaged SmolLM2-135M")
    n_ctx: int = Field(8192, ge=512, description="llamacpp context window (tokens)")
    n_threads: int = Field(0, ge=0, description="llamacpp threads; 0 = all cores")
    timeout_s: float = Field(120.0, gt=0, description="per-request timeout (seconds)")
    max_retries: int = Field(3, ge=0, description="retries on 429/5xx/connection errors")
    endpoint_cooldown_s: float = Field(
        5.0, gt=0, description="a failing base URL leaves the rotation this long, doubling per failure (max 60 s)"
    )
    concurrency: int = Field(8, ge=1, description="requests in flight at once, shared by all callers")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, description="default completion cap per call")
    top_logprobs: int = Field(5, ge=0, le=20, description="top alternatives per token (rerank's yes/no reads them)")
    belief_top_logprobs: int = Field(
        2,
        ge=1,
        le=20,
        description="top alternatives per token of a research node's reply whose logprobs measure belief (the "
        "judge's): belief reads only the chosen tokens, the alternatives give the recorded top-k entropy, and each "
        "is ~70 bytes of reply JSON per generated token to send and parse (at 5, a judge reply was ~345 KB)",
    )
    seed: int | None = 0

    @field_validator("base_url", mode="before")
    @classmethod
    def _split_urls(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [u.strip() for u in v.split(",") if u.strip()]
        return v

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "openai" if self.base_url else "llamacpp"


class TracesSettings(Section):
    dir: Path = Field(default_factory=lambda: _data_dir("traces"), description="where trajectories go")
    redact_patterns: list[str] = Field(
        default_factory=list,
        description="extra regexes masked in trajectories (API keys and auth headers always are); "
        "env: a JSON list or one regex",
    )
    fsync: bool = Field(False, description="fsync after every event (survives power loss, not just kill -9)")

    @field_validator("redact_patterns", mode="before")
    @classmethod
    def _parse_patterns(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.lstrip().startswith("[") else [v]
        return v

    @field_validator("redact_patterns")
    @classmethod
    def _compile_patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"bad regex {pattern!r}: {e}") from None
        return v


class IndexSettings(Section):
    dir: Path = Field(default_factory=lambda: _data_dir("indexes"), description="where named indexes live")
    chunk_tokens: int = Field(256, ge=16, le=8192, description="upper bound on tokens per chunk (tiktoken)")
    overlap_tokens: int = Field(32, ge=0, description="tokens of trailing sentences repeated in the next chunk")
    max_file_mb: float = Field(
        64.0, gt=0, description="files larger than this are skipped and counted (jsonl/parquet are streamed: any size)"
    )
    id_field: str = Field("id", description="json/jsonl corpora: the key holding the document id")
    title_field: str = Field("title", description="json/jsonl corpora: the key holding the title")
    text_field: str = Field("text", description="json/jsonl corpora: the key holding the text")
    dense: bool = Field(True, description="embed chunks when the dense extra is installed (new indexes only)")
    follow_external_symlinks: bool = Field(
        False, description="follow symlinks inside an indexed folder that lead outside every indexed folder"
    )
    mode: Literal["hybrid", "bm25", "dense"] = Field(
        "hybrid", description="search mode; hybrid falls back to bm25 on an index without vectors"
    )
    rrf_k: int = Field(
        5, ge=1, description="reciprocal-rank fusion constant (tuned on the 100 HotpotQA dev_ids: docs/local-index.md)"
    )
    dense_weight: float = Field(
        0.5, ge=0, description="weight of the dense ranking in hybrid fusion, bm25 = 1 (tuned with rrf_k)"
    )
    per_doc: int = Field(2, ge=0, description="at most this many chunks of one document per result list; 0 = any")
    commit_chunks: int = Field(
        50_000, ge=1, description="indexing: changed chunks between two updates of the search files (searchable then)"
    )


class CacheSettings(Section):
    dir: Path = Field(default_factory=_cache_dir, description="search/fetch caches, tokenizer files")


def _split_commas(v: Any) -> Any:
    """Lists given as one string (env vars, CLI) are comma-separated."""
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    return v


class SearchSettings(Section):
    provider: Literal["ddgs", "searxng"] = Field(
        "ddgs", description="web search engine; with ddgs, a configured searxng_url is the fallback"
    )
    ddgs_backends: list[str] = Field(
        default_factory=lambda: ["auto"], description="ddgs backends, e.g. duckduckgo,brave,mojeek; auto = ddgs picks"
    )
    searxng_url: str = Field(
        "", description="SearXNG base URL (its JSON API must be enabled), e.g. http://127.0.0.1:8888"
    )
    region: str = Field("us-en", description="region code, e.g. us-en, uk-en, de-de, wt-wt (no region)")
    time_range: Literal["", "d", "w", "m", "y"] = Field("", description="only results from the last d/w/m/y")
    safe_search: Literal["on", "moderate", "off"] = "moderate"
    max_results: int = Field(10, ge=1, le=50)
    min_interval_s: float = Field(2.0, ge=0, description="minimum spacing between requests, shared process-wide")
    max_retries: int = Field(3, ge=0, description="retries after a rate-limit or timeout, with exponential backoff")
    backoff_base_s: float = Field(1.0, ge=0, description="first backoff delay; doubles per retry, with jitter")
    backoff_max_s: float = Field(30.0, ge=0)
    timeout_s: float = Field(10.0, gt=0, description="per-request timeout (seconds)")
    use_cache: bool = Field(True, description="read and write the on-disk result cache")
    cache_ttl_s: float = Field(86400.0, ge=0, description="how long cached results stay fresh (seconds)")
    empty_ttl_s: float = Field(
        300.0, ge=0, description="cache life of an empty or fallback answer (ddgs reports blocks as empty)"
    )

    _split = field_validator("ddgs_backends", mode="before")(_split_commas)


class FetchSettings(Section):
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0, description="longest wait for the next bytes")
    total_timeout_s: float = Field(30.0, gt=0, description="whole fetch, redirects included")
    max_bytes: int = Field(5_000_000, ge=1024, description="body cap after decompression; the rest is not read")
    max_redirects: int = Field(5, ge=0)
    user_agent: str = Field("deepsearch/0.1", description="sent with every request and matched against robots.txt")
    respect_robots: bool = Field(True, description="honour robots.txt (false = ignore it)")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="private hosts, IPs or CIDR networks fetch may reach (intranet use), e.g. 10.0.0.0/8,wiki.lan",
    )
    output_format: Literal["markdown", "text"] = "markdown"
    extract_timeout_s: float = Field(20.0, gt=0, description="hard limit per extraction (the worker is killed)")
    extract_workers: int = Field(2, ge=1, description="extraction worker processes")
    use_cache: bool = Field(True, description="read and write the on-disk page cache")
    cache_ttl_s: float = Field(86400.0, ge=0, description="how long cached pages stay fresh (seconds)")

    _split = field_validator("allow_hosts", mode="before")(_split_commas)


class RerankSettings(Section):
    mode: Literal["listwise", "pointwise", "yesno", "pool"] = Field(
        "listwise",
        description="listwise = reason over windows and order ids; pointwise = 0-10 grade against written criteria; "
        "yesno = logprob of 'yes' (needs a backend with logprobs); pool = randomised batches for large pools",
    )
    candidates: int = Field(20, ge=1, le=500, description="how many search results the rerank command scores")
    window_size: int = Field(10, ge=2, le=50, description="listwise: candidates shown in one prompt")
    window_step: int = Field(5, ge=1, le=50, description="listwise: how far the window slides towards the top")
    batch_size: int = Field(10, ge=2, le=50, description="pool: candidates per randomised batch")
    batch_appearances: int = Field(2, ge=1, le=10, description="pool: batches each candidate appears in per round")
    max_rounds: int = Field(4, ge=1, le=20, description="pool: rounds at most (the first judges everyone)")
    samples: int = Field(1, ge=1, le=10, description="pointwise: grades averaged per candidate (spread recorded)")
    sample_temperature: float = Field(0.7, ge=0, le=2, description="pointwise: temperature when samples > 1")
    seed: int = Field(0, description="shuffles candidate order (position bias) and pool batches")
    min_keep: int = Field(1, ge=0, description="the knee cut keeps at least this many (if any candidate exists)")
    max_keep: int = Field(8, ge=1, description="the knee cut keeps at most this many")
    floor: float = Field(0.2, ge=0, le=1, description="scores (0-1) below this are never kept, whatever the knee")
    knee_min_gap: float = Field(
        0.15, ge=0, le=1, description="the high and low groups' means must differ by this much to call it a knee"
    )
    neighbours: bool = Field(True, description="join a kept local chunk's prev/next chunk when it helps")
    evidence: bool = Field(True, description="ask the model for a contribution and a verified evidence excerpt")
    evidence_token_budget: int = Field(1500, ge=50, description="tokens of evidence passages sent forward in all")
    match_threshold: float = Field(85.0, ge=0, le=100, description="fuzzy-match score (0-100) that verifies evidence")
    replace_threshold: float = Field(
        60.0, ge=0, le=100, description="below match_threshold but at least this: use the best source span instead"
    )
    passage_chars: int = Field(1200, ge=100, description="characters of each candidate shown in ranking prompts")
    max_tokens: int = Field(768, ge=16, description="completion cap for ranking and evidence calls")

    @model_validator(mode="after")
    def _consistent(self) -> RerankSettings:
        if self.window_step > self.window_size:
            raise ValueError("window_step must not exceed window_size")
        if self.min_keep > self.max_keep:
            raise ValueError("min_keep must not exceed max_keep")
        if self.replace_threshold > self.match_threshold:
            raise ValueError("replace_threshold must not exceed match_threshold")
        return self


class AgentSettings(Section):
    indexes: list[str] = Field(default_factory=list, description="local indexes to search (names or paths)")
    web: bool = Field(True, description="search the web too (local only when false)")
    _split_indexes = field_validator("indexes", mode="before")(_split_commas)
    selection: Literal["judge", "rerank", "fusion"] = Field(
        "judge",
        description="evidence per round: judge = the judge grades and quotes the round's best fused passages in "
        "its own call (one call a round); rerank = the reasoning reranker of [rerank] first, then the judge; "
        "fusion = fused order within the token budget, then the judge",
    )
    round_passages: int = Field(
        5, ge=1, le=50, description="new passages a round puts before the judge, per kind of source that "
        "answered (local, web), best of fusion order; the rest stay unseen for a later round. With "
        "selection = rerank, [rerank] candidates applies",
    )  # fmt: skip
    passage_chars: int = Field(1200, ge=100, description="characters of each new passage the judge is shown")
    keep_grade: int = Field(5, ge=0, le=10, description="a passage the judge grades at least this (0-10) is kept")
    max_subgoals: int = Field(4, ge=1, le=12, description="sub-goals the planner may create at once")
    max_rounds: int = Field(3, ge=1, le=20, description="research rounds per sub-goal (hard cap)")
    max_queries: int = Field(3, ge=1, le=6, description="queries per round, the sub-goal's own question included")
    local_k: int = Field(6, ge=1, le=50, description="chunks per query per local index")
    web_pages: int = Field(3, ge=0, le=20, description="result pages fetched per round")
    evidence_tokens: int = Field(1200, ge=100, description="evidence a research round keeps and shows the judge")
    answer_evidence_tokens: int = Field(2400, ge=200, description="evidence shown to the answerer")
    epsilon: float = Field(0.05, ge=0, le=1, description="information gain below this counts as a plateau round")
    plateau_rounds: int = Field(1, ge=1, description="stop after this many plateau rounds in a row")
    belief_samples: int = Field(3, ge=2, le=10, description="sampled drafts when the backend has no logprobs")
    duplicate_query_similarity: float = Field(0.85, gt=0, le=1, description="at or above: a repeated query")
    detect_ambiguity: bool = Field(
        True, description="interactive sessions: intake asks about an ambiguous question (one LLM call); "
        "elsewhere the planner notes the reading it took",
    )  # fmt: skip
    verify: bool = Field(True, description="check every claim of the answer against its cited evidence")
    max_llm_calls: int = Field(60, ge=1, description="budget: LLM calls per run")
    max_tokens: int = Field(250_000, ge=1000, description="budget: prompt + completion tokens per run")
    max_searches: int = Field(40, ge=1, description="budget: search calls per run")
    max_fetches: int = Field(15, ge=0, description="budget: page fetches per run")
    max_seconds: float = Field(900.0, gt=0, description="budget: wall time per run (seconds)")
    checkpoint_db: Path = Field(
        default_factory=lambda: _data_dir("checkpoints.sqlite"), description="LangGraph checkpoints (sessions)"
    )


class EvalSettings(Section):
    data_dir: Path = Field(
        default_factory=lambda: _data_dir("datasets"),
        description="where `deepsearch eval NAME` finds data sets (folders as in the project's data notes)",
    )


class RaySettings(Section):
    workers: int = Field(0, ge=0, description="`--ray` worker actors; 0 = one per `worker_cpus` CPUs of the cluster")
    worker_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves for each worker actor")
    max_attempts: int = Field(3, ge=1, description="tries per question when its worker dies; then an error row")


class SnapshotSettings(Section):
    dir: Path = Field(default_factory=lambda: _data_dir("snapshots"),
                      description="the web snapshot store: every search answer and page a run saw")  # fmt: skip
    record: bool = Field(True, description="record every web search and fetch in the store (for --replay)")
    replay: str | None = Field(
        None, description="serve the web from this snapshot (a .zip/.json, an id, a trace id, a batch output); "
        "nothing goes to the network"
    )
    match: Literal["exact", "query"] = Field(
        "exact", description="replay: a search matches on every parameter (exact) or on its query alone (query)"
    )


class ReportSettings(Section):
    words: int = Field(1200, ge=100, le=20_000, description="ask --report: target length of the whole report")


class Settings(Section):
    llm: LLMSettings = Field(default_factory=LLMSettings)
    traces: TracesSettings = Field(default_factory=TracesSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
