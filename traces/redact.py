"""Keep secrets out of trajectories: known secret values, credential-looking text, and secret-named keys.

Redaction walks the event's data before it is serialised (never the JSON text, where a pattern could
cut through an escape sequence), so every string that reaches disk has been checked.
"""

from __future__ import annotations

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
    r"(?i)^(?:(?:proxy-)?authorization|x-api-key|api[_-]?key|access[_-]?token|password|passwd|secret|client[_-]?secret|cookie)$"
)
# Environment variables whose values are treated as secrets wherever they appear.
SECRET_ENV_NAME = re.compile(r"(?i)(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words


def secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if SECRET_ENV_NAME.search(k) and len(v) >= MIN_SECRET_LEN]


class Redactor:
    """Masks secrets in nested JSON-like data; `redact(data)` returns a cleaned copy."""

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        # Built-ins share one alternation; configured patterns stay separate so their own flags work.
        self.patterns = [re.compile("|".join(BUILTIN_PATTERNS)), *(re.compile(p) for p in patterns)]

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str] | None = None) -> Redactor:
        """From `Settings`: the configured API key, secret-named env vars and `traces.redact_patterns`."""
        secrets = secrets_from_env(environ)
        key = settings.llm.api_key
        if key is not None:
            secrets.append(key.get_secret_value())
        return cls(secrets, settings.traces.redact_patterns)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern in self.patterns:
            if pattern.search(value):
                value = pattern.sub(MASK, value)
        return value

    def redact(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {
                k: (MASK if isinstance(k, str) and SECRET_KEY.match(k) and v else self.redact(v))
                for k, v in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.redact(v) for v in data]
        return data
