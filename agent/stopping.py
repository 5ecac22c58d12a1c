"""Why research stops: every rule in one place, for a sub-goal's rounds and for the whole run.

One vocabulary for both (a sub-goal's `stop_reason` and the run's `termination`):

| reason            | sub-goal: a research round ends the sub-goal when …                  | run                   |
|-------------------|-----------------------------------------------------------------------|-----------------------|
| `answered`        | the judge says done and the sub-goal is answered (a known answer)     | verified answer       |
| `plateau`         | the answer is known and information gain < ε for k rounds in a row    | gain < ε for k waves  |
| `no_new_results`  | the round's searches found nothing the sub-goal had not seen          | a sub-goal ran dry    |
| `loop_detected`   | every query of the round repeats an earlier one                       | replanning loops      |
| `replan`          | the judge says the sub-goal is wrong as asked                         | —                     |
| `budget_rounds`   | the sub-goal used `max_rounds` rounds                                 | a sub-goal hit it     |
| `budget_<kind>`   | a run budget (llm_calls, tokens, searches, time) is spent             | the same              |
| `error_<kind>`    | an LLM call failed (`error_llm`, …); the trajectory names the call    | the same              |
| `abstained`       | —                                                                     | nothing verifiable    |

Rules that are deliberately absent:
- "unknown" is never a plateau: its belief is 0, and a sub-goal that found nothing keeps searching while
  budget, rounds and fresh results remain (no_new_results / loop_detected / budget_* end it).
- a low gain never overrides a judge that said `continue` with `answered: false`.
- the fetch cap is not a stop: at the cap, web results fall back to their snippets.
"""

from __future__ import annotations

from pydantic import BaseModel

# Order of precedence when the run's termination is derived from its sub-goals' stops.
_RUN_PRECEDENCE = ("error_", "budget_", "loop_detected", "no_new_results", "plateau")


class RoundFacts(BaseModel):
    """What the route step knows after a round's judge."""

    round: int
    max_rounds: int
    decision: str  # the judge's continue | replan | done
    answered: bool  # the judge said answered and the answer is not "unknown"
    gain: float
    low_gain_rounds: int  # consecutive rounds with gain < ε while answered, this one included
    plateau_rounds: int
    budget: str | None  # the first spent budget, as budget_<kind>
    error: str | None  # error_<kind> when a call of this round failed


def low_gain_streak(previous: int, gain: float, epsilon: float, answered: bool) -> int:
    """Rounds in a row without information gain; only an answered sub-goal can accumulate them."""
    return previous + 1 if answered and gain < epsilon else 0


def round_stop(f: RoundFacts) -> str | None:
    """The reason this sub-goal stops after its round, or None to run another round."""
    if f.error:
        return f.error
    if f.decision == "done" and f.answered:
        return "answered"
    if f.decision == "replan":
        return "replan"
    if f.answered and f.low_gain_rounds >= f.plateau_rounds:
        return "plateau"
    if f.budget:
        return f.budget
    if f.round >= f.max_rounds:
        return "budget_rounds"
    return None


def run_plateau(wave_beliefs: list[float], epsilon: float, plateau_waves: int) -> bool:
    """The whole run stops on gain: its belief (known answers) stayed within ε for `plateau_waves` waves."""
    if len(wave_beliefs) <= plateau_waves or wave_beliefs[-1] <= 0:
        return False
    recent = wave_beliefs[-(plateau_waves + 1) :]
    return all(abs(b - a) < epsilon for a, b in zip(recent, recent[1:], strict=False))


def run_termination(research_stop: str | None, subgoal_stops: list[str]) -> str:
    """The run's termination when its answer stands, from why research ended."""
    if research_stop:
        return research_stop
    for prefix in _RUN_PRECEDENCE:
        for stop in subgoal_stops:
            if stop.startswith(prefix):
                return stop
    return "answered"
