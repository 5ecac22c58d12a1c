"""Clarifying questions in the graph: interactive runs pause in interrupt() and resume; batch runs assume."""

import pytest
from deepsearch.agent import aresearch
from deepsearch.agent.state import ClarificationRequest
from deepsearch.traces.reader import find_log, load_trajectory

from tests.graph_support import ScriptedModel, build_sample_index, fake_backend, local_tools, section, settings_for

AMBIGUOUS = "Who played Corliss Archer?"
READING = "Who played Corliss Archer in the film Kiss and Tell?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


def intake(rewrite: str):
    def reply(request):
        if section(request, "New question") == AMBIGUOUS:
            return {"standalone_question": AMBIGUOUS, "ambiguous": True, "assumption": "the 1945 film",
                    "clarifying_question": "The film or the radio show?"}  # fmt: skip
        return {"standalone_question": rewrite, "ambiguous": False}

    return reply


async def ask(tmp_path, index_dir, model, clarify=None, checkpoint=True):
    settings = settings_for(tmp_path)
    result = await aresearch(AMBIGUOUS, settings=settings, backend=fake_backend(model), clarify=clarify,
                             tools=local_tools(index_dir, settings), checkpoint=checkpoint)  # fmt: skip
    return result, load_trajectory(find_log(settings.traces.dir, result.trace_id))


def planned(model: ScriptedModel) -> str:
    return next(section(r, "Question") for role, r in model.calls if role == "planner")


async def test_a_batch_run_records_the_assumption_and_never_pauses(tmp_path, index_dir):
    # Outside an interactive session no intake call is made: the planner notes the reading it took, and the
    # answerer is told it.
    def planner(request):
        return {"assumption": "the 1945 film", "subgoals": [{"question": AMBIGUOUS, "depends_on": []}]}

    model = ScriptedModel(intake=intake(READING), planner=planner)
    result, traj = await ask(tmp_path, index_dir, model)
    assert result.assumption == "the 1945 film" and planned(model) == AMBIGUOUS
    assert [s.decision for s in traj.steps if s.kind == "judge" and s.target == "question"] == ["assume"]
    assert "intake" not in model.roles()
    answerer = next(r for role, r in model.calls if role == "answerer")
    assert "(Read the question as: the 1945 film)" in section(answerer, "Question")


@pytest.mark.parametrize("checkpoint", [True, False])  # without SQLite checkpoints the pause is kept in memory
async def test_an_interactive_run_asks_and_goes_on_with_the_reply(tmp_path, index_dir, checkpoint):
    asked: list[ClarificationRequest] = []

    async def clarify(request):
        asked.append(request)
        return "the 1945 film"

    model = ScriptedModel(intake=intake(READING))
    result, traj = await ask(tmp_path, index_dir, model, clarify, checkpoint)
    assert asked == [ClarificationRequest(question="The film or the radio show?", assumption="the 1945 film")]
    assert planned(model) == READING and result.assumption is None and result.termination == "answered"
    rewrite = [r for role, r in model.calls if role == "intake"][1]
    assert section(rewrite, "New question") == "the 1945 film"
    assert "Q: Who played Corliss Archer?\nA: The film or the radio show?" in section(rewrite, "Conversation so far")
    assert traj.resolved_question == READING and traj.status == "complete"


async def test_a_reply_the_model_only_echoes_is_added_to_the_question(tmp_path, index_dir):
    async def clarify(request):
        return "the film"

    model = ScriptedModel(intake=intake("The film"))  # a weak model repeats the reply as the "question"
    await ask(tmp_path, index_dir, model, clarify)
    assert planned(model) == f"{AMBIGUOUS} (the film)"
