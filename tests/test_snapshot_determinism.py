"""What a branch reads never depends on which parallel branch got there first: each sub-goal of a wave has its
own share of the fetch budget, a page counts once for every branch that reads it, and `traces diff` pairs
rounds by sub-goal, not by which began first."""

from __future__ import annotations

from deepsearch.agent.budget import Budget, BudgetLimits
from deepsearch.agent.llm.base import UsageTotals
from deepsearch.agent.research_tools import ResearchTools
from deepsearch.traces.diff import diff_runs
from deepsearch.traces.reader import load_trajectory
from deepsearch.traces.recorder import TraceRecorder
from deepsearch.traces.schema import Header


def tools(fetches: int) -> ResearchTools:
    t = ResearchTools({}, None, None, local_k=4, web_pages=3)
    limits = BudgetLimits(llm_calls=60, tokens=10**6, searches=40, fetches=fetches, seconds=900.0)
    t.bind(Budget(limits, UsageTotals()), None, lambda e: None)
    return t


def test_each_branch_reads_within_its_share_and_a_shared_page_counts_once_for_the_budget():
    t = tools(fetches=10)
    t.fetch_shares = {"g1": 2, "g2": 2}
    assert [t._may_read(u, "g1") for u in ("a", "b", "c")] == [True, True, False]  # g1's share is 2
    # g2 reads b too (g1 fetched it): it counts for g2's share, not again for the run's budget.
    assert [t._may_read(u, "g2") for u in ("b", "d", "e")] == [True, True, False]
    assert t.budget.fetches == 3  # a, b, d
    assert t._may_read("a", "g1")  # a page already read is read again for free


def test_the_order_the_branches_arrive_in_changes_nothing():
    def reads(order):
        t = tools(fetches=10)
        t.fetch_shares = {"g1": 2, "g2": 2}
        return {sg: [u for u in urls if t._may_read(u, sg)] for sg, urls in order}, t.budget.fetches

    first = reads([("g1", ["a", "b", "c"]), ("g2", ["b", "c", "d"])])
    second = reads([("g2", ["b", "c", "d"]), ("g1", ["a", "b", "c"])])
    assert first[0] == second[0] and first[1] == second[1]


def test_without_shares_the_run_budget_still_caps_fetches():
    t = tools(fetches=2)
    assert [t._may_read(u, "g1") for u in ("a", "b", "c")] == [True, True, False]


def _run(directory, order):
    rec = TraceRecorder.start(directory, Header(question="q"))
    for sg in order:
        rec.tool_call("web_search", {"query": f"about {sg}"}, results=[{"url": f"https://x/{sg}"}], subgoal=sg, round=1)
    rec.finish("answer", termination="answered")
    return load_trajectory(rec.path)


def test_diff_pairs_parallel_rounds_by_sub_goal_not_by_start_order(tmp_path):
    a, b = _run(tmp_path, ["g1", "g2"]), _run(tmp_path, ["g2", "g1"])
    assert diff_runs(a, b).same
    c = _run(tmp_path, ["g1", "g3"])
    assert diff_runs(a, c).calls
