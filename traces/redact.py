"""Keep secrets out of trajectories: known secret values, credential-looking text, and secret-named keys.

Masking walks the event's data before it is serialised (never the JSON text, where a pattern could
cut through an escape sequence), so every string that reaches disk has been checked. The walk is
most of the recorder's cost, so `serialize` first looks for any trace of a secret in the JSON line
(a known value in raw or escaped form, or a word every built-in pattern and secret key contains) and
walks only when one is there. Configured patterns cannot be pre-checked on JSON text: with any
configured, every event is walked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Credentials in free text: HTTP auth headers, bearer tokens, key=value secrets in URLs or configs.
BUILTIN_PATTERNS = (
    r"(?i:\b(?:proxy-)?authorization\b\s*[:=]\s*(?:(?:bearer|basic|token|digest)\s+)?[^\s\"',;]+)",
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]{8,})",
    r"(?i:\b(?:api[_-]?key|access[_-]?token|client[_-]?secret|password)\b[\"']?\s*[:=]\s*[\"']?[^\s\"'&,;]{4,})",
    r"\bsk-[A-Za-z0-9_-]{16,}",
)
# A dict value under one of these keys is masked whatever it looks like.
SECRET_KEY = re.compile(
    r"(?i)^(?:(?:proxy-)?authorization|x-api-key|api[_-]?key|access[_-]?token|password|passwd|secret"
    r"|client[_-]?secret|cookie)$"
)
# Lower-case words of which every built-in pattern match and every secret key contains one.
TELLTALE_WORDS = (
    "authorization", "bearer", "api_key", "api-key", "apikey", "access_token", "access-token", "accesstoken",
    "secret", "password", "passwd", "cookie", "sk-",
)  # fmt: skip
# Environment variables whose values are treated as secrets wherever they appear.
SECRET_ENV_NAME = re.compile(r"(?i)(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words
_KEY_CACHE_MAX = 4096


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if SECRET_ENV_NAME.search(k) and len(v) >= MIN_SECRET_LEN]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Redactor:
    """Masks secrets in JSON-like data: `serialize(event)` gives the clean JSON line to write."""

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._secret_forms = {form for s in self.secrets for form in (s, json.dumps(s, ensure_ascii=False)[1:-1])}
        self.builtin = re.compile("|".join(BUILTIN_PATTERNS))
        self.patterns = [re.compile(p) for p in patterns]  # kept apart so their own inline flags work
        self._secret_keys: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str] | None = None) -> Redactor:
        """From `Settings`: the configured API key, secret-named env vars and `traces.redact_patterns`."""
        secrets = secrets_from_env(environ)
        key = settings.llm.api_key
        if key is not None:
            secrets.append(key.get_secret_value())
        return cls(secrets, settings.traces.redact_patterns)

    def serialize(self, data: Any) -> str:
        """One JSON line (no newline) with every secret masked."""
        line = _dumps(data)
        if self.patterns or self._may_hold_secret(line):
            line = _dumps(self.redact(data))
        return line

    def _may_hold_secret(self, line: str) -> bool:
        lower = line.lower()
        return any(w in lower for w in TELLTALE_WORDS) or any(s in line for s in self._secret_forms)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if self._may_hold_secret(value):
            value = self.builtin.sub(MASK, value)
        for pattern in self.patterns:
            value = pattern.sub(MASK, value)
        return value

    def _is_secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is None:
            known = bool(SECRET_KEY.match(key))
            if len(self._secret_keys) < _KEY_CACHE_MAX:
                self._secret_keys[key] = known
        return known

    def redact(self, data: Any) -> Any:
        """A copy of `data` with secrets masked in every string and under every secret-named key."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {
                k: (MASK if v and isinstance(k, str) and self._is_secret_key(k) else self.redact(v))
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.redact(v) for v in data]
        return data
