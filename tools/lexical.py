"""The lexical (BM25) half of a local index: a tantivy index on disk, updated in place by segments.

Each chunk is one tantivy document: its row id (indexed, so it can be deleted by term or by range, and a
fast field, so hits name their rows) and "title. text" analysed the way bm25s analyses it for the
rest of the project: the scikit-learn token pattern `\\b\\w\\w+\\b`, lowercase, bm25s's English stopwords,
then the Snowball English stemmer (rust-stemmers' `english` is the same algorithm as PyStemmer's).
Term frequencies are kept, positions are not: BM25 needs no more.

Ranking is BM25 as bm25s computed it before (its default "lucene" variant, k1 = 1.5, b = 0.75, exact document
lengths), not tantivy's own (k1 = 1.2, fixed in the Python binding, and lengths quantised to one byte): tantivy
finds the candidates (its top max(100, 2 x depth)), which are re-scored from N and df (tantivy's) and each
candidate's own term counts and length, stored at indexing time (`term_counts`; search_sync.py keeps them,
and the running total of lengths for avgdl, in the chunk store). See docs/local-index.md.

tantivy writes new segments on each commit and merges them in background threads (its log merge
policy); a commit is atomic, and readers open a snapshot (`Searcher`) that later commits never change.
The writer's own lock file (`.tantivy-writer.lock`) is an OS file lock, dropped by the kernel when a
writer is killed; deepsearch's write.lock is taken first anyway.

Why tantivy rather than SQLite FTS5 or bm25s segments: see docs/local-index.md (measured there).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

ROW, TEXT = "row", "text"
TOKENIZER = "deepsearch_en"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's (and scikit-learn's) default
_WRITER_HEAP = 96 * 2**20
_DIGITS = re.compile(r"[0-9]+")
K1, B = 1.5, 0.75  # bm25s's defaults, what the index used before tantivy
RESCORE_MIN, RESCORE_FACTOR = 100, 2  # candidates re-scored: max(RESCORE_MIN, RESCORE_FACTOR x depth)
_MAX_TOKEN_CHARS = 200  # longer "words" (base64, hashes) never help a query; tantivy caps terms anyway


def _tantivy():
    import tantivy

    return tantivy


def analyzer(stemmer_language: str | None):
    from bm25s.stopwords import STOPWORDS_EN

    t = _tantivy()
    builder = t.TextAnalyzerBuilder(t.Tokenizer.regex(TOKEN_PATTERN)).filter(t.Filter.lowercase())
    builder = builder.filter(t.Filter.remove_long(_MAX_TOKEN_CHARS)).filter(t.Filter.custom_stopword(STOPWORDS_EN))
    if stemmer_language:
        builder = builder.filter(t.Filter.stemmer(stemmer_language))
    return builder.build()


def _schema():
    t = _tantivy()
    builder = t.SchemaBuilder()
    builder.add_integer_field(ROW, indexed=True, fast=True)  # i64: what delete-by-term makes of an int
    builder.add_text_field(TEXT, tokenizer_name=TOKENIZER, index_option="freq")
    return builder.build()


def _open(path: Path, stemmer_language: str | None, create: bool):
    t = _tantivy()
    if create:
        path.mkdir(parents=True, exist_ok=True)
        index = t.Index(_schema(), str(path), reuse=True)
    else:
        index = t.Index.open(str(path))
    index.register_tokenizer(TOKENIZER, analyzer(stemmer_language))
    return index


# (rows, query terms) -> {row: (document length in tokens, {query term: count})}; rows absent were deleted
TermCounts = Callable[[list[int], Collection[str]], Mapping[int, tuple[int, Mapping[str, int]]]]


def encode_counts(counts: Mapping[str, int]) -> str:
    """A document's term counts as stored: a JSON object (ASCII; a term is word characters, so never escaped
    but for \\u escapes of non-ASCII letters)."""
    return json.dumps(counts, separators=(",", ":"))


def count_keys(terms: Collection[str]) -> list[tuple[str, str]]:
    """(term, the text that starts its entry in an encoded object): made once per query for `decode_counts`."""
    return [(term, json.dumps(term) + ":") for term in terms]


def decode_counts(encoded: str, keys: list[tuple[str, str]]) -> dict[str, int]:
    """The counts of the query's terms alone, found in the stored JSON without parsing all of it (a candidate
    holds ~60 terms, a query a handful: this is what keeps re-scoring cheap). A key cannot start inside another
    key: a term's characters are word characters or \\u escapes, never a quote."""
    found = {}
    for term, key in keys:
        at = encoded.find(key)
        if at > 0:
            found[term] = int(_DIGITS.match(encoded, at + len(key)).group())
    return found


def idf(n_docs: int, doc_freq: int) -> float:
    """bm25s's "lucene" idf (never negative)."""
    return math.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def bm25(
    query: Mapping[str, int], length: int, counts: Mapping[str, int], idfs: Mapping[str, float], avgdl: float
) -> float:
    """bm25s's "lucene" score of one document: sum over query terms of idf x tf / (tf + k1 (1 - b + b dl/avgdl)),
    a query term given n times counting n times. (Lucene drops the constant k1 + 1 factor as bm25s does.)"""
    norm = K1 * (1 - B + B * length / avgdl)
    score = 0.0
    for term, n in query.items():
        tf = counts.get(term, 0)
        if tf:
            score += n * idfs[term] * tf / (tf + norm)
    return score


class LexicalWriter:
    """The one writer of the lexical index (the caller holds the index's write lock)."""

    def __init__(self, path: Path, stemmer_language: str | None, threads: int = 1):
        self.index = _open(path, stemmer_language, create=True)
        self._writer = self.index.writer(heap_size=_WRITER_HEAP * max(1, threads), num_threads=threads)
        self._schema = self.index.schema
        self._analyzer = analyzer(stemmer_language)

    def term_counts(self, text: str) -> Counter[str]:
        """The terms tantivy indexes for `text`, counted: what exact BM25 needs of a document (length: their sum)."""
        return Counter(self._analyzer.analyze(text))

    def delete_row(self, row: int) -> None:
        self._writer.delete_documents_by_term(ROW, row)

    def delete_rows_from(self, first_row: int) -> None:
        """Every document with row >= first_row: what a commit cut short may have left half-known."""
        t = _tantivy()
        query = t.Query.range_query(self._schema, ROW, t.FieldType.Integer, first_row, None, True, True, True)
        self._writer.delete_documents_by_query(query)

    def add(self, row: int, text: str) -> None:
        doc = _tantivy().Document()
        doc.add_integer(ROW, row)
        doc.add_text(TEXT, text)
        self._writer.add_document(doc)

    def commit(self) -> None:
        self._writer.commit()

    def abandon(self) -> None:
        """Drop what was not committed and release tantivy's lock now (not when the object is collected)."""
        import contextlib

        with contextlib.suppress(ValueError, OSError):
            self._writer.rollback()
        with contextlib.suppress(ValueError, OSError):
            self._writer.wait_merging_threads()

    def close(self) -> None:
        """Let running merges finish (they are what keeps the segment count down), then release the lock."""
        self._writer.wait_merging_threads()


class LexicalReader:
    """One snapshot of the lexical index: later commits are not seen until a new reader is opened."""

    def __init__(self, path: Path, stemmer_language: str | None):
        try:
            self.index = _open(path, stemmer_language, create=False)
            self.index.config_reader("manual")
        except ValueError as e:
            if "Read-only file system" not in str(e):
                raise
            self.index = self._open_copy(path, stemmer_language)
        self.searcher = self.index.searcher()
        self._analyzer = analyzer(stemmer_language)
        self._schema = self.index.schema

    def _open_copy(self, path: Path, stemmer_language: str | None):
        """tantivy's reader takes a lock file beside the index, which a read-only mount refuses: read a copy."""
        import shutil
        import tempfile
        import weakref

        copy = Path(tempfile.mkdtemp(prefix="deepsearch-lexical-"))
        weakref.finalize(self, shutil.rmtree, copy, True)
        shutil.copytree(path, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".tantivy-*.lock"))
        index = _open(copy, stemmer_language, create=False)
        index.config_reader("manual")
        return index

    @property
    def num_docs(self) -> int:
        return self.searcher.num_docs

    @property
    def num_segments(self) -> int:
        return self.searcher.num_segments

    def query_terms(self, query: str) -> Counter[str]:
        return Counter(self._analyzer.analyze(query))

    def search(
        self, query: str, depth: int, term_counts: TermCounts | None = None, avgdl: float | None = None
    ) -> list[tuple[int, float]]:
        """(row, BM25 score), best first; a query word used twice counts twice, as in bm25s. With `term_counts` and
        `avgdl` (an index that stored them) tantivy's top candidates are re-scored with bm25s's BM25; without,
        tantivy's own scores are returned (indexes written before the counts were stored)."""
        terms = self.query_terms(query)
        if not terms or not self.searcher.num_docs:
            return []
        if term_counts is None or not avgdl:
            return self._tantivy_search(terms, depth)
        ranked = self._tantivy_search(terms, max(RESCORE_MIN, RESCORE_FACTOR * depth))
        return self.rescore(terms, [row for row, _ in ranked], term_counts, avgdl)[:depth]

    def rescore(
        self, terms: Mapping[str, int], rows: list[int], term_counts: TermCounts, avgdl: float
    ) -> list[tuple[int, float]]:
        """`rows` by exact BM25, best first (ties keep their order in `rows`); rows no longer stored are left out."""
        n_docs = self.searcher.num_docs
        idfs = {term: idf(n_docs, self.searcher.doc_freq(TEXT, term)) for term in terms}
        docs = term_counts(rows, list(terms))
        scored = [(row, bm25(terms, *docs[row], idfs, avgdl)) for row in rows if row in docs]
        scored.sort(key=lambda hit: -hit[1])  # stable
        return scored

    def _tantivy_search(self, terms: Mapping[str, int], depth: int) -> list[tuple[int, float]]:
        t = _tantivy()
        clauses = []
        for term, n in sorted(terms.items()):
            q = t.Query.term_query(self._schema, TEXT, term, index_option="freq")
            clauses.append((t.Occur.Should, q if n == 1 else t.Query.boost_query(q, float(n))))
        hits = self.searcher.search(t.Query.boolean_query(clauses), limit=depth, count=False).hits
        if not hits:
            return []
        rows = self.searcher.fast_field_values(ROW, [address for _, address in hits])
        return [(int(row), float(score)) for (score, _), row in zip(hits, rows, strict=True)]
