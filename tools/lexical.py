"""The lexical (BM25) half of a local index: a tantivy index on disk, updated in place by segments.

Each chunk is one tantivy document: its row id (indexed, so it can be deleted by term or by range, and a
fast field, so hits name their rows) and "title. text" analysed the way bm25s analyses it for the
rest of the project: the scikit-learn token pattern `\\b\\w\\w+\\b`, lowercase, bm25s's English stopwords,
then the Snowball English stemmer (rust-stemmers' `english` is the same algorithm as PyStemmer's).
Term frequencies are kept, positions are not: BM25 needs no more.

tantivy writes new segments on each commit and merges them in background threads (its log merge
policy); a commit is atomic, and readers open a snapshot (`Searcher`) that later commits never change.
The writer's own lock file (`.tantivy-writer.lock`) is an OS file lock, dropped by the kernel when a
writer is killed; deepsearch's write.lock is taken first anyway.

Why tantivy rather than SQLite FTS5 or bm25s segments: see docs/local-index.md (measured there).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

ROW, TEXT = "row", "text"
TOKENIZER = "deepsearch_en"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's (and scikit-learn's) default
_WRITER_HEAP = 96 * 2**20
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


class LexicalWriter:
    """The one writer of the lexical index (the caller holds the index's write lock)."""

    def __init__(self, path: Path, stemmer_language: str | None, threads: int = 1):
        self.index = _open(path, stemmer_language, create=True)
        self._writer = self.index.writer(heap_size=_WRITER_HEAP * max(1, threads), num_threads=threads)
        self._schema = self.index.schema

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

    def search(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(row, BM25 score), best first; a query word used twice counts twice, as in bm25s."""
        t = _tantivy()
        terms = self.query_terms(query)
        if not terms or not self.searcher.num_docs:
            return []
        clauses = []
        for term, n in sorted(terms.items()):
            q = t.Query.term_query(self._schema, TEXT, term, index_option="freq")
            clauses.append((t.Occur.Should, q if n == 1 else t.Query.boost_query(q, float(n))))
        hits = self.searcher.search(t.Query.boolean_query(clauses), limit=depth, count=False).hits
        if not hits:
            return []
        rows = self.searcher.fast_field_values(ROW, [address for _, address in hits])
        return [(int(row), float(score)) for (score, _), row in zip(hits, rows, strict=True)]
