"""`deepsearch chat` as a person uses it: started in tmux, typed into with send-keys, read with capture-pane.

The model is the fake OpenAI-compatible server (answering each prompt by its role, like the scripted
model), the corpus the sample index. Skipped, with the reason, where tmux is not installed.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
DEEPSEARCH = Path(sys.executable).with_name("deepsearch")


def colour_codes(screen: str) -> list[str]:
    """SGR parameters that set a colour (bold and dim are fine without colour; 39/49 reset to the default)."""
    params = [p for codes in re.findall(r"\x1b\[([0-9;]*)m", screen) for p in codes.split(";") if p.isdigit()]
    return [p for p in params if 30 <= int(p) <= 38 or 40 <= int(p) <= 48 or 90 <= int(p) <= 107]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_sample_index(tmp_path_factory.mktemp("index"))


class Terminal:
    """A tmux pane on a private tmux server running one command."""

    def __init__(self, command: str, env: dict[str, str], width: int = 150, height: int = 50):
        self.socket = f"deepsearch-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # The pane's own size, not COLUMNS/LINES inherited from whoever ran pytest; keep the pane after the
        # command ends so the exit status can be read.
        script = f"env -u COLUMNS -u LINES {exports} {command}; echo EXITED $?; sleep 60"
        self.tmux("new-session", "-d", "-s", "chat", "-x", str(width), "-y", str(height), script)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-S", "-200", "-t", "chat")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "chat", *keys)

    def shows(self, text: str, after: str = "") -> str | None:
        """The screen if `text` is on it (below the first `after`, when given)."""
        screen = self.screen()
        if after:
            if after not in screen:
                return None
            return screen if text in screen.split(after, 1)[1] else None
        return screen if text in screen else None

    def wait_for(self, text: str, timeout_s: float = 60.0, after: str = "") -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (screen := self.shows(text, after)) is not None:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")

    def enter(self, line: str) -> None:
        """Type a line at the prompt, as a person does: see it echoed, then press Enter.

        Keys typed while the program is still setting up its line editor can be discarded; then type again.
        """
        lines_before = self.screen().count(line)
        for _ in range(5):
            self.type(line)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                if self.screen().count(line) > lines_before:
                    self.type("Enter")
                    return
                time.sleep(0.1)
        raise AssertionError(f"typing {line!r} never showed on the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def chat(tmp_path, index_dir, cli_env):
    terminals: list[Terminal] = []
    servers: list[FakeOpenAIServer] = []

    def start(latency_s: float = 0.0, colour: bool = True) -> Terminal:
        server = FakeOpenAIServer(responder=server_responder(ScriptedModel()), latency_s=latency_s).start()
        servers.append(server)
        env = {k: v for k, v in cli_env.items() if k not in ("COLUMNS", "NO_COLOR")}  # the pane sets the width
        env |= {"TERM": "xterm-256color", "PATH": os.environ["PATH"]}
        if not colour:
            env["NO_COLOR"] = "1"
        command = (f"{DEEPSEARCH} chat --index {index_dir} --no-web --llm-base-url {server.base_url} "
                   f"--backend openai --llm-model fake-model")  # fmt: skip
        terminals.append(Terminal(command, env))
        return terminals[-1]

    yield start
    for t in terminals:
        t.close()
    for s in servers:
        s.stop()


def test_a_session_shows_the_live_run_the_answer_and_survives_a_cancelled_question(chat):
    term = chat(latency_s=0.2)
    term.wait_for("❯")
    term.enter(QUESTION)
    screen = term.wait_for("trace ", after=QUESTION)
    # The live layout's last frame stays above the answer: plan, queries, evidence, judge, gain, budgets.
    for shown in ("1 sub-goal(s)", "● g1", "→ Shirley Temple", "queries", "kept 2 · dropped 3", "g1: done",
                  "answer: accept", "info gain", "llm_calls", "searches", "answered ·"):  # fmt: skip
        assert shown in screen, shown
    assert "Shirley Temple served as Chief of Protocol of the United States. [1][2]" in screen
    assert "[1] " in screen and "[2] " in screen and re.search(r"\b[3-6] LLM call\(s\)", screen)  # intake … verify
    assert colour_codes(term.screen(escapes=True))  # a colour terminal gets colour

    term.enter("/sources")
    term.wait_for("Kiss and Tell is a 1945 American comedy film", after="/sources")
    term.enter("Who portrayed Corliss Archer?")
    term.wait_for("Ctrl-C cancels", after="Who portrayed Corliss Archer?")  # its live view is up
    term.type("C-c")
    screen = term.wait_for("the session goes on", after="Who portrayed Corliss Archer?")
    assert "cancelled ·" in screen and "EXITED" not in screen
    term.type("C-c")  # a second Ctrl-C, now at the prompt, leaves
    term.wait_for("EXITED 0")
    assert "saved · `deepsearch chat --resume" in term.screen()


def test_no_color_gives_plain_progress_lines(chat):
    term = chat(colour=False)
    term.wait_for(">")
    term.enter(QUESTION)
    screen = term.wait_for("trace ", after=QUESTION)
    assert "local search: " in screen and "g1 evidence: kept 2, dropped 3" in screen
    assert "judge answer: accept" in screen and "budget: llm_calls" in screen
    progress = screen.split(QUESTION)[1].split("judge answer: accept")[0]
    assert "· Ctrl-C cancels" not in screen and "╭" not in progress  # no live panel, only lines
    assert colour_codes(term.screen(escapes=True)) == []
    term.enter("/quit")
    term.wait_for("EXITED 0")
