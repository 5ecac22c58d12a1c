"""SQLite checkpoints without an fsync per step: still every committed step through a crash, FULL with traces.fsync."""

from typing import TypedDict

import pytest
from deepsearch.agent.checkpoints import open_checkpointer
from langgraph.graph import END, START, StateGraph


class S(TypedDict):
    steps: list[str]


class Crash(Exception):
    pass


def _graph(crash: dict):
    def first(state: S) -> dict:
        return {"steps": [*state["steps"], "first"]}

    def second(state: S) -> dict:
        if crash["on"]:
            raise Crash("killed in the second step")
        return {"steps": [*state["steps"], "second"]}

    g = StateGraph(S)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    return g.compile()


@pytest.mark.parametrize(("fsync", "level"), [(False, 1), (True, 2)])  # 1 = NORMAL, 2 = FULL
async def test_synchronous_level_follows_fsync(tmp_path, fsync, level):
    async with open_checkpointer(tmp_path / "c.sqlite", False, fsync=fsync) as saver:
        async with saver.conn.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone())[0] == level
        async with saver.conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"


async def test_a_crashed_run_resumes_after_its_last_committed_step(tmp_path):
    path, crash = tmp_path / "c.sqlite", {"on": True}
    config = {"configurable": {"thread_id": "t"}}
    async with open_checkpointer(path, False) as saver:
        graph = _graph(crash).copy(update={"checkpointer": saver})
        with pytest.raises(Crash):
            await graph.ainvoke({"steps": []}, config=config)
    crash["on"] = False
    async with open_checkpointer(path, False) as saver:  # a new connection: what reached the file
        graph = _graph(crash).copy(update={"checkpointer": saver})
        state = await graph.aget_state(config)
        assert state.next == ("second",) and state.values["steps"] == ["first"]
        assert (await graph.ainvoke(None, config=config))["steps"] == ["first", "second"]
