"""Listwise ranking: sliding-window merge, parse-failure fallback per window, stray ids, isotonic scores."""

import json

from deepsearch.agent.config import RerankSettings
from deepsearch.agent.llm import LLMClient
from deepsearch.agent.llm.fake import FakeBackend
from deepsearch.tools.rerank import Candidate
from deepsearch.tools.rerank.listwise import isotonic_non_increasing, rank_listwise, window_count
from deepsearch.tools.rerank.prompting import CallTally

from tests.fakes.rerank_oracle import Oracle, passages


def pool(n: int, relevant: set[int]) -> list[Candidate]:
    return [
        Candidate(
            id=f"c{i}",
            text=f"doc {i:02d}. " + ("Shirley Temple played Corliss Archer." if i in relevant else "A film of 1945."),
            prior_score=float(n - i),
        )
        for i in range(n)
    ]


async def test_sliding_windows_carry_a_bottom_candidate_to_the_top():
    settings = RerankSettings(window_size=10, window_step=5)
    candidates = pool(25, relevant={3, 24})
    backend = FakeBackend(Oracle())
    tally = CallTally()
    result = await rank_listwise(LLMClient(backend), "who played Corliss Archer", candidates, settings, 0, tally)
    # Windows [15,25) [10,20) [5,15) [0,10): the relevant c24 climbs through every overlap.
    assert result.rounds == 4 and len(backend.requests) == 4
    expected = ["c3", "c24"] + [f"c{i}" for i in range(25) if i not in (3, 24)]
    assert result.order == expected
    assert result.judged["c24"].score == 0.9 and result.judged["c0"].score == 0.1
    assert result.judged["c24"].judgements == 4  # it was in every window on its way up
    assert tally.notes == []


async def test_each_prompt_shows_its_window_shuffled_and_seeded():
    settings = RerankSettings(window_size=10, window_step=5)
    candidates = pool(10, relevant=set())

    async def shown(seed: int) -> list[str]:
        backend = FakeBackend(Oracle())
        await rank_listwise(LLMClient(backend), "q", candidates, settings, seed, CallTally())
        return [body.split(".")[0] for _, body in passages(backend.requests[0])]

    first, again, other = await shown(1), await shown(1), await shown(2)
    assert first == again and first != other
    assert sorted(first) == [f"doc {i:02d}" for i in range(10)] and first != sorted(first)


async def test_unusable_window_keeps_its_input_order_and_is_recorded():
    settings = RerankSettings(window_size=4, window_step=2)
    candidates = pool(6, relevant={5})
    oracle = Oracle()
    replies = iter(["I cannot rank these.", "still no JSON"])

    def script(request):  # the first window (the bottom one) fails twice; the rest are answered
        return next(replies, None) or oracle(request)

    tally = CallTally()
    result = await rank_listwise(LLMClient(FakeBackend(script)), "q", candidates, settings, 0, tally)
    assert any("input order kept" in n for n in tally.notes)
    # The bottom window [2,6) kept its input order, so the relevant c5 never reached window [0,4).
    assert result.order == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert result.judged["c5"].judgements == 0 and "fusion" in result.judged["c5"].rationale


async def test_stray_and_missing_ids_are_recorded_and_missing_ones_follow_in_input_order():
    candidates = pool(4, relevant=set())

    def script(request):
        aliases = [a for a, _ in passages(request)]
        ranking = [{"id": aliases[2], "grade": 8, "why": "best"}, {"id": "P99", "grade": 9, "why": "?"}]
        ranking.append({"id": aliases[2], "grade": 1, "why": "again"})
        return json.dumps({"reasoning": "r", "ranking": ranking})

    tally = CallTally()
    backend = FakeBackend(script)
    result = await rank_listwise(LLMClient(backend), "q", candidates, RerankSettings(), 0, tally)
    top = result.order[0]
    assert result.judged[top].grades == [8.0] and result.order[1:] == [c.id for c in candidates if c.id != top]
    assert any("P99" in n and "3 omitted" in n for n in tally.notes)


def test_isotonic_fit_is_non_increasing_and_keeps_sorted_input():
    assert isotonic_non_increasing([9, 8, 8, 2]) == [9, 8, 8, 2]
    assert isotonic_non_increasing([5, 9, 1]) == [7, 7, 1]
    fitted = isotonic_non_increasing([1, 9, 3, 8, 0])
    assert all(a >= b for a, b in zip(fitted, fitted[1:], strict=False))
    assert abs(sum(fitted) - 21) < 1e-9  # pooling preserves the total


async def test_the_announced_window_count_is_the_number_of_windows_ranked():
    settings = RerankSettings(window_size=10, window_step=5)
    for n in (1, 9, 10, 11, 15, 16, 25, 26):
        backend = FakeBackend(Oracle())
        labels: list[str] = []
        await rank_listwise(LLMClient(backend), "q", pool(n, {0}), settings, 0, CallTally(), on_step=labels.append)
        total = len(backend.requests)
        assert window_count(n, 10, 5) == total
        assert labels == [f"rerank window {k}/{total}" for k in range(1, total + 1)], n
