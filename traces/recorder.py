"""The recorder: appends a run's events to `<traces dir>/runs/<id>.jsonl`, one whole line per write().

Graph-independent API: `llm_call` (or `observer()` on an LLMClient) and `structured(outcome)`,
`tool_call`, `step(kind, **fields)` for rerank / judge / information / budget, `dag_change`,
`resolved_question`, then `finish(...)` or `fail(exc)`. Every event is redacted, then written with
one unbuffered write, so a run killed at any moment leaves complete lines that readers can fold.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from deepsearch.agent.errors import DeepsearchError
from deepsearch.agent.llm.base import CallObserver
from deepsearch.agent.llm.structured import StructuredOutcome
from deepsearch.agent.llm.types import LLMRequest, LLMResponse
from deepsearch.agent.result import Citation, RunUsage
from pydantic import ValidationError

from .redact import Redactor
from .schema import (
    SCHEMA_VERSION,
    BudgetStep,
    Content,
    DagChange,
    Final,
    Header,
    InformationStep,
    JudgeStep,
    LLMCallStep,
    ReportStep,
    RerankStep,
    ResultItem,
    Scores,
    StepBase,
    SubGoal,
    ToolCallStep,
)
from .scoring import score_result

RUNS_DIR = "runs"
_STEP_MODELS: dict[str, type[StepBase]] = {
    "llm_call": LLMCallStep,
    "tool_call": ToolCallStep,
    "rerank": RerankStep,
    "judge": JudgeStep,
    "information": InformationStep,
    "budget": BudgetStep,
    "report": ReportStep,
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")  # a file name, never a path
_PENDING_CALLS_MAX = 1024  # LLM calls waiting for their structured outcome


class TraceWriteError(DeepsearchError):
    """The traces directory cannot be written."""


def new_trace_id(now: datetime | None = None) -> str:
    """Sortable by start time (ms), unique across concurrent processes: 20250102-153045123-3f9a1c2b."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(4)}"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def termination_for(exc: BaseException) -> str:
    """`error_<kind>` for a failure (LLMError carries its kind), `cancelled` for an interruption."""
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):
        return "cancelled"
    kind = getattr(exc, "kind", None) or type(exc).__name__.removesuffix("Error").lower() or "exception"
    return f"error_{kind}"


def _header_event(header: Header, redactor: Redactor) -> dict[str, Any]:
    """The header as JSON data, its run-independent parts (config, models, prompts, tools) redacted once per batch."""
    data = header.model_dump(mode="json")
    for key in ("config", "models", "prompts", "tools"):
        if isinstance(data.get(key), dict):
            data[key] = redactor.clean_static(data[key])
    return data


class TraceRecorder:
    """Records one run. Cheap per step; thread-safe; never lets a secret reach disk (see redact.py)."""

    def __init__(self, path: Path, trace_id: str, fd: int, redactor: Redactor, fsync: bool):
        self.path, self.id = path, trace_id
        self._fd, self._redactor, self._fsync = fd, redactor, fsync
        self._lock = threading.Lock()
        self._seq = 0
        self._next_step = 0
        self._t0 = perf_counter()
        self._contents: set[str] = set()
        self._pending: OrderedDict[int, tuple[LLMResponse, int]] = OrderedDict()
        self._usage = RunUsage()
        self.finished = False

    @classmethod
    def start(
        cls,
        directory: Path | str,
        header: Header,
        *,
        redactor: Redactor | None = None,
        fsync: bool = False,
        trace_id: str | None = None,
    ) -> TraceRecorder:
        """Create the run's log and write its start event. Raises TraceWriteError if that is impossible."""
        created = datetime.now(UTC)
        trace_id = trace_id or new_trace_id(created)
        if not _SAFE_ID.match(trace_id):
            raise ValueError(f"trace id {trace_id!r}: use letters, digits, '.', '_' and '-' (not first)")
        runs = Path(directory).expanduser() / RUNS_DIR
        path = runs / f"{trace_id}.jsonl"
        # The log appears under its name only once its start line is whole: a run killed while
        # starting leaves a hidden `.starting` file that readers never see, not an empty log.
        starting = runs / f".{trace_id}.starting"
        try:
            runs.mkdir(parents=True, exist_ok=True)
            # 0600: prompts and pages may be private even with secrets removed.
            fd = os.open(starting, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as e:
            raise TraceWriteError(f"cannot write trajectories to {runs}: {e.strerror or e}") from None
        recorder = cls(path, trace_id, fd, redactor or Redactor(), fsync)
        try:
            recorder._emit(
                {
                    "ev": "start",
                    "schema_version": SCHEMA_VERSION,
                    "trace_id": trace_id,
                    "created": created.isoformat(),
                    "header": _header_event(header, recorder._redactor),
                }
            )
            os.replace(starting, path)
        except (OSError, TraceWriteError) as e:
            recorder.close()
            starting.unlink(missing_ok=True)
            raise TraceWriteError(f"cannot write trajectories to {runs}: {getattr(e, 'strerror', None) or e}") from None
        return recorder

    # ---- writing -------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._fd < 0:
                raise TraceWriteError(f"trajectory {self.id} is closed")
            event["seq"] = self._seq
            data = (self._redactor.serialize(event) + "\n").encode("utf-8", "surrogatepass")
            try:
                written = os.write(self._fd, data)
                while written < len(data):  # regular files rarely short-write; finish the line if they do
                    written += os.write(self._fd, data[written:])
                if self._fsync:
                    os.fsync(self._fd)
            except OSError as e:
                raise TraceWriteError(f"cannot append to trajectory {self.path}: {e.strerror or e}") from None
            self._seq += 1

    def _at(self) -> float:
        return round(perf_counter() - self._t0, 6)

    def step(self, kind: str, **fields: Any) -> int:
        """Record a step of `kind` (one of schema.STEP_KINDS); returns its index."""
        model = _STEP_MODELS.get(kind)
        if model is None:
            raise ValueError(f"unknown step kind {kind!r}; expected one of {', '.join(_STEP_MODELS)}")
        with self._lock:
            index = self._next_step
            self._next_step += 1
        try:
            step = model(index=index, at_s=self._at(), **fields)
        except ValidationError as e:
            raise ValueError(f"bad {kind} step: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None
        self._emit({"ev": "step", "step": step.model_dump(mode="json")})
        return index

    # ---- LLM calls -----------------------------------------------------------------------------

    def llm_call(
        self,
        request: LLMRequest,
        response: LLMResponse | None,
        error: BaseException | None = None,
        *,
        subgoal: str | None = None,
        round: int | None = None,
        supersedes: int | None = None,
    ) -> int:
        fields: dict[str, Any] = {
            "role": request.role,
            "messages": [m.model_dump() for m in request.messages],
            "sampling": request.sampling(),
            "schema_name": request.schema_name if request.json_schema else None,
            "subgoal": subgoal,
            "round": round,
            "supersedes": supersedes,
        }
        if response is not None:
            fields |= {
                "raw_output": response.raw_text,
                "output": response.text,
                "reasoning": response.reasoning,
                "prompt_tokens": response.usage.prompt_tokens,
                "completion_tokens": response.usage.completion_tokens,
                "latency_s": response.latency_s,
                "retries": response.retries,
                "logprobs": response.logprob_summary(),
                "finish_reason": response.finish_reason,
                "backend": response.backend,
                "model": response.model,
            }
            u = self._usage
            u.llm_calls += 1
            u.prompt_tokens += response.usage.prompt_tokens
            u.completion_tokens += response.usage.completion_tokens
        else:
            fields["error"] = f"{type(error).__name__}: {error}" if error else "no response"
        index = self.step("llm_call", **fields)
        if response is not None:
            with self._lock:
                self._pending[id(response)] = (response, index)
                if len(self._pending) > _PENDING_CALLS_MAX:
                    self._pending.popitem(last=False)
        return index

    def observer(self, *, subgoal: str | None = None, round: int | None = None) -> CallObserver:
        """An LLMClient observer that records every call (and failed call) as an llm_call step."""

        def observe(request: LLMRequest, response: LLMResponse | None, error: BaseException | None) -> None:
            self.llm_call(request, response, error, subgoal=subgoal, round=round)

        return observe

    def structured(self, outcome: StructuredOutcome) -> None:
        """Attach a structured request's outcome (parsed value, failures, repairs) to the calls it made."""
        last = len(outcome.responses)
        first_step: int | None = None
        for attempt, response in enumerate(outcome.responses, 1):
            with self._lock:
                pending = self._pending.pop(id(response), None)
            if pending is None or pending[0] is not response:
                continue  # not recorded by this recorder (no observer on that client)
            accepted = attempt == last and outcome.status != "fallback"
            retry_of = first_step if attempt > 1 else None
            first_step = pending[1] if attempt == 1 else first_step
            self._emit(
                {
                    "ev": "annotate",
                    "step_index": pending[1],
                    "status": outcome.status,
                    "accepted": accepted,
                    "retry_of": retry_of,
                    "parsed": outcome.value.model_dump(mode="json") if accepted else None,
                    "parse_failures": [f.model_dump() for f in outcome.failures if f.attempt == attempt],
                }
            )

    # ---- tools, contents, plan -----------------------------------------------------------------

    def content(self, text: str, url: str | None = None) -> str:
        """Store a page text once per run; returns its hash for ResultItem.content_hash."""
        key = content_hash(text)
        with self._lock:
            seen = key in self._contents
            self._contents.add(key)
        if not seen:
            self._emit({"ev": "content", "content": Content(hash=key, text=text, url=url).model_dump()})
        return key

    def tool_call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        success: bool = True,
        error: str | None = None,
        latency_s: float = 0.0,
        results: Iterable[ResultItem | dict[str, Any]] = (),
        subgoal: str | None = None,
        round: int | None = None,
        recorded: Any = None,
    ) -> int:
        """Record a tool call. A result dict may carry `text` (a page): it goes to the content table once.
        `recorded`: the outcome's object in the snapshot store (a RecordedRef)."""
        items = []
        for r in results:
            if isinstance(r, dict) and "text" in r:
                r = dict(r)
                text = r.pop("text")
                if text:
                    r["content_hash"] = self.content(text, r.get("url"))
            items.append(r if isinstance(r, ResultItem) else ResultItem.model_validate(r))
        return self.step(
            "tool_call",
            tool=tool,
            arguments=arguments,
            success=success,
            error=error,
            latency_s=latency_s,
            results=items,
            subgoal=subgoal,
            round=round,
            recorded=recorded,
        )

    def dag_change(
        self, action: str, subgoal: SubGoal | dict[str, Any], reason: str, caused_by: int | None = None
    ) -> None:
        """A sub-goal added, changed or dropped; `caused_by` defaults to the latest step."""
        with self._lock:
            cause = caused_by if caused_by is not None else (self._next_step - 1 if self._next_step else None)
        change = DagChange(
            action=action,
            subgoal=subgoal if isinstance(subgoal, SubGoal) else SubGoal.model_validate(subgoal),
            reason=reason,
            caused_by=cause,
            at_s=self._at(),
        )
        self._emit({"ev": "dag", "change": change.model_dump()})

    def resolved_question(self, question: str) -> None:
        self._emit({"ev": "resolved", "question": question})

    # ---- the end -------------------------------------------------------------------------------

    def usage_so_far(self) -> RunUsage:
        return self._usage.model_copy(update={"seconds": round(perf_counter() - self._t0, 3)})

    def finish(
        self,
        answer: str,
        *,
        termination: str,
        citations: Sequence[Citation | dict[str, Any]] = (),
        usage: RunUsage | None = None,
        gold: list[str] | None = None,
        scores: Scores | None = None,
        error: str | None = None,
        short_answer: str | None = None,
    ) -> None:
        """Write the final event (scores from `gold` when none are given: the short answer when there is one,
        0 for an abstention) and close the log."""
        if self.finished:
            raise TraceWriteError(f"trajectory {self.id} is already finished")
        if scores is None and gold:
            scores = score_result(short_answer or answer, termination, gold)
        final = Final(
            answer=answer,
            citations=[c if isinstance(c, Citation) else Citation.model_validate(c) for c in citations],
            termination=termination,
            error=error,
            usage=usage or self.usage_so_far(),
            gold=gold,
            scores=scores,
        )
        self._emit({"ev": "finish", "ended": datetime.now(UTC).isoformat(), "final": final.model_dump(mode="json")})
        self.finished = True
        self.close()

    def fail(self, exc: BaseException) -> None:
        """Finish a run that raised: empty answer, `error_<kind>` (or `cancelled`) termination."""
        self.finish("", termination=termination_for(exc), error=f"{type(exc).__name__}: {exc}"[:1000])

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not self.finished and self._fd >= 0:
            self.fail(exc)
        self.close()
