"""An output row: the `ask --json` object plus the question's id, gold answers, scores and error."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ...traces.redact import Redactor, secrets_from_env
from ...traces.schema import Scores
from ..result import AskResult, RunUsage


class BatchRow(AskResult):
    id: str
    gold: list[str] = Field(default_factory=list)
    scores: Scores | None = Field(None, description="EM/F1 (and judge) when gold answers are given")
    error: str | None = Field(None, description="why the question failed; the termination says error_<kind>")
    meta: dict[str, Any] = Field(default_factory=dict, description="dataset fields (eval), e.g. hops, gold passages")

    def to_line(self, redactor: Redactor | None = None) -> bytes:
        """The JSON line, secrets masked as in trajectories (default: env secrets and the built-in patterns)."""
        data = self.model_dump(mode="json", exclude_none=False)
        ordered = {"id": data.pop("id"), **data}  # id first: easy to read and to grep
        redactor = redactor or Redactor(secrets_from_env())
        return (redactor.serialize(ordered, compact=False) + "\n").encode("utf-8")


def failed_row(
    qid: str, question: str, *, mode: str, termination: str, error: str, backend: str, model: str, gold: list[str]
) -> BatchRow:
    return BatchRow(
        id=qid,
        question=question,
        answer="",
        mode=mode,  # type: ignore[arg-type]
        termination=termination,
        usage=RunUsage(),
        backend=backend,
        model=model,
        gold=gold,
        error=error,
    )
