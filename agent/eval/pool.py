"""The pooled index of a data set: every passage of every question in one local index, built once and cached.

Each passage is indexed with `pool://<passage id>` as its source, so a citation names the passage it
rests on and the report can measure supporting-passage recall and precision of the cited evidence.
The cache key covers the passages and the chunking and embedding options; a build that was cut short
(no completion marker) is thrown away and redone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from deepsearch.tools.index_store import FORMAT_VERSION

from ..config import Settings
from .datasets import Dataset

POOL_SCHEME = "pool://"
_COMPLETE = ".complete"


def passage_of_source(source: str) -> str | None:
    return source[len(POOL_SCHEME) :] if source.startswith(POOL_SCHEME) else None


def pool_key(dataset: Dataset, settings: Settings) -> str:
    s = settings.index
    digest = hashlib.sha1()
    for pid in sorted(p.id for p in dataset.passages):
        digest.update(pid.encode())
    # The index format too: a cached pool an earlier deepsearch wrote is rebuilt, never an error to the user.
    digest.update(f"{s.chunk_tokens}/{s.overlap_tokens}/{s.dense}/v{FORMAT_VERSION}".encode())
    return f"{dataset.name}-{digest.hexdigest()[:12]}"


def pooled_index(dataset: Dataset, settings: Settings, log: Callable[[str], None] = lambda m: None) -> Path:
    """The index folder for `dataset`'s passages under the cache dir, building it when missing."""
    from deepsearch.tools.local_index import IndexOptions, update_index

    root = settings.cache.dir / "eval-pools" / pool_key(dataset, settings)
    index_dir = root / "index"
    if (root / _COMPLETE).exists():
        return index_dir
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    corpus = root / "passages.jsonl"
    with corpus.open("w", encoding="utf-8") as f:
        for p in dataset.passages:
            f.write(json.dumps({"id": p.id, "title": p.title, "text": p.text, "url": POOL_SCHEME + p.id}) + "\n")
    log(f"indexing {len(dataset.passages)} passages of {dataset.name} (once; cached in {root})")
    options = IndexOptions.from_settings(settings.index).model_copy(update={"fields": IndexOptions().fields})
    update_index(index_dir, [corpus], options)
    (root / _COMPLETE).write_text(str(len(dataset.passages)))
    return index_dir
