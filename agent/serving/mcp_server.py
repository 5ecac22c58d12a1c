"""The MCP server behind `deepsearch mcp`, on the official `mcp` SDK's `MCPServer`: five tools and a resource.

Tools: research, web_search, fetch_page, search_local, list_indexes (bodies in mcp_tools.py); resource:
trace://{trace_id}, a research run's trajectory. Transports: stdio (what an MCP client that launches the server
uses) and streamable HTTP at http://HOST:PORT/mcp, loopback unless the caller allows a remote host.
Also here, what the tools rely on: the indexes a client may name (`IndexRoots`) and how a run's progress
events become MCP progress notifications (`ProgressRelay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ..chat.progress import ProgressLines
from ..config import Settings
from ..errors import UsageError

if TYPE_CHECKING:
    from .mcp_tools import DeepsearchTools

HTTP_PATH = "/mcp"
INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a folder under index.dir (as `deepsearch index --name`)
_LINE_TIME = re.compile(r"^\[\d+(?:\.\d+)?s\] ")
INSTRUCTIONS = (
    "deepsearch answers hard questions by searching local document indexes and the web, judging the evidence and "
    "answering with numbered citations. Call `research` for a researched, cited answer (it reports progress and can "
    "be cancelled; its trajectory is the resource trace://TRACE_ID). `search_local`, `web_search` and `fetch_page` "
    "are the agent's own tools, one call each; `list_indexes` names the indexes this server can search."
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepsearch")
    except PackageNotFoundError:
        return ""


def build_server(settings: Settings) -> tuple[MCPServer, DeepsearchTools]:
    """The MCP server over `settings` (the CLI's config, env and flags), and its tools (close them when done)."""
    from .mcp_tools import DeepsearchTools

    tools = DeepsearchTools(settings)
    app = MCPServer(
        "deepsearch", title="deepsearch", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING"
    )
    web = ToolAnnotations(read_only_hint=True, open_world_hint=True)
    local = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    app.add_tool(tools.research, title="Research a question", annotations=web)
    app.add_tool(tools.web_search, title="Web search", annotations=web)
    app.add_tool(tools.fetch_page, title="Fetch a web page", annotations=web)
    app.add_tool(tools.search_local, title="Search a local index", annotations=local)
    app.add_tool(tools.list_indexes, title="List local indexes", annotations=local)
    app.resource("trace://{trace_id}", name="trajectory", title="Research trajectory", mime_type="application/json",
                 description=tools.read_trace.__doc__)(tools.read_trace)  # fmt: skip
    return app, tools


# ---- the indexes a client may name --------------------------------------------------------------


class IndexRoots:
    """The server's indexes: the `--index` values it was started with (a path one also by its folder's name) and
    the named indexes under `index.dir`. `resolve` maps a tool argument to one of them, or refuses it."""

    def __init__(self, settings: Settings):
        from deepsearch.tools.local_search import resolve_index_dir

        self.settings = settings
        self.index_dir = settings.index.dir.expanduser()
        self.configured: dict[str, Path] = {}  # value as configured (and a path's folder name) -> folder
        self.defaults: list[str] = []
        for value in settings.agent.indexes:
            folder = resolve_index_dir(settings.index, value)
            name = value if INDEX_NAME.match(value) else folder.name
            if not INDEX_NAME.match(name) or (name in self.configured and self.configured[name] != folder):
                name = value  # a folder name two configured paths share: each is named by its path
            self.configured.setdefault(name, folder)
            self.configured.setdefault(value, folder)
            self.defaults.append(name)

    def resolve(self, value: str) -> tuple[str, Path]:
        """(name, folder) of the index `value` names; UsageError when it is not one of the server's."""
        value = value.strip()
        if value in self.configured:
            return value, self.configured[value]
        if INDEX_NAME.match(value):
            folder = self.index_dir / value
            if not folder.is_dir():
                raise UsageError(f"no index named {value!r} (see list_indexes)")
            return value, folder
        try:
            asked = Path(value).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            asked = None
        for name, folder in self.configured.items():
            if asked is not None and folder.resolve() == asked:
                return name, folder
        raise UsageError(
            f"index {value!r} is not one this server serves: give a name from list_indexes "
            "(an index under index.dir or one the server was started with)"
        )

    def for_research(self, value: str) -> str:
        """What to hand `aresearch` for `value`: its name when that resolves to the same folder, else the folder."""
        from deepsearch.tools.local_search import resolve_index_dir

        name, folder = self.resolve(value)
        return name if resolve_index_dir(self.settings.index, name) == folder else str(folder)

    def listing(self) -> list[tuple[str, Path, bool]]:
        from deepsearch.tools import index_store as store

        seen: dict[Path, tuple[str, Path, bool]] = {}
        for name in self.defaults:
            folder = self.configured[name]
            seen.setdefault(folder.resolve(), (name, folder, True))
        try:
            named = sorted(self.index_dir.iterdir()) if self.index_dir.is_dir() else []
        except OSError:  # an unreadable index.dir: its indexes cannot be listed (nor searched)
            named = []
        for folder in named:
            if INDEX_NAME.match(folder.name) and (folder / store.MANIFEST).is_file():
                seen.setdefault(folder.resolve(), (folder.name, folder, False))
        return list(seen.values())


# ---- progress -----------------------------------------------------------------------------------


class ProgressRelay:
    """The agent's progress events as MCP progress notifications: one per line `deepsearch ask` would print
    ("g1 round 1: search (2 queries)"), progress = lines so far. Events may come from any thread; lines are
    sent in order by `pump`, and a failing send (the client went away) never stops the run."""

    def __init__(self, send: Callable[[float, float | None, str | None], Awaitable[None]]):
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._lines = ProgressLines(self._line)
        self.steps = 0
        self.messages: list[str] = []

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _line(self, text: str) -> None:
        self._queue.put_nowait(_LINE_TIME.sub("", text))

    def feed(self, event: Any) -> None:
        self._on_loop(self._lines.feed, event)

    def say(self, text: str) -> None:
        self._on_loop(self._queue.put_nowait, text)

    def close(self, at_s: float, final: str) -> None:
        self._lines.close(at_s)
        self._queue.put_nowait(final)
        self._queue.put_nowait(None)

    async def pump(self) -> None:
        while (message := await self._queue.get()) is not None:
            self.steps += 1
            self.messages.append(message)
            with contextlib.suppress(Exception):  # progress is best effort: a failed send never stops the run
                await self._send(self.steps, None, message)


# ---- transports ---------------------------------------------------------------------------------


def parse_http_address(value: str, allow_remote: bool) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) as (host, port); a non-loopback host needs `allow_remote`."""
    host, sep, port_text = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--http wants HOST:PORT, e.g. 127.0.0.1:8000 (got {value!r})")
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"--http {value}: {host} is not a loopback address; the server has no authentication, so serving it "
            "beyond this machine needs --allow-remote"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_stdio(settings: Settings) -> None:
    app, tools = build_server(settings)
    try:
        await app.run_stdio_async()
    finally:
        await tools.aclose()


async def serve_http(settings: Settings, host: str, port: int) -> None:
    """Streamable HTTP at http://HOST:PORT/mcp; port 0 picks a free port. The URL goes to stderr once listening."""
    import uvicorn

    app, tools = build_server(settings)
    starlette_app = app.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(starlette_app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    print(f"deepsearch mcp: serving streamable HTTP at http://{shown}:{bound}{HTTP_PATH}", file=sys.stderr, flush=True)
    if not is_loopback(host):
        print("deepsearch mcp: warning: reachable from other machines, without authentication", file=sys.stderr)
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        await tools.aclose()
