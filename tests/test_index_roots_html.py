"""Document ids stay unique across indexed folders; HTML is extracted in the hard-timeout pool at index time."""

from __future__ import annotations

import time
from pathlib import Path

from deepsearch.tools import corpus_readers
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

BM25_ONLY = IndexOptions(dense=False)


def test_readme_in_two_roots_is_kept_twice_with_stable_ids(tmp_path: Path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for root, animal in ((alpha, "otters"), (beta, "herons")):
        (root / "docs").mkdir(parents=True)
        (root / "README.md").write_text(f"# {root.name}\n\nThis project is about {animal}.\n")
        (root / "docs" / "guide.md").write_text(f"# Guide\n\nFeeding {animal} by hand.\n")
    idx = tmp_path / "idx"
    report = update_index(idx, [alpha, beta], BM25_ONLY)
    assert report.counts.documents == 4 and not report.skipped
    searcher = LocalSearcher(idx)
    ids = {q: searcher.search(q, k=1)[0].doc_id for q in ("project otters", "project herons", "feeding herons")}
    # The first root keeps the plain relative id (as a single root always does); the second is qualified.
    assert ids == {
        "project otters": "README.md",
        "project herons": "beta/README.md",
        "feeding herons": "beta/docs/guide.md",
    }
    assert searcher.search("project herons", k=1)[0].chunk_id == "beta/README.md#0"

    (alpha / "README.md").write_text("# alpha\n\nThis project is about otters and voles.\n")
    (beta / "README.md").write_text("# beta\n\nThis project is about herons and egrets.\n")
    update_index(idx, [alpha, beta], BM25_ONLY)  # both changed: each keeps its id
    assert searcher.search("voles", k=1)[0].doc_id == "README.md"
    assert searcher.search("egrets", k=1)[0].doc_id == "beta/README.md"


def test_roots_with_the_same_name_fall_back_to_the_full_path(tmp_path: Path):
    roots = [tmp_path / n / "notes" for n in ("a", "b", "c")]  # files are read in path order
    for root, word in zip(roots, ("kestrels", "buzzards", "harriers"), strict=True):
        root.mkdir(parents=True)
        (root / "todo.txt").write_text(f"Watch the {word}.\n")
    report = update_index(tmp_path / "idx", roots, BM25_ONLY)
    assert report.counts.documents == 3
    searcher = LocalSearcher(tmp_path / "idx")
    assert searcher.search("kestrels", k=1)[0].doc_id == "todo.txt"
    assert searcher.search("buzzards", k=1)[0].doc_id == "notes/todo.txt"
    assert searcher.search("harriers", k=1)[0].doc_id == str((roots[2] / "todo.txt").resolve())


def stuck_extractor(*args, **kwargs):
    """Stands in for trafilatura on a page it never finishes (runs in the worker process, imported by name)."""
    time.sleep(600)


def test_html_that_never_finishes_extracting_costs_the_hard_timeout_only(monkeypatch, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pathological.html").write_text("<html><body>" + "<div>" * 5000 + "text</body></html>")
    (docs / "fine.txt").write_text("Hedgehogs eat beetles.\n")
    monkeypatch.setattr(corpus_readers, "extract_document", stuck_extractor)
    started = time.monotonic()
    report = update_index(tmp_path / "idx", [docs], IndexOptions(dense=False, html_timeout_s=1.0))
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed  # two 1 s limits plus starting workers; in-process it would take 600 s
    [skip] = report.skipped
    assert skip.path.endswith("pathological.html")
    assert skip.reason == "extraction timed out: HTML, 1 s hard limit"
    assert report.skipped_by_reason() == {"extraction timed out": 1}
    assert report.files_added == 1 and LocalSearcher(tmp_path / "idx").search("hedgehogs", k=1)[0].doc_id == "fine.txt"


def test_html_is_extracted_in_the_worker_pool(monkeypatch, tmp_path: Path):
    """Each HTML file goes through the pool with the hard timeout, and comes back as fetch_page's extraction."""
    calls: list[tuple] = []
    real = corpus_readers.shared_pool

    def spy(size: int):
        pool = real(size)

        class Spy:
            def call_sync(self, fn, *args, **kwargs):
                calls.append((fn.__name__, args[1], kwargs["timeout_s"]))
                return pool.call_sync(fn, *args, **kwargs)

        return Spy()

    monkeypatch.setattr(corpus_readers, "shared_pool", spy)
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Owls</title></head><body><p>Barn owls hunt voles at dusk.</p></body></html>")
    update_index(tmp_path / "idx", [page], BM25_ONLY)
    assert calls == [("extract_document", "html", 20.0)]
    [hit] = LocalSearcher(tmp_path / "idx").search("barn owls", k=1)
    assert hit.title == "Owls" and "voles at dusk" in hit.text


def test_html_the_extractor_fails_on_is_skipped_with_why(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(corpus_readers, "extract_document", failing_extractor)
    page = tmp_path / "page.html"
    page.write_text("<html><body><p>Anything.</p></body></html>")
    report = update_index(tmp_path / "idx", [page], BM25_ONLY)
    assert [s.reason for s in report.skipped] == ["unreadable HTML: ValueError: not today"]


def failing_extractor(*args, **kwargs):
    raise ValueError("not today")
