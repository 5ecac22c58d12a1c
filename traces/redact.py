"""Keep secrets out of trajectories: known secret values, credential patterns, and secret-named keys.

What is masked where (the patterns are in agent/masking.py):
- known secret values (the configured API key, secret-named env vars, passwords in env URLs), credential
  shapes (AKIA…, ghp_…, hf_…, JWTs, PEM keys) and configured patterns: in every string;
- context patterns (`password: …`, `OPENAI_API_KEY=…`, `Cookie:`, `https://user:pw@host`, `?token=…`): in
  every string except page text, where they would corrupt what was read ("Password: at least 8
  characters"). Page text is a stored page (`Content.text`), a search result's title and snippet, an
  evidence passage or a citation's quote, and the body of an `<evidence>`/`<passage>` block in a prompt
  (the blocks neutralise their own delimiters, so a body is page text only);
- any value under a secret-named key (`api_key`, `openai_api_key`, `token`, `auth`, `cookie`, …).

Masking walks the event's data before it is serialised (never the JSON text, where a pattern could
cut through an escape sequence), so every string that reaches disk has been checked. The walk is
most of the recorder's cost, so `serialize` first looks for any trace of a secret in the JSON line
(a known value in raw or escaped form, or a telltale word every built-in pattern match contains) and
walks only when one is there. Configured patterns cannot be pre-checked on JSON text: with any
configured, every event is walked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from deepsearch.agent.masking import MASK, has_telltale, mask_context, mask_shapes, scrub

__all__ = ["MASK", "Redactor", "secrets_from_env"]

# A dict value under one of these keys is masked whatever it looks like (`tokens`, `max_tokens` are kept).
SECRET_KEY = re.compile(
    r"(?i)^(?:[\w.]*[_.-])?(?:(?:proxy-)?authorization|x-api-key|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?"
    r"|secret[_-]?(?:access[_-]?)?key|private[_-]?key|token|auth|password|passwd|pwd|passphrase|secret"
    r"|client[_-]?secret|cookie|set-cookie|credentials?|pat|dsn|database[_-]?url|connection[_-]?string)$"
)
# Environment variables whose values are secrets wherever they appear. PWD (the working directory) is not.
SECRET_ENV_NAME = re.compile(
    r"(?i)(?:^|_)(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|DSN|DATABASE_URL|CONNECTION_STRING)$"
    r"|_(?:KEY|PAT|PWD|PASS|AUTH)$"
)
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words
_KEY_CACHE_MAX = 4096
_BLOCK = re.compile(r"(<(evidence|passage)\b[^>\n]*>)(.*?)(</\2>)", re.S)


def _url_passwords(value: str) -> list[str]:
    """The password of a URL's userinfo (the user name is not secret: "postgres" would mask ordinary text)."""
    try:
        netloc = urlsplit(value.strip()).netloc
    except ValueError:
        return []
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    password = userinfo.partition(":")[2]
    return [password] if password else []


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named variables, and the passwords inside any URL-valued variable (HTTP_PROXY=…)."""
    environ = os.environ if environ is None else environ
    found = [v for k, v in environ.items() if SECRET_ENV_NAME.search(k)]
    found += [p for v in environ.values() if "://" in v and "@" in v for p in _url_passwords(v)]
    return [s for s in found if len(s) >= MIN_SECRET_LEN]


class _Clean(dict):
    """A dict that `Redactor.clean_static` produced: already redacted, never walked again by its redactor."""


_STATIC_MAX = 64
_MEMO_MIN_CHARS = 256  # shorter strings are cheaper to mask than to look up
_MEMO_MAX_CHARS = 4_000_000  # the memo is emptied when the strings it keeps would pass this
_FROM_SETTINGS: dict[tuple, Redactor] = {}


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _page_fields(d: dict) -> tuple[str, ...]:
    """The keys of `d` that hold page text, recognised by the shape of the record they belong to."""
    if "hash" in d and "text" in d:
        return ("text",)  # Content
    if "content_hash" in d or "snippet" in d:
        return ("title", "snippet")  # ResultItem
    if "evidence_id" in d and "quote" in d:
        return ("quote",)  # Citation
    if "candidate_id" in d and "evidence" in d:
        return ("evidence",)  # the reranker's EvidencePassage
    return ()


class Redactor:
    """Masks secrets in JSON-like data: `serialize(event)` gives the clean JSON line to write."""

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._secret_forms = {form for s in self.secrets for form in (s, json.dumps(s, ensure_ascii=False)[1:-1])}
        self.patterns = [re.compile(p) for p in patterns]  # kept apart so their own inline flags work
        self._secret_keys: dict[str, bool] = {}
        self._static: dict[str, Any] = {}
        self._texts: dict[tuple[str, bool], str] = {}
        self._text_chars = 0

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str] | None = None) -> Redactor:
        """From `Settings`: the configured API key, secret-named env vars and `traces.redact_patterns`.

        The same inputs give the same (shared) Redactor, so a batch builds it and its memo once, not per run."""
        environ = os.environ if environ is None else environ
        key = settings.llm.api_key
        key_value = key.get_secret_value() if key is not None else None
        cache_key = (key_value, tuple(settings.traces.redact_patterns), tuple(environ.items()))
        redactor = _FROM_SETTINGS.get(cache_key)
        if redactor is None:
            secrets = secrets_from_env(environ)
            if key_value is not None:
                secrets.append(key_value)
            redactor = cls(secrets, settings.traces.redact_patterns)
            if len(_FROM_SETTINGS) >= 8:
                _FROM_SETTINGS.clear()
            _FROM_SETTINGS[cache_key] = redactor
        return redactor

    def _memo_text(self, value: str, page: bool) -> str:
        """`text(value)` for a long string, memoised: a prompt's system text and its evidence blocks recur in
        call after call (and, with one Redactor per batch, in run after run)."""
        key = (value, page)
        done = self._texts.get(key)
        if done is None:
            done = self.text(value, page=page)
            if self._text_chars + len(value) > _MEMO_MAX_CHARS:
                self._texts.clear()
                self._text_chars = 0
            self._texts[key] = done
            self._text_chars += len(value)
        return done

    def clean_static(self, data: Any) -> Any:
        """`redact(data)` for data that repeats from run to run (a header's config): memoised by its JSON text, and
        marked so that `redact` does not walk it again inside a larger event."""
        text = _dumps(data)
        done = self._static.get(text)
        if done is None:
            done = self.redact(data)
            done = _Clean(done) if isinstance(done, dict) else done
            if len(self._static) >= _STATIC_MAX:
                self._static.clear()
            self._static[text] = done
        return done

    def serialize(self, data: Any, *, compact: bool = True) -> str:
        """One JSON line (no newline) with every secret masked; `compact=False` keeps json.dumps' spacing."""
        dumps = _dumps if compact else lambda d: json.dumps(d, ensure_ascii=False)
        line = dumps(data)
        if self.patterns or self._may_hold_secret(line):
            line = dumps(self.redact(data))
        return line

    def clean(self, data: Any) -> Any:
        """`data` itself when nothing in it can be a secret, else a redacted copy."""
        return self.redact(data) if self.patterns or self._may_hold_secret(_dumps(data)) else data

    def _may_hold_secret(self, line: str) -> bool:
        return has_telltale(line.lower()) or any(s in line for s in self._secret_forms)

    def text(self, value: str, *, page: bool = False) -> str:
        """`value` masked; `page=True` for page text: known values, credential shapes and configured patterns only."""
        value = scrub(value, (s for s in self.secrets if s in value))
        if has_telltale(value.lower(), context=not page):
            value = mask_shapes(value)
            if not page:
                value = self._outside_blocks(value)
        for pattern in self.patterns:
            value = pattern.sub(MASK, value)
        return value

    @staticmethod
    def _outside_blocks(value: str) -> str:
        """Context patterns on our own text; the bodies of evidence/passage blocks are page text and kept."""
        if "<evidence" not in value and "<passage" not in value:
            return mask_context(value)
        out, done = [], 0
        for m in _BLOCK.finditer(value):
            out += [mask_context(value[done : m.start()] + m.group(1)), m.group(3), m.group(4)]
            done = m.end()
        out.append(mask_context(value[done:]))
        return "".join(out)

    def _is_secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is None:
            known = bool(SECRET_KEY.match(key))
            if len(self._secret_keys) < _KEY_CACHE_MAX:
                self._secret_keys[key] = known
        return known

    def redact(self, data: Any, *, page: bool = False) -> Any:
        """A copy of `data` with secrets masked in every string and under every secret-named key."""
        if isinstance(data, str):
            return self.text(data, page=page) if len(data) < _MEMO_MIN_CHARS else self._memo_text(data, page)
        if type(data) is _Clean:
            return data  # this redactor's own output (clean_static)
        if isinstance(data, dict):
            pages = _page_fields(data)
            return {
                k: MASK
                if v and not isinstance(v, bool) and isinstance(k, str) and self._is_secret_key(k)
                else self.redact(v, page=page or k in pages)
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.redact(v, page=page) for v in data]
        return data
