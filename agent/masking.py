"""Secrets out of what a user sees: URLs shown with their credentials masked, known secret values scrubbed.

A base URL may carry a credential: `http://user:KEY@host/v1` (userinfo) or `…/v1?api_key=KEY` (query).
Error lines, `doctor`, `config show` and trajectories show `display_url(url)` instead of the URL itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Query parameters whose values are credentials (Azure-style `api-version` and the like are kept).
_SECRET_PARAM = re.compile(r"(?i)(key|token|secret|password|passwd|pwd|auth|sig|signature|credential)")


def display_url(url: str) -> str:
    """`url` with any userinfo replaced by *** and the values of secret-named query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(_mask_param(p) for p in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_param(param: str) -> str:
    name, sep, value = param.partition("=")
    return f"{name}={MASK}" if sep and value and _SECRET_PARAM.search(name) else param


def url_secrets(url: str) -> list[str]:
    """The credentials `display_url` masks in `url`: userinfo (whole and parts) and secret query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, *userinfo.split(":", 1)]
    for param in parts.query.split("&"):
        name, sep, value = param.partition("=")
        if sep and value and _SECRET_PARAM.search(name):
            found.append(value)
    return [s for s in found if len(s) >= 4]  # shorter parts (a user "u") would mask ordinary text


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each (non-empty) secret replaced by ***, longest first."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
