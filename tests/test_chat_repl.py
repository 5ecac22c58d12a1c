"""The chat loop in-process over the sample index: follow-ups, Ctrl-C, clarifying questions, a dying LLM."""

import os
import signal
import threading

import pytest
from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm.openai_backend import OpenAIBackend
from deepsearch.traces.reader import find_log, load_trajectory

from tests.chat_support import CTRL_C, ChatRun
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, fake_backend, section, server_responder

Q1 = "Who portrayed Corliss Archer in the film Kiss and Tell?"
FOLLOW_UP = "What government position did she hold?"
STANDALONE = "What government position did Shirley Temple hold?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


def trajectory(run: ChatRun, turn):
    return load_trajectory(find_log(run.settings.traces.dir, turn.trace_id))


def rewriting_intake(request):
    """Resolves "she" from the conversation, as a capable model would."""
    if "Shirley Temple" in section(request, "Conversation so far") and "she" in section(request, "New question"):
        return {"standalone_question": STANDALONE, "ambiguous": False}
    return {"standalone_question": section(request, "New question"), "ambiguous": False}


def test_a_follow_up_is_asked_with_the_session_history(tmp_path, index_dir, monkeypatch):
    model = ScriptedModel(intake=rewriting_intake)
    run = ChatRun(tmp_path, index_dir, fake_backend(model), [Q1, FOLLOW_UP, "/sources"], monkeypatch)
    first, second = run.turns
    assert (first.status, second.status) == ("answered", "answered")
    intakes = [r for role, r in model.calls if role == "intake"]
    assert section(intakes[0], "Conversation so far") == "(none)"
    history = section(intakes[1], "Conversation so far")
    assert f"Q: {Q1}" in history and first.result.answer in history
    planners = [section(r, "Question") for role, r in model.calls if role == "planner" and section(r, "Question")]
    assert planners[-1] == STANDALONE  # the graph researched the rewritten question
    assert trajectory(run, second).resolved_question == STANDALONE
    assert run.text.count("judge answer: accept") == 2  # plain progress lines for both questions
    assert "[1] " in run.text.split("> /sources")[-1]  # /sources listed the last answer's citations


def test_ctrl_c_cancels_the_question_and_the_session_goes_on(tmp_path, index_dir, monkeypatch):
    interrupted = []

    def judge(request):
        if not interrupted:  # the user presses Ctrl-C while the first question is being judged
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return ScriptedModel.default_judge(request)

    model = ScriptedModel(judge=judge)
    lines = [Q1, Q1, CTRL_C, CTRL_C, "never read"]
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN under a shell's background job
    run = ChatRun(tmp_path, index_dir, fake_backend(model, latency_s=0.2), lines, monkeypatch)
    cancelled, answered = run.turns
    assert (cancelled.status, answered.status) == ("cancelled", "answered")
    traj = trajectory(run, cancelled)
    assert traj.final.termination == "cancelled" and traj.status == "complete"
    assert "cancelling…" in run.text and f"cancelled · trace {cancelled.trace_id}" in run.text
    # The cancelled question is not history: the second run started from an empty conversation.
    intakes = [r for role, r in model.calls if role == "intake"]
    assert section(intakes[-1], "Conversation so far") == "(none)"
    assert "(Ctrl-C again or /quit to leave)" in run.text and run.stdin.lines == ["never read"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler was put back


def test_one_ctrl_c_after_a_cancelled_question_exits(tmp_path, index_dir, monkeypatch):
    def judge(request):
        os.kill(os.getpid(), signal.SIGINT)
        return ScriptedModel.default_judge(request)

    model = ScriptedModel(judge=judge)
    run = ChatRun(tmp_path, index_dir, fake_backend(model, latency_s=0.2), [Q1, CTRL_C, "never read"], monkeypatch)
    assert [t.status for t in run.turns] == ["cancelled"]
    assert run.stdin.lines == ["never read"] and "Ctrl-C again" not in run.text


def test_ctrl_c_twice_at_the_prompt_exits_but_not_once(tmp_path, index_dir, monkeypatch):
    lines = [CTRL_C, "/help", CTRL_C, "/budget", CTRL_C, CTRL_C, "never read"]
    run = ChatRun(tmp_path, index_dir, fake_backend(ScriptedModel()), lines, monkeypatch)
    assert run.stdin.lines == ["never read"]
    assert run.text.count("(Ctrl-C again or /quit to leave)") == 3
    assert "/sources [N]" in run.text and "error: no answered question in this session yet" in run.text
    assert f"session {run.session.id} saved" not in run.text and run.store.sessions() == []  # nothing asked


def ambiguous_intake(request):
    if section(request, "New question") == "Who played Corliss Archer?":
        return {"standalone_question": "Who played Corliss Archer?", "ambiguous": True,
                "assumption": "the 1945 film Kiss and Tell", "clarifying_question": "In the film or on the radio?"}
    # The reply, read against the clarifying exchange.
    assert "In the film or on the radio?" in section(request, "Conversation so far")
    return {"standalone_question": "Who played Corliss Archer in the film Kiss and Tell?", "ambiguous": False}


def test_the_agent_asks_a_clarifying_question_and_the_reply_goes_into_the_same_run(tmp_path, index_dir, monkeypatch):
    model = ScriptedModel(intake=ambiguous_intake)
    run = ChatRun(tmp_path, index_dir, fake_backend(model), ["Who played Corliss Archer?", "the film"], monkeypatch)
    (turn,) = run.turns
    assert turn.status == "answered" and turn.result.assumption is None
    assert "? In the film or on the radio?" in run.text and "(Enter: the 1945 film Kiss and Tell)" in run.text
    planned = [section(r, "Question") for role, r in model.calls if role == "planner"][0]
    assert planned == "Who played Corliss Archer in the film Kiss and Tell?"
    traj = trajectory(run, turn)  # one run, one trajectory: the question, the clarification, the answer
    asked = [s for s in traj.steps if s.kind == "judge" and s.decision == "ask"]
    assert asked and asked[0].labels["reply"] == "the film"
    assert traj.resolved_question == planned and traj.final.termination == "answered"


def test_a_blank_reply_keeps_the_agents_assumption(tmp_path, index_dir, monkeypatch):
    model = ScriptedModel(intake=ambiguous_intake)
    run = ChatRun(tmp_path, index_dir, fake_backend(model), ["Who played Corliss Archer?", ""], monkeypatch)
    (turn,) = run.turns
    assert turn.result.assumption == "the 1945 film Kiss and Tell"
    assert [r for r, _ in model.calls].count("intake") == 1  # no rewrite without a reply


def test_ctrl_c_at_the_clarifying_question_cancels_the_run(tmp_path, index_dir, monkeypatch):
    model = ScriptedModel(intake=ambiguous_intake)
    run = ChatRun(tmp_path, index_dir, fake_backend(model), ["Who played Corliss Archer?", CTRL_C], monkeypatch)
    (turn,) = run.turns
    assert turn.status == "cancelled" and trajectory(run, turn).final.termination == "cancelled"
    assert "planner" not in [r for r, _ in model.calls]


def openai_backend(server: FakeOpenAIServer) -> OpenAIBackend:
    return OpenAIBackend(LLMSettings(base_url=[server.base_url], model="fake-model", server_kind="vllm",
                                     max_retries=0, timeout_s=5))  # fmt: skip


def test_an_llm_server_error_mid_run_still_ends_in_an_answer_on_record(tmp_path, index_dir, monkeypatch):
    # Request 3 is the judge's (after intake and plan): it fails (500, no retries), the round keeps fusion order,
    # and the run still answers from it, its termination naming the failure.
    with FakeOpenAIServer(responder=server_responder(ScriptedModel()), faults={3: "500"}) as server:
        backend = openai_backend(server)
        run = ChatRun(tmp_path, index_dir, backend, [Q1, Q1], monkeypatch)
    first, second = run.turns
    assert first.result is not None and first.result.answer and first.status == "error_llm_server"
    failed_calls = [s for s in trajectory(run, first).steps if s.kind == "llm_call" and s.error]
    assert failed_calls and "answered 500" in failed_calls[0].error
    assert second.status == "answered"


def test_an_llm_endpoint_that_dies_mid_run_is_reported_in_the_session(tmp_path, index_dir, monkeypatch):
    model = ScriptedModel()

    def dying(body):
        if len(server.requests) == 3:  # the server goes away after its third answer: stop listening ...
            threading.Thread(target=server.stop).start()
        return server_responder(model)(body)

    # ... and drop the kept-alive connection on the next request.
    server = FakeOpenAIServer(responder=dying, faults={n: "reset" for n in range(4, 100)}).start()
    run = ChatRun(tmp_path, index_dir, openai_backend(server), [Q1, "/sources", Q1], monkeypatch)
    failed, again = run.turns
    assert failed.status == "error_llm_unreachable" and "cannot reach the LLM" in failed.error
    assert trajectory(run, failed).final.termination == "error_llm_unreachable"
    assert "LLM call failed" in failed.result.notes[0]  # it still ended in an abstention that says why
    assert again.status == "error_llm_unreachable"  # ... and questions, which say the LLM is still gone
    assert f"session {run.session.id} saved" in run.text


async def _die_mid_question(tmp_path, index_dir, trace_id: str) -> ScriptedModel:
    """The run of a chat turn killed in its second research round (its checkpoints stay behind)."""
    from deepsearch.agent import aresearch

    from tests.graph_support import local_tools, settings_for

    class Killed(BaseException):
        pass

    def judge(request):
        if sum(role == "judge" for role in model.roles()) == 2:
            raise Killed
        return {"answer": "unknown", "answered": False, "decision": "continue", "next_queries": ["Janet Waldo"]}

    model = ScriptedModel(judge=judge, query_rewriter={"queries": ["Kiss and Tell 1945 comedy"]})
    settings = settings_for(tmp_path, max_rounds=3)
    with pytest.raises(Killed):
        await aresearch(Q1, settings=settings, backend=fake_backend(model), tools=local_tools(index_dir, settings),
                        trace_id=trace_id, thread_id=trace_id)  # fmt: skip
    return model


def test_resuming_a_session_killed_mid_question_continues_that_question(tmp_path, index_dir, monkeypatch):
    import asyncio

    from deepsearch.agent.chat.store import SessionStore

    from tests.graph_support import settings_for

    store = SessionStore(settings_for(tmp_path).agent.checkpoint_db)
    session_id = store.create()
    turn = store.start_turn(session_id, Q1, "20261201-000000000-deadbeef")  # status "running": the process died
    asyncio.run(_die_mid_question(tmp_path, index_dir, turn.trace_id))

    model = ScriptedModel()
    run = ChatRun(tmp_path, index_dir, fake_backend(model), [], monkeypatch, resume=session_id, max_rounds=3)
    assert f"continuing question {turn.n} from its last checkpoint" in run.text
    assert model.roles()[0] == "judge"  # round 2's judge: rounds 1 and 2 were not searched again
    (continued,) = run.turns
    assert continued.status == "answered" and continued.result.short_answer == "Chief of Protocol"
