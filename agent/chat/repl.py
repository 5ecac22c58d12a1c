"""The chat loop: read a line, run a slash command or research the question, show the answer; repeat.

Ctrl-C while a question runs cancels it (its trajectory ends `cancelled`) and the session goes on; Ctrl-C
at the prompt right after another Ctrl-C (or EOF, or /quit) leaves. While a question runs, SIGINT only
raises a flag that the waiting loop polls, so an interrupt never lands half-way through drawing.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from deepsearch.traces.recorder import new_trace_id, termination_for
from rich.live import Live
from rich.text import Text

from ..commands.ask import output_format, print_result, report_summary, write_report
from ..errors import DeepsearchError
from ..events import ProgressEvent
from ..report.models import ReportRequest
from .commands import QUIT, ReportAsk, run_command
from .engine import Clarification, Engine, Job
from .layout import run_layout
from .progress import RunView, describe
from .session import ChatSession
from .store import Turn

POLL_S = 0.1  # how often the waiting loop looks at the Ctrl-C flag
CANCEL_WAIT_S = 30.0


@contextmanager
def sigint_flag() -> Iterator[threading.Event]:
    """While inside, Ctrl-C sets the returned event instead of raising KeyboardInterrupt."""
    pressed = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.set())
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


class Repl:
    def __init__(self, session: ChatSession, engine: Engine):
        self.session, self.engine = session, engine
        self.console = session.console

    # ---- the loop ------------------------------------------------------------------------------
    def greet(self) -> None:
        s, backend = self.session, self.engine.backend
        self.console.print(
            Text.assemble(("deepsearch chat", "bold"), f" · session {s.id} · {self.engine.sources} · "
                          f"{backend.name}:{backend.model or 'default'}")  # fmt: skip
        )
        for t in s.turns[-3:]:
            status = "interrupted" if t.status == "running" else t.status  # the process died mid-question
            answer = (t.result.short_answer or t.result.answer) if t.result else f"({status})"
            self.console.print(Text(f"  {t.n}. {t.question} → {' '.join(answer.split())[:100]}", style="dim"))
        self.console.print(Text("Ask a question. /help lists commands; Ctrl-C cancels; Ctrl-C twice or /quit exits.",
                                style="dim"))  # fmt: skip

    def run(self) -> None:
        self.greet()
        last = self.session.turns[-1] if self.session.turns else None
        if last is not None and last.status == "running":  # the process died mid-question: continue it there
            self.console.print(Text(f"continuing question {last.n} from its last checkpoint", style="dim"))
            with sigint_flag() as interrupted:
                self._ask(last.question, interrupted, resumed=last)
        armed = False  # the last thing that happened was a Ctrl-C: another one at the prompt exits
        while True:
            try:
                line = self._read("> " if self.session.plain else "[bold blue]❯[/bold blue] ")
            except KeyboardInterrupt:
                if armed:
                    break
                armed = True
                self.console.print("\n(Ctrl-C again or /quit to leave)")
                continue
            except EOFError:
                break
            armed = False
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                outcome = run_command(self.session, line)
                if outcome == QUIT:
                    break
                if isinstance(outcome, ReportAsk):
                    armed = self.ask(outcome.question, report=outcome) == "cancelled"
                continue
            armed = self.ask(line) == "cancelled"
        sid = self.session.id
        if self.session.turns:
            self.console.print(f"session {sid} saved · `deepsearch chat --resume {sid}` continues it", markup=False)
        else:
            self.session.store.discard_if_empty(sid)

    # ---- one question --------------------------------------------------------------------------
    def ask(self, question: str, report: ReportAsk | None = None) -> str:
        """Research one question inside the session (as a report for /report); returns the turn's final status."""
        with sigint_flag() as interrupted:  # from here on Ctrl-C means "cancel this question", never a crash
            return self._ask(question, interrupted, report=report)

    def _ask(
        self, question: str, interrupted: threading.Event, resumed: Turn | None = None, report: ReportAsk | None = None
    ) -> str:
        """Ask `question` as a new turn, or continue the `resumed` turn's run (its trace id is the thread)."""
        s = self.session
        if resumed is None:
            turn = s.store.start_turn(s.id, question, new_trace_id())
            s.turns.append(turn)
        else:
            turn = resumed
        view = RunView()
        sink = self._print_event if s.plain else view.apply
        request = ReportRequest(words=s.settings.report.words) if report is not None else None
        if resumed is None:
            job = self.engine.ask(question, s.history(), turn.trace_id, sink, report=request)
        else:  # a new trajectory; the checkpoint thread stays the turn's first trace id
            job = self.engine.ask(question, s.history(), new_trace_id(), sink, resume_thread=turn.trace_id)
        live = None
        if not s.plain:
            live = Live(get_renderable=lambda: run_layout(view.snapshot(), question), console=self.console,
                        refresh_per_second=8)  # fmt: skip
        with live or nullcontext():
            self._wait(job, view, live, interrupted)
            self._settle(job, turn)
            view.finish(turn.status, turn.result.usage if turn.result else None)
        if turn.result is not None:
            print_result(self.console, turn.result)
            if report is not None and report.path is not None and turn.result.report is not None:
                self._save_report(turn.result, report.path)
        elif turn.status == "cancelled":
            self.console.print(Text(f"cancelled · trace {turn.trace_id} · the session goes on", style="yellow"))
        else:
            self.console.print(Text(f"error: {turn.error} (trace {turn.trace_id})", style="red"))
        return turn.status

    def _save_report(self, result, path) -> None:
        try:
            write_report(result, output_format(None, path), path)
        except DeepsearchError as e:
            self.console.print(Text(f"error: {e}", style="red"))
        else:
            self.console.print(Text(f"report saved to {path}: {report_summary(result)}", style="dim"))

    def _settle(self, job: Job, turn: Turn) -> None:
        """Record how the question ended; any failure is reported in the session, which goes on."""
        try:
            turn.result = job.outcome()
            turn.status, turn.error = turn.result.termination, None
            if turn.status.startswith("error_"):  # the run still answered or abstained; say what failed
                turn.error = next((n for n in turn.result.notes if n.startswith("LLM call failed")), None)
        except asyncio.CancelledError:
            turn.status, turn.error = "cancelled", None
        except DeepsearchError as e:  # the LLM died, the budget is impossible, …: a message the user can act on
            turn.status, turn.error = termination_for(e), str(e)
        except Exception as e:  # a bug must not end the session either; the trajectory holds the details
            turn.status, turn.error = termination_for(e), f"internal error: {type(e).__name__}: {e}"
        self.session.store.finish_turn(self.session.id, turn)

    def _print_event(self, event: ProgressEvent) -> None:
        line = describe(event)
        if line is not None:
            self.console.print(line, markup=False, highlight=False)

    def _wait(self, job: Job, view: RunView, live: Live | None, interrupted: threading.Event) -> None:
        """Until the question is done: put clarifying questions to the user and turn Ctrl-C into cancel."""
        cancelling = False
        while True:
            if interrupted.is_set() and not cancelling:
                cancelling = True
                job.cancel()
                if live is None:
                    self.console.print("cancelling…")
                view.cancelling()
            try:
                message = job.messages.get(timeout=CANCEL_WAIT_S if cancelling else POLL_S)
            except queue.Empty:
                if cancelling:
                    return  # the run is slow to unwind; outcome() waits for it
                continue
            if not isinstance(message, Clarification):
                return
            self._clarify(message, live, job)

    def _clarify(self, message: Clarification, live: Live | None, job: Job) -> None:
        """Ask the agent's clarifying question, with the normal Ctrl-C (which cancels the question)."""
        if live is not None:
            live.stop()
        request = message.request
        self.console.print(Text.assemble(("? ", "bold yellow"), request.question))
        if request.assumption:
            self.console.print(Text(f"  (Enter: {request.assumption})", style="dim"))
        handler = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            message.reply(self._read("  answer: "))
        except (KeyboardInterrupt, EOFError):
            job.cancel()
        finally:
            signal.signal(signal.SIGINT, handler)
        if live is not None:
            live.start()

    def _read(self, prompt: str) -> str:
        line = self.console.input(prompt)
        if not sys.stdin.isatty():  # piped input is not echoed: show what was read, like a transcript
            self.console.print(line, markup=False, highlight=False)
        return line
