"""Secrets out of what a user sees: credential patterns, URLs with their credentials masked, known values scrubbed.

Two kinds of pattern. *Credential shapes* (an AWS key id, a GitHub token, a JWT, a PEM private key) say
"credential" by their form alone and are masked everywhere, page text included. *Context patterns*
(`password: …`, `OPENAI_API_KEY=…`, `Cookie:` headers, `https://user:pw@host`, `?token=…`) judge by the
words around a value; they are right for our own text (prompts, errors, arguments) but wrong for a web
page that explains passwords, so traces/redact.py does not apply them to stored page text.

The shapes follow detect-secrets' plugins (github.com/Yelp/detect-secrets, detect_secrets/plugins/: aws,
github_token, gitlab_token, jwt, private_key, slack, stripe, sendgrid, pypi_token, npm, basic_auth, and
keyword's denylist for the context patterns), widened where noted; Hugging Face and Google keys follow
gitleaks' rules. detect-secrets itself is not a dependency: it scans files line by line, we mask strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Credential shapes: masked wherever they appear (whole match).
CREDENTIAL_SHAPES = (
    r"\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36,255}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",  # GitHub fine-grained token (gitleaks)
    r"\b(?:glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_-]{20,50}(?![\w-])",  # GitLab
    r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face (gitleaks: hf_ + 34 letters)
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWT: {"…} . {"…} . signature
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",  # PEM (a cut block is masked to the end)
    r"(?i:\bxox[abposr]-(?:\d+-)+[a-z0-9]+)",  # Slack
    r"\b[rs]k_live_[0-9a-zA-Z]{24,}",  # Stripe
    r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",  # SendGrid
    r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",  # PyPI
    r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key (gitleaks)
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI/Anthropic style sk-…, sk-proj-…, sk-ant-… (wider than detect-secrets)
)
# Lower-case strings of which every credential-shape match contains one (a cheap pre-check).
SHAPE_TELLTALES = (
    "a3t", "abia", "acca", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-",
    "glft-", "glsoat-", "glrt-", "hf_", "eyj", "private key", "xox", "k_live_", "sg.", "pypi-", "npm_", "aiza", "sk-",
)  # fmt: skip

# Names whose value is a secret. Two-word names may be written api_key, api-key, apikey or "api key".
_STRONG_NAMES = (
    "api_key", "auth_key", "service_key", "account_key", "db_key", "database_key", "priv_key", "private_key",
    "client_key", "secret_key", "secret_access_key", "access_key", "access_key_id", "db_pass", "database_pass",
    "key_pass", "password", "passwd", "passphrase", "client_secret", "access_token", "refresh_token", "auth_token",
    "id_token", "bearer_token", "session_token", "security_token", "database_url", "connection_string", "dsn",
)  # fmt: skip
# Short words that are secrets with a prefix (GITHUB_PAT, hf_token, AWS_SECRET) ...
_SUFFIX_NAMES = ("token", "secret", "pat", "pwd", "pass", "key", "credential", "credentials", "auth")
# ... and these also bare, in `name=value` or quoted-key form (the prose "Token: …" is left alone).
_BARE_NAMES = ("token", "secret", "pwd", "passwd", "auth", "credential", "credentials")
_QUERY_NAMES = ("key", "token", "secret", "password", "passwd", "pwd", "auth", "sig", "signature", "credential",
                "credentials", "sessionid", "session")  # fmt: skip


def _word(name: str) -> str:
    return re.escape(name).replace("_", r"[_ -]?")


def _alternatives(names: tuple[str, ...]) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


_STRONG = "|".join(_word(n) for n in sorted(_STRONG_NAMES, key=len, reverse=True))
_VALUE = r"[\"'`]?(?P<v>[^\s\"'`,;&<>]{4,})"
_ASSIGN = r"[\"'\]]{0,2}\s*(?::=|=>|=|:)\s*"

# Context patterns: the group `v` is the secret (names stay, so the line still reads).
CONTEXT_PATTERNS = (
    # Authorization / Proxy-Authorization headers, whatever the scheme.
    r"(?i)\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?"
    r"(?P<v>(?:(?:bearer|basic|token|digest|negotiate|aws4-hmac-sha256)\s+)?[^\s\"',;]+)",
    r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9._~+/=-]{8,})",
    # Cookie and Set-Cookie headers: the whole value, to the end of the line or the closing quote.
    r"(?i)\b(?:set-)?cookie\b[\"']?\s*[:=]\s*[\"']?(?P<v>[^\r\n\"']+)",
    # URL userinfo with a password: scheme://user:pw@host (detect-secrets basic_auth).
    r"(?i)\b[a-z][a-z0-9+.-]*://(?P<v>[^\s/?#@:\"'<>]+:[^\s/?#@\"'<>]*)@",
    # Query parameters named like credentials: ?token=…, &api_key=…, &X-Amz-Signature=….
    rf"(?i)[?&;][\w.-]*?(?:{_alternatives(_QUERY_NAMES)})=(?P<v>[^&#\s\"'<>]+)",
    # name: value / name = value, names as detect-secrets' keyword plugin lists them (OPENAI_API_KEY=…).
    rf"(?i)\b(?:[a-z0-9]+[_.-])*(?:{_STRONG})\b{_ASSIGN}{_VALUE}",
    rf"(?i)\b[a-z0-9]+(?:[_-][a-z0-9]+)*[_-](?:{_alternatives(_SUFFIX_NAMES)})\b{_ASSIGN}{_VALUE}",
    rf"(?i)(?<![\w.-])(?:{_alternatives(_BARE_NAMES)})[\"'\]]{{0,2}}\s*=\s*{_VALUE}",
    rf"(?i)[\"'](?:{_alternatives(_BARE_NAMES)})[\"']\s*:\s*[\"'](?P<v>[^\"']{{4,}})[\"']",
    # AWS secret access key near its name (detect-secrets aws).
    r"(?i)aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\"'](?P<v>[0-9a-zA-Z/+]{40})[\"']",
)


def _spellings(name: str) -> set[str]:
    return {name.replace("_", sep) for sep in ("_", "-", "", " ")}


# Lower-case strings of which every context-pattern match contains one ("://" counts only with "@"): every
# spelling of every name, less those containing a shorter anchor (fewer passes over a long line).
# "token" and "_pat" are looked for by _TELLTALE_RE, so that "prompt_tokens" and "file_path" do not count.
_ANCHORS = ("auth", "key", "secret", "passw", "pwd", "credential", "database", "cookie", "bearer", "aws")
TELLTALE_FORMS = frozenset(
    {"authorization", "bearer", "cookie", "aws"}
    | {s for n in _STRONG_NAMES for s in _spellings(n)}
    | {f"{sep}{n}" for n in _SUFFIX_NAMES if n not in ("token", "pat") for sep in "_-"}
    | {n for n in _BARE_NAMES if n != "token"}
    | {f"{n}=" for n in _QUERY_NAMES if "token" not in n}
)


def _cover(forms: frozenset[str]) -> tuple[str, ...]:
    kept: list[str] = []
    for form in sorted(set(_ANCHORS) | {f for f in forms if "token" not in f}, key=len):
        if not any(k in form for k in kept):
            kept.append(form)
    return tuple(kept)


CONTEXT_TELLTALES = _cover(TELLTALE_FORMS)
_TELLTALE_RE = re.compile(r"token(?!s\b)|[_-]pat\b")

_SHAPES = re.compile("|".join(CREDENTIAL_SHAPES))
_CONTEXT = tuple(re.compile(p) for p in CONTEXT_PATTERNS)


def has_telltale(lower: str, *, context: bool = True) -> bool:
    """Whether lower-cased `lower` may hold a pattern match (False means it certainly holds none)."""
    if any(t in lower for t in SHAPE_TELLTALES):
        return True
    if not context:
        return False
    if any(t in lower for t in CONTEXT_TELLTALES) or ("://" in lower and "@" in lower):
        return True
    return _TELLTALE_RE.search(lower) is not None


def mask_shapes(text: str) -> str:
    """`text` with every credential shape masked (applies to page text too)."""
    return _SHAPES.sub(MASK, text) if has_telltale(text.lower(), context=False) else text


_PAIRS = {")": "(", "]": "[", "}": "{"}


def _mask_group(match: re.Match[str]) -> str:
    start, end = match.span("v")
    value = match.group("v")
    # "(OPENAI_API_KEY=sk-…)": a closing bracket the value never opened belongs to the text around it.
    while value and value[-1] in _PAIRS and value.count(value[-1]) > value.count(_PAIRS[value[-1]]):
        value, end = value[:-1], end - 1
    whole = match.group(0)
    return whole[: start - match.start()] + MASK + whole[end - match.start() :]


def mask_context(text: str) -> str:
    """`text` with every context-pattern secret masked (for our own text, never for page text)."""
    for pattern in _CONTEXT:
        text = pattern.sub(_mask_group, text)
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Everything this module knows masked in free text: known `secrets`, credential shapes, context patterns.

    For a line a user reads (an error line, a batch row's error); page text goes through traces/redact.py."""
    text = scrub(text, secrets)
    if not has_telltale(text.lower()):
        return text
    return mask_context(_SHAPES.sub(MASK, text))


# ---- URLs ------------------------------------------------------------------------------------------

# A query parameter is a credential when its name ends like one (api-version and author are kept).
_SECRET_PARAM = re.compile(rf"(?i)(?:{_alternatives(_QUERY_NAMES)})$")


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
