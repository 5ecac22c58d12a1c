"""Does a chat template render a training record whole? (`traces export --check-template SOURCE`)

A chat template with no tool support silently drops what it does not render: the embedded SmolLM2
GGUF's template writes each message's role and `content` and nothing else, so an assistant turn's
`tool_calls` (and the `tools` specs) never reach the trainer. This module renders each exported record
the way transformers does (`render_jinja_template`, the function behind `apply_chat_template` and
TRL's SFTTrainer) and looks for every piece of the record in the rendering.

Sources (`load_chat_template`): a GGUF file (its `tokenizer.chat_template`, read from the metadata
only), a `tokenizer_config.json` / `chat_template.json` (its `chat_template`: one string or a list of
`{"name", "template"}`), a plain Jinja file, or a model directory holding one of those. When a source
holds several named templates and no name is given, "tool_use" is taken if there is one (what
transformers picks for a call that passes tools, and deepsearch's records carry tools), else
"default", else the first.

Records: `messages` (+ `tools`, a JSON string as the export writes it, or a list), prompt-completion
(`prompt` + `completion` lists, rendered as one conversation), preference (`prompt` + `chosen` /
`rejected`: prompt+chosen and prompt+rejected each rendered and checked) and ShareGPT (`system`,
`conversations` of `{"from", "value"}`, `tools`). ShareGPT turns map as TRL's maybe_convert_to_chatml
does (human→user, gpt→assistant, system), plus LLaMA-Factory's tool turns: a `function_call` turn (a
JSON `{"name", "arguments"}` or a list of them) becomes an assistant message with `tool_calls`, an
`observation` turn becomes a tool message answering the next pending call (when a `function_call`
held N > 1 calls and the observation is a JSON list of N results, one tool message per result: the
shape deepsearch's own ShareGPT export writes).

Records are rendered as given: after a round trip through HF `datasets` each message carries every
key any message has, with None where it had none (a user message gets `tool_calls: None`), and that
is what a trainer hands the template. A template must treat a None-valued key as absent.

What counts as rendered, in message order (each piece is searched after the previous message's, so
one rendering cannot satisfy two messages; message numbers are 0-based indexes into the rendered
conversation):
- a message's content (and an assistant's reasoning), compared stripped, as-is or JSON-escaped
  (templates that `tojson` it);
- each tool call's function name and every leaf value of its arguments (strings as-is or JSON-escaped,
  numbers as written), before the next message's content;
- each tool spec's function name and description, anywhere in the rendering.
The mask kind says how a trainer can build an assistant-only loss mask: "generation" when the
template's `{% generation %}` spans hold every rendered assistant piece and no other message's,
"located" when the template has no generation spans (the assistant pieces were found in order, so
a mask can be built from their offsets), "none" otherwise. A record is ok when nothing is missing and
the mask is not "none".
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from deepsearch.agent.errors import UsageError
from pydantic import BaseModel, Field

MaskKind = Literal["generation", "located", "none"]

_TRAIN_EXTRA = "pip install 'deepsearch[train]'"
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
_REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")
_MASK_RANK = {"none": 0, "located": 1, "generation": 2}
MAX_EXAMPLES = 5
_MAX_EXAMPLE_LINES = 10


class ChatTemplate(BaseModel):
    text: str
    source: str
    name: str = "default"


class RenderCheck(BaseModel):
    id: str | None = None
    ok: bool
    mask: MaskKind
    missing: list[str] = Field(default_factory=list)
    reason: str | None = Field(None, description="the first problem, without message numbers (for counting)")


class FailureExample(BaseModel):
    id: str | None
    missing: list[str]


class TemplateReport(BaseModel):
    source: str
    name: str
    records: int = 0
    rendered_whole: int = 0
    failures: dict[str, int] = Field(default_factory=dict, description="failed records by first reason")
    masks: dict[str, int] = Field(default_factory=dict)
    examples: list[FailureExample] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rendered_whole == self.records

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"chat template {self.source} ({self.name}): {self.rendered_whole}/{self.records} records rendered whole",
            "  loss mask: " + (", ".join(f"{k} {v}" for k, v in sorted(self.masks.items())) or "-"),
        ]
        lines += [f"  {count} × {reason}" for reason, count in sorted(self.failures.items(), key=lambda kv: -kv[1])]
        for ex in self.examples:
            lines.append(f"  e.g. {ex.id or '(no id)'}: " + "; ".join(ex.missing))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- loading


def load_chat_template(source: Path | str, name: str | None = None) -> ChatTemplate:
    """The chat template in SOURCE (GGUF, tokenizer_config.json, chat_template.json, .jinja, or a directory).

    NAME picks one of several named templates; errors a user can cause raise a one-line UsageError.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        for candidate in ("chat_template.jinja", "chat_template.json", "tokenizer_config.json"):
            if (path / candidate).is_file():
                return load_chat_template(path / candidate, name)
        raise UsageError(
            f"{path}: no chat_template.jinja, chat_template.json or tokenizer_config.json in this directory"
        )
    if not path.is_file():
        raise UsageError(f"{path}: no such chat template file")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UsageError(f"{path}: cannot read it: {e.strerror or e}") from None
    if path.suffix.lower() == ".gguf" or head == b"GGUF":
        text, chosen = _from_gguf(path, head, name)
    elif path.suffix.lower() == ".json":
        text, chosen = _from_json(path, name)
    else:
        if name not in (None, "default"):
            raise UsageError(f"{path}: a plain template file has no template named {name!r}")
        try:
            text, chosen = path.read_text(encoding="utf-8"), "default"
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not a UTF-8 text file (expected a Jinja chat template)") from None
    if not text.strip():
        raise UsageError(f"{path}: the chat template is empty")
    error = _syntax_error(text)
    if error:
        raise UsageError(f"{path}: {error}")
    return ChatTemplate(text=text, source=str(path), name=chosen)


def _pick(path: Path, named: dict[str, str], name: str | None) -> tuple[str, str]:
    if name is not None:
        if name not in named:
            raise UsageError(f"{path}: no chat template named {name!r} (it has {', '.join(map(repr, named))})")
        return named[name], name
    for preferred in ("tool_use", "default"):
        if preferred in named:
            return named[preferred], preferred
    first = next(iter(named))
    return named[first], first


def _from_json(path: Path, name: str | None) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    value = data.get("chat_template") if isinstance(data, dict) else None
    if value is None:
        raise UsageError(f"{path}: no chat_template in this file")
    if isinstance(value, str):
        return _pick(path, {"default": value}, name)
    if isinstance(value, list) and value:
        named: dict[str, str] = {}
        for item in value:
            if not (
                isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("template"), str)
            ):
                raise UsageError(f'{path}: chat_template list entries must be {{"name", "template"}} strings')
            named[item["name"]] = item["template"]
        return _pick(path, named, name)
    raise UsageError(f"{path}: chat_template must be a string or a list of named templates")


def _from_gguf(path: Path, head: bytes, name: str | None) -> tuple[str, str]:
    if head != b"GGUF":
        raise UsageError(f"{path}: not a GGUF file (no GGUF magic at its start)")
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise UsageError(f"reading a GGUF's chat template needs gguf: {_TRAIN_EXTRA}") from None
    try:
        reader = _read_gguf_metadata(path)
    except (ValueError, IndexError, KeyError, OSError, struct.error) as e:
        raise UsageError(
            f"{path}: cannot read its GGUF metadata: {str(e).splitlines()[0] if str(e) else e!r}"
        ) from None
    named: dict[str, str] = {}
    for key, field in reader.fields.items():
        if key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template."):
            text = _gguf_string(field)
            if text is not None:
                named[
                    "default" if key == "tokenizer.chat_template" else key.removeprefix("tokenizer.chat_template.")
                ] = text
    if not named:
        raise UsageError(f"{path}: no chat template in this GGUF (no tokenizer.chat_template)")
    return _pick(path, named, name)


def _gguf_string(field: Any) -> str | None:
    from gguf import GGUFValueType

    if list(field.types) != [GGUFValueType.STRING] or not field.data:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")


def _read_gguf_metadata(path: Path) -> Any:
    """A GGUFReader over the key/value metadata only: arrays are skipped, tensors not indexed.

    GGUFReader parses every metadata value, and the vocabulary and merges arrays (~100k strings for
    SmolLM2) take seconds; the template needs none of them. The subclass leans on GGUFReader's
    internals; if they change, the plain reader (slower, same result) is used.
    """
    from gguf import GGUFReader

    try:
        return _metadata_reader_class(GGUFReader)(path)
    except (TypeError, AttributeError, NotImplementedError):
        return GGUFReader(path)


_METADATA_READER: type | None = None


def _metadata_reader_class(base: type) -> type:
    global _METADATA_READER
    if _METADATA_READER is not None:
        return _METADATA_READER
    from gguf import GGUFValueType

    class MetadataReader(base):  # type: ignore[misc, valid-type]
        def _get_field_parts(self, orig_offs: int, raw_type: int):
            if GGUFValueType(raw_type) != GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            order = "<" if (self.byte_order == "I") == (sys.byteorder == "little") else ">"
            buf = memoryview(self.data)
            item_type, count = struct.unpack_from(order + "IQ", buf, orig_offs)
            offs = orig_offs + 12
            item = GGUFValueType(item_type)
            if item == GGUFValueType.STRING:
                unpack = struct.Struct(order + "Q").unpack_from
                for _ in range(count):
                    offs += 8 + unpack(buf, offs)[0]
            elif item in self.gguf_scalar_to_np:
                offs += count * self.gguf_scalar_to_np[item]().itemsize
            else:  # nested arrays: rare, parse them the ordinary way
                return super()._get_field_parts(orig_offs, raw_type)
            if offs > len(buf):
                raise ValueError("metadata array runs past the end of the file")
            return offs - orig_offs, [], [], [GGUFValueType.ARRAY, item]

        def _build_tensor_info(self, offs: int, count: int):
            return offs, []

        def _build_tensors(self, start_offs: int, fields: list) -> None:
            self.tensors = []

    _METADATA_READER = MetadataReader
    return MetadataReader


def _syntax_error(text: str) -> str | None:
    try:
        import jinja2
        import jinja2.ext
        import jinja2.nodes
    except ImportError:  # rendering will need transformers, which brings jinja2, and report it there
        return None

    class Generation(jinja2.ext.Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    env = jinja2.Environment(extensions=[Generation, jinja2.ext.loopcontrols])
    try:
        env.parse(text)
    except jinja2.TemplateSyntaxError as e:
        return f"Jinja syntax error in the chat template at line {e.lineno}: {e.message}"
    return None


# -------------------------------------------------------------------------------------------- rendering

_RENDER: Callable[..., Any] | None = None


class _QuietGenerationWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "does not contain `{% generation %}`" not in record.getMessage()


def _renderer() -> Callable[..., Any]:
    """transformers' render_jinja_template, imported once per process with its import-time advice silenced."""
    global _RENDER
    if _RENDER is None:
        saved = os.environ.get("TRANSFORMERS_VERBOSITY")
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # "PyTorch was not found..." is logged at import
        try:
            from transformers.utils.chat_template_utils import render_jinja_template
        except ImportError:
            raise UsageError(f"--check-template needs transformers: {_TRAIN_EXTRA}") from None
        finally:
            if saved is None:
                os.environ.pop("TRANSFORMERS_VERBOSITY", None)
            else:
                os.environ["TRANSFORMERS_VERBOSITY"] = saved
        logging.getLogger("transformers.utils.chat_template_utils").addFilter(_QuietGenerationWarning())
        _RENDER = render_jinja_template
    return _RENDER


def _render(messages: list[dict], tools: list | None, template: ChatTemplate) -> tuple[str, list[tuple[int, int]]]:
    rendered, indices = _renderer()(
        conversations=[messages],
        tools=tools,
        chat_template=template.text,
        return_assistant_tokens_mask=True,
        add_generation_prompt=False,
    )
    return rendered[0], [tuple(span) for span in (indices[0] if indices else [])]


# --------------------------------------------------------------------------------------------- checking


@dataclass
class _Miss:
    text: str
    kind: str


class _RecordShapeError(ValueError):
    pass


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _variants(text: str) -> list[str]:
    """How a template may write TEXT: stripped as-is, or JSON-escaped (`tojson`, with or without ensure_ascii)."""
    s = text.strip()
    if not s:
        return []
    out = [s]
    for ensure_ascii in (False, True):
        escaped = json.dumps(s, ensure_ascii=ensure_ascii)[1:-1]
        if escaped not in out:
            out.append(escaped)
    return out


def _find(rendered: str, variants: list[str], start: int, end: int | None = None) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for v in variants:
        at = rendered.find(v, start) if end is None else rendered.find(v, start, end)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, at + len(v))
    return best


def _leaves(value: Any, path: str = "") -> Iterable[tuple[str, list[str]]]:
    """(argument path, ways it may be written) for each leaf value of a tool call's arguments."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif isinstance(value, bool):
        yield path, ["true", "True"] if value else ["false", "False"]
    elif isinstance(value, int | float):
        yield path, list(dict.fromkeys([str(value), json.dumps(value)]))
    elif isinstance(value, str):
        variants = _variants(value)
        if variants:
            yield path, variants


def _call_parts(call: Any) -> tuple[str, list[tuple[str, list[str]]]]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        function = call if isinstance(call, dict) else {}
    name = str(function.get("name") or "")
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return name, [("arguments", v)] if (v := _variants(arguments)) else []
    return name, list(_leaves(arguments)) if arguments is not None else []


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content.strip() else []
    if isinstance(content, list):
        return [
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"].strip()
        ]
    return []


def _reasoning(message: dict) -> str | None:
    return next((message[k] for k in _REASONING_KEYS if isinstance(message.get(k), str) and message[k].strip()), None)


def _label(i: int, message: dict, call_names: dict[str, str]) -> str:
    role = message.get("role")
    if role == "tool":
        name = message.get("name") or call_names.get(str(message.get("tool_call_id")))
        return f"message {i} (tool {name})" if name else f"message {i} (tool)"
    return f"message {i} ({role})"


def _check_conversation(messages: list[dict], tools: list | None, template: ChatTemplate) -> tuple[list[_Miss], str]:
    try:
        rendered, generation = _render(messages, tools, template)
    except UsageError:
        raise
    except Exception as e:  # a template raising is the template's verdict on the record
        line = f"template error: {_one_line(e)}"
        return [_Miss(line, line)], "none"

    misses: list[_Miss] = []
    call_names: dict[str, str] = {}
    spans: list[list[tuple[int, int]]] = []
    cursor = 0
    for i in range(len(messages)):
        found, lost, end = _match_message(rendered, messages, i, cursor, call_names)
        if found and _steals_next(rendered, messages, i, cursor, found, end):
            found, lost, end = _match_message(rendered, messages, i, cursor, call_names, absent=True)
        spans.append(found)
        misses += lost
        cursor = end

    for tool in tools or []:
        spec = tool.get("function", tool) if isinstance(tool, dict) else {}
        name = spec.get("name") if isinstance(spec, dict) else None
        if not name:
            continue
        description = spec.get("description")
        wanted = [[name]] + ([v] if isinstance(description, str) and (v := _variants(description)) else [])
        if any(_find(rendered, variants, 0) is None for variants in wanted):
            misses.append(_Miss(f"tools: {name} spec not rendered", "tool spec not rendered"))

    assistant = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistant:
        misses.append(_Miss("no assistant message to train on", "no assistant message"))
        return misses, "none"
    if not any(spans[i] for i in assistant):
        return misses, "none"
    if not generation:
        return misses, "located"
    mask = "generation"
    for i, found in enumerate(spans):
        role = messages[i].get("role")
        if role == "assistant" and any(not any(g0 <= s0 and s1 <= g1 for g0, g1 in generation) for s0, s1 in found):
            misses.append(
                _Miss(f"message {i} (assistant): outside {{% generation %}}", "assistant text outside generation")
            )
            mask = "none"
        elif role != "assistant" and any(s0 < g1 and g0 < s1 for s0, s1 in found for g0, g1 in generation):
            misses.append(_Miss(f"message {i} ({role}): inside {{% generation %}}", f"{role} text inside generation"))
            mask = "none"
    return misses, mask


def _match_message(
    rendered: str, messages: list[dict], i: int, cursor: int, call_names: dict[str, str], absent: bool = False
) -> tuple[list[tuple[int, int]], list[_Miss], int]:
    """Where message I's pieces are rendered, searching from CURSOR: (spans found, pieces missing, new cursor)."""

    def find(variants: list[str], start: int, stop: int | None = None) -> tuple[int, int] | None:
        return None if absent else _find(rendered, variants, start, stop)

    message = messages[i]
    role = message.get("role")
    label = _label(i, message, call_names)
    found: list[tuple[int, int]] = []
    lost: list[_Miss] = []
    end = cursor
    pieces = [("reasoning", r)] if role == "assistant" and (r := _reasoning(message)) else []
    pieces += [("content", t) for t in _texts(message.get("content"))]
    for what, text in pieces:
        hit = find(_variants(text), cursor)
        if hit is None:
            lost.append(_Miss(f"{label}: {what} not rendered", f"{role} {what} not rendered"))
        else:
            found.append(hit)
            end = max(end, hit[1])
    calls = message.get("tool_calls") if role == "assistant" else None
    if calls:
        bound = _next_content_at(rendered, messages, i + 1, end)
        at = cursor
        for call in calls:
            name, args = _call_parts(call)
            if isinstance(call, dict) and call.get("id"):
                call_names[str(call["id"])] = name
            hit = find([name], at, bound) if name else None
            if hit is None:
                lost.append(
                    _Miss(f"message {i}: tool call {name or '(no name)'} not rendered", "tool call not rendered")
                )
                continue
            call_spans = [hit]
            for arg, variants in args:
                arg_hit = find(variants, at, bound)
                if arg_hit is None:
                    lost.append(
                        _Miss(
                            f"message {i}: tool call {name} argument {arg} not rendered",
                            "tool call argument not rendered",
                        )
                    )
                else:
                    call_spans.append(arg_hit)
            found += call_spans
            at = max(s[1] for s in call_spans)
        end = max(end, at)
    return found, lost, end


def _steals_next(
    rendered: str, messages: list[dict], i: int, cursor: int, found: list[tuple[int, int]], end: int
) -> bool:
    """Whether message I was matched past the next message's rendering, which then cannot be found after it.

    A template that drops message I may still render the same text later (a repeated answer, a result
    quoting a query): matching it there would make every later message look missing. Then I is the
    missing one.
    """
    if i + 1 >= len(messages):
        return False
    texts = _texts(messages[i + 1].get("content"))
    if not texts:
        return False
    variants = _variants(texts[0])
    if _find(rendered, variants, end) is not None:
        return False
    earlier = _find(rendered, variants, cursor)
    return earlier is not None and earlier[1] <= min(s[0] for s in found)


def _next_content_at(rendered: str, messages: list[dict], j: int, start: int) -> int | None:
    """Where message J's first piece of content is rendered: a tool call must be rendered before it."""
    if j >= len(messages):
        return None
    texts = _texts(messages[j].get("content"))
    hit = _find(rendered, _variants(texts[0]), start) if texts else None
    return hit[0] if hit else None


def _tools(sample: dict) -> list | None:
    tools = sample.get("tools")
    if tools is None or tools == "":
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as e:
            raise _RecordShapeError(f"tools is not valid JSON ({e.msg})") from None
    if not isinstance(tools, list):
        raise _RecordShapeError("tools is not a list of tool specs")
    return tools


def _conversations(sample: dict) -> list[tuple[str, list[dict]]]:
    """(label prefix, messages) for each conversation a record trains on."""
    if isinstance(sample.get("messages"), list):
        return [("", sample["messages"])]
    if isinstance(sample.get("conversations"), list):
        return [("", sharegpt_to_messages(sample))]
    prompt = sample.get("prompt")
    prompt = prompt if isinstance(prompt, list) else [] if prompt is None else None
    if prompt is not None:
        pairs = [
            (f"{key}: ", prompt + sample[key]) for key in ("chosen", "rejected") if isinstance(sample.get(key), list)
        ]
        if pairs:
            return pairs
        if isinstance(sample.get("completion"), list):
            return [("", prompt + sample["completion"])]
    raise _RecordShapeError(
        "not a conversational record (expected messages, prompt + completion, prompt + chosen/rejected "
        "or conversations lists)"
    )


def sharegpt_to_messages(sample: dict) -> list[dict]:
    """A ShareGPT record's turns as chat messages (see the module docstring for the mapping)."""
    messages: list[dict] = []
    if isinstance(sample.get("system"), str) and sample["system"]:
        messages.append({"role": "system", "content": sample["system"]})
    pending: list[tuple[str, str]] = []  # (call id, name) not answered yet
    n_calls = 0
    for k, turn in enumerate(sample["conversations"]):
        who, value = turn.get("from"), turn.get("value")
        value = value if isinstance(value, str) else ""
        if who == "function_call":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                raise _RecordShapeError(f"conversations[{k}]: function_call value is not JSON") from None
            calls = parsed if isinstance(parsed, list) else [parsed]
            tool_calls = []
            for call in calls:
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise _RecordShapeError(f"conversations[{k}]: function_call is not a {{name, arguments}} call")
                arguments = call.get("arguments", {})
                n_calls += 1
                call_id = f"call_{n_calls}"
                tool_calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": call["name"],
                            "arguments": arguments
                            if isinstance(arguments, str)
                            else json.dumps(arguments, ensure_ascii=False),
                        },
                    }
                )
                pending.append((call_id, call["name"]))
            messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
        elif who == "observation":
            results = [value]
            if len(pending) > 1:
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, list) and len(parsed) == len(pending):
                    results = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in parsed]
            for result in results:
                call_id, name = pending.pop(0) if pending else (None, None)
                messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": result})
        else:
            role = {"human": "user", "gpt": "assistant"}.get(who, who)
            messages.append({"role": role, "content": value})
            if role != "tool":
                pending = []
    return messages


def _record_id(sample: dict) -> str | None:
    if sample.get("id") is not None:
        return str(sample["id"])
    meta = sample.get("meta")
    if isinstance(meta, dict) and meta.get("trace_id"):
        step = next((meta[k] for k in ("step", "chosen_step") if meta.get(k) is not None), None)
        return f"{meta['trace_id']}#{step}" if step is not None else str(meta["trace_id"])
    return None


def _check(sample: dict, template: ChatTemplate) -> tuple[RenderCheck, list[_Miss]]:
    try:
        tools = _tools(sample)
        conversations = _conversations(sample)
    except _RecordShapeError as e:
        miss = _Miss(str(e), str(e).split(" (")[0])
        return RenderCheck(id=_record_id(sample), ok=False, mask="none", missing=[miss.text], reason=miss.kind), [miss]
    misses: list[_Miss] = []
    mask = "generation"
    for prefix, messages in conversations:
        found, kind = _check_conversation(messages, tools, template)
        misses += [_Miss(prefix + m.text, m.kind) for m in found]
        mask = min(mask, kind, key=_MASK_RANK.__getitem__)
    check = RenderCheck(
        id=_record_id(sample),
        ok=not misses and mask != "none",
        mask=mask,
        missing=[m.text for m in misses],
        reason=misses[0].kind if misses else (None if mask != "none" else "no loss mask"),
    )
    return check, misses


def check_sample(sample: dict, template: ChatTemplate) -> RenderCheck:
    """Render one exported record with TEMPLATE and report what did not make it into the rendering."""
    return _check(sample, template)[0]


class TemplateChecker:
    """Checks records one at a time (so an exporter can drop failing ones while streaming) and sums them up."""

    def __init__(self, template: ChatTemplate):
        _renderer()  # fail before the first record when transformers is missing
        self.template = template
        self.records = 0
        self.rendered_whole = 0
        self.failures: Counter[str] = Counter()
        self.masks: Counter[str] = Counter()
        self.examples: list[FailureExample] = []

    def add(self, sample: dict) -> RenderCheck:
        check = check_sample(sample, self.template)
        self.records += 1
        self.masks[check.mask] += 1
        if check.ok:
            self.rendered_whole += 1
        else:
            self.failures[check.reason or "not rendered whole"] += 1
            if len(self.examples) < MAX_EXAMPLES:
                missing = check.missing[:_MAX_EXAMPLE_LINES]
                if len(check.missing) > _MAX_EXAMPLE_LINES:
                    missing.append(f"… and {len(check.missing) - _MAX_EXAMPLE_LINES} more")
                self.examples.append(FailureExample(id=check.id, missing=missing))
        return check

    def report(self) -> TemplateReport:
        return TemplateReport(
            source=self.template.source,
            name=self.template.name,
            records=self.records,
            rendered_whole=self.rendered_whole,
            failures=dict(self.failures.most_common()),
            masks=dict(self.masks),
            examples=list(self.examples),
        )


def check_samples(samples: Iterable[dict], template: ChatTemplate) -> TemplateReport:
    checker = TemplateChecker(template)
    for sample in samples:
        checker.add(sample)
    return checker.report()
