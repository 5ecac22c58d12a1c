"""Chat sessions in SQLite: ids, prefixes, turns and their results, listing, empty sessions."""

import os

import pytest
from deepsearch.agent.chat.store import SessionStore
from deepsearch.agent.errors import UsageError
from deepsearch.agent.result import AskResult, Citation, RunUsage


def result(question: str, answer: str = "Chief of Protocol") -> AskResult:
    return AskResult(
        question=question, answer=f"{answer} [1]", short_answer=answer, mode="research", termination="answered",
        citations=[Citation(n=1, evidence_id="e1", source="doc.txt", quote="She was Chief of Protocol.")],
        usage=RunUsage(llm_calls=7, prompt_tokens=100, completion_tokens=20, searches=2, seconds=1.5),
        backend="fake", model="scripted",
    )  # fmt: skip


def test_turns_round_trip_with_their_results(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    sid = store.create()
    first = store.start_turn(sid, "Who played Corliss Archer?", "trace-1")
    assert (first.n, first.status) == (1, "running")
    first.status, first.result = "answered", result("Who played Corliss Archer?", "Shirley Temple")
    store.finish_turn(sid, first)
    second = store.start_turn(sid, "What position did she hold?", "trace-2")
    second.status, second.error = "error_llm_server", "the LLM at http://127.0.0.1:1/v1 answered 500"
    store.finish_turn(sid, second)

    turns = SessionStore(tmp_path / "ckpt.sqlite").turns(sid)  # a new process sees the same session
    expected = [(1, "trace-1", "answered"), (2, "trace-2", "error_llm_server")]
    assert [(t.n, t.trace_id, t.status) for t in turns] == expected
    assert turns[0].answered and turns[0].result.citations[0].quote == "She was Chief of Protocol."
    assert not turns[1].answered and turns[1].error.endswith("answered 500")


def test_a_killed_question_stays_visible_as_running(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    sid = store.create()
    store.start_turn(sid, "Who?", "trace-1")  # the process dies before finish_turn
    assert [t.status for t in store.turns(sid)] == ["running"]


def test_resolve_accepts_ids_unique_prefixes_and_last(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    ids = [store.create() for _ in range(3)]
    store.start_turn(ids[0], "the most recently used", "t")  # touching a session makes it `last`
    assert store.resolve("last") == ids[0]
    for sid in ids:
        assert store.resolve(sid) == sid
        prefix = next(sid[:n] for n in range(1, 9) if sum(o.startswith(sid[:n]) for o in ids) == 1)
        assert store.resolve(prefix) == sid
    with pytest.raises(UsageError, match="no chat session 'zzz'"):
        store.resolve("zzz")
    with pytest.raises(UsageError, match="no chat session '%'"):  # LIKE wildcards are not patterns here
        store.resolve("%")


def test_an_ambiguous_prefix_is_an_error(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    with pytest.raises(UsageError, match="no chat sessions yet"):
        store.resolve("last")
    store.create(), store.create()
    with pytest.raises(UsageError, match="matches 2 sessions"):
        store.resolve("")


def test_sessions_are_listed_most_recent_first_with_the_first_question_as_title(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    old, new = store.create(), store.create()
    store.start_turn(old, "first question of old", "t1")
    store.start_turn(new, "first question of new", "t2")
    store.start_turn(new, "second question of new", "t3")
    listed = store.sessions()
    assert [(s.id, s.turns, s.title) for s in listed] == [(new, 2, "first question of new"),
                                                          (old, 1, "first question of old")]  # fmt: skip


def test_empty_sessions_are_discarded_and_used_ones_kept(tmp_path):
    store = SessionStore(tmp_path / "ckpt.sqlite")
    empty, used = store.create(), store.create()
    store.start_turn(used, "q", "t")
    store.discard_if_empty(empty)
    store.discard_if_empty(used)
    assert [s.id for s in store.sessions()] == [used]


def test_an_unusable_store_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UsageError, match="cannot open the session store"):
        SessionStore(blocker / "ckpt.sqlite").create()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(UsageError, match="cannot open the session store"):
        SessionStore(garbage).sessions()
