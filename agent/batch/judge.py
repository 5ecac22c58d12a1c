"""LLM-judge accuracy (`--judge`): the model grades each answer against the gold answers.

EM and F1 miss correct answers worded differently ("Chief of Protocol of the United States" vs
"Chief of Protocol"); a grader model catches those. Its calls are counted apart from the agent's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ...prompts import load_prompt
from ..llm import ChatMessage, LLMBackend, LLMClient, generate_structured


class JudgeVerdict(BaseModel):
    reason: str = Field("", description="one sentence", max_length=400)
    verdict: Literal["correct", "incorrect"]


class AnswerJudge:
    def __init__(self, backend: LLMBackend):
        self.client = LLMClient(backend)

    async def grade(self, question: str, answer: str, gold: list[str]) -> Literal["correct", "incorrect"] | None:
        """The verdict, or None when the grader gave no usable reply (counted as ungraded, not as wrong)."""
        if not answer.strip():
            return "incorrect"
        messages = load_prompt("answer_judge").render(
            question=question, gold="\n".join(f"- {g}" for g in gold), answer=answer
        )
        outcome = await generate_structured(
            self.client,
            [ChatMessage(**m) for m in messages],
            JudgeVerdict,
            role="answer_judge",
            fallback=lambda: JudgeVerdict(verdict="incorrect"),
            max_tokens=160,
        )
        return None if outcome.used_fallback else outcome.value.verdict

    @property
    def calls(self) -> int:
        return self.client.usage.llm_calls
