"""Secrets as they turn up in free text, dict keys and env vars, and page text that must survive redaction intact.

Shared by tests/test_traces_redaction.py (the patterns) and tests/test_redaction_surfaces.py (traces,
exports, batch rows, error lines). Every secret is unique, so finding it anywhere is a leak.
"""

from __future__ import annotations

# label -> (free text holding the secret, the secret)
FREE_TEXT = {
    "env assignment": ("export OPENAI_API_KEY=Zq8xW3vT9pL2mN7rQ", "Zq8xW3vT9pL2mN7rQ"),
    "url userinfo": ("connect to https://alice:Tr0ub4dor3x@db.example.com/x", "Tr0ub4dor3x"),
    "query token": ("GET https://api.example.com/v1?token=q7Yw2Lx9Kp4&page=2", "q7Yw2Lx9Kp4"),
    "query signature": ("https://s3.example.com/o?X-Amz-Signature=9f8e7d6c5b4a&x=1", "9f8e7d6c5b4a"),
    "cookie header": ("Cookie: sessionid=c00k1eV4lue; theme=dark", "c00k1eV4lue"),
    "set-cookie header": ("Set-Cookie: id=s3tC00kieV; HttpOnly", "s3tC00kieV"),
    "authorization header": ("Authorization: Basic dXNlcjpwYXNzd29yZDE=", "dXNlcjpwYXNzd29yZDE="),
    "github token": ("pushed with ghp_R4nd0mT0kenV4lue0123456789abcdefABCD", "R4nd0mT0kenV4lue0123456789abcdefABCD"),
    "hugging face token": ("HF login 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", "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"),
    "aws key id": ("key id AKIAZ7Q2MX4LPN3K8R5T in use", "AKIAZ7Q2MX4LPN3K8R5T"),
    "jwt": (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "pem private key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
    ),
    "AWS_SECRET_ACCESS_KEY=": ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzK3y9Q", "wJalrXUtnFEMI/K7MDENG"),
    "GITHUB_PAT=": ("GITHUB_PAT=patV4lue9x8y7z", "patV4lue9x8y7z"),
    "DATABASE_URL=": ("DATABASE_URL=postgres://app:dbPa55word@db:5432/app", "dbPa55word"),
    "password:": ("the password: hunter2x", "hunter2x"),
}
# Values under secret-named keys, whatever they look like.
SECRET_KEYS = {"openai_api_key": "k3yV4lueOpenAI", "token": "t0kenV4lue99", "auth": "4uthV4lue77"}
# Secret-named env vars: their values are masked wherever they turn up, even in page text.
ENV = {
    "AWS_SECRET_ACCESS_KEY": "envAwsS3cretV4lue",
    "GITHUB_PAT": "envGithubP4tV4lue",
    "DATABASE_URL": "postgres://app:envDbPa55w0rd@db/app",
    "PWD": "/home/someone/project",  # the working directory is no secret
}
ENV_SECRETS = ("envAwsS3cretV4lue", "envGithubP4tV4lue", "envDbPa55w0rd")

ALL_FREE_TEXT = "\n".join(text for text, _ in FREE_TEXT.values())
ALL_SECRETS = (*(s for _, s in FREE_TEXT.values()), *SECRET_KEYS.values(), *ENV_SECRETS)

# A page explaining credentials: the context patterns would fire on it, but it is what the page says.
PAGE = (
    "Sign-in help. Password: at least 8 characters, e.g. hunter2. Set-Cookie: names the cookie a server sets. "
    "Call it with api_key = YOUR_KEY_HERE or https://user:changeme@host.example/ and put ?token=abc123 last. "
    "Authorization: Bearer <your token>. secret=example-only."
)
# Credential shapes are masked even in page text: this is what PAGE + LEAK is stored as.
LEAK = " Leaked: AKIAZ7Q2MX4LPN3K8R5T."
LEAK_STORED = " Leaked: ***."
