"""Local index: reading a folder, incremental updates, deletions, bad input, corruption, search modes."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from deepsearch.tools import index_store as store
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher, LocalSearchInput, local_search_tool

BM25_ONLY = IndexOptions(dense=False)
HTML = """<html><head><meta charset="utf-8"><title>Volcano facts</title></head><body><nav>Home | About</nav>
<article><h1>Volcanoes</h1><p>Mount Etna is an active stratovolcano on the east coast of Sicily. It is one of
the most active volcanoes in the world and is in an almost constant state of activity.</p>
<p>The fertile volcanic soils support extensive agriculture, with vineyards and orchards.</p></article></body></html>"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "rivers.md").write_text("# Rivers\n\nThe Danube flows through Vienna and Budapest to the Black Sea.\n")
    (root / "sub" / "etna.html").write_text(HTML)
    (root / "latin1.txt").write_bytes("Caf\xe9 culture in Lyon: the bouchon serves quenelles.".encode("latin-1"))
    (root / "image.txt").write_bytes(b"\x89PNG\x00\x00\x00binary")
    (root / "notes.bin").write_bytes(b"ignored: not a supported type")
    (root / "corpus.jsonl").write_text(
        "\n".join(
            [
                json.dumps({"id": "q1", "title": "Aurora", "text": "The aurora borealis lights up polar skies."}),
                "not json",
                json.dumps({"id": "q2", "title": "Tides", "text": "Tides are caused by the Moon's gravity."}),
                json.dumps({"title": "no id", "text": "dropped"}),
            ]
        )
    )
    return root


def _searcher(index_dir: Path, **settings) -> LocalSearcher:
    return LocalSearcher(index_dir, IndexSettings(**settings))


def test_indexes_every_supported_type_and_counts_what_it_skips(corpus: Path, tmp_path: Path):
    report = update_index(tmp_path / "idx", [corpus], BM25_ONLY)
    assert report.files_added == 4  # md, html, latin-1 txt, jsonl; binary txt is read then skipped
    reasons = report.skipped_by_reason()
    assert reasons["binary content"] == 1
    assert reasons["invalid JSON"] == 1
    assert any(s.reason.startswith("record lacks field(s) id") for s in report.skipped)
    assert report.counts.documents == 5 and report.counts.chunks == 5
    searcher = _searcher(tmp_path / "idx")
    [hit] = searcher.search("Etna Sicily volcano", k=1)
    assert hit.doc_id == "sub/etna.html" and hit.title == "Volcanoes"  # trafilatura prefers the <h1>
    assert "Home | About" not in hit.text  # boilerplate removed by trafilatura
    [hit] = searcher.search("bouchon Lyon", k=1)
    assert "Caf\ufffd" in hit.text  # not UTF-8: decoded with a replacement character
    [hit] = searcher.search("Moon gravity tides", k=1)
    assert (hit.doc_id, hit.chunk_id, hit.title) == ("q2", "q2#0", "Tides")
    assert hit.source.endswith("corpus.jsonl") and hit.neighbours.prev is None
    assert searcher.search("Danube", k=1)[0].title == "Rivers"  # markdown heading is the title


def test_rerun_skips_unchanged_files_updates_changed_and_drops_deleted(corpus: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    update_index(idx, [corpus], BM25_ONLY)
    again = update_index(idx, [corpus], BM25_ONLY)
    assert (again.files_added, again.files_updated, again.files_unchanged, again.chunks_added) == (0, 0, 4, 0)

    (corpus / "rivers.md").write_text("# Rivers\n\nThe Rhine flows past Cologne to the North Sea.\n")
    (corpus / "sub" / "etna.html").unlink()
    (corpus / "new.txt").write_text("Glaciers carve fjords in Norway.")
    report = update_index(idx, [corpus], BM25_ONLY)
    assert (report.files_added, report.files_updated, report.files_removed) == (1, 1, 1)
    searcher = _searcher(idx)
    assert searcher.search("Danube Budapest") == []
    assert searcher.search("Etna") == []
    assert searcher.search("Rhine Cologne", k=1)[0].doc_id == "rivers.md"
    assert searcher.search("fjords", k=1)[0].doc_id == "new.txt"
    assert store.read_manifest(idx).counts.documents == 5


def test_long_document_chunks_link_their_neighbours(tmp_path: Path):
    doc = tmp_path / "long.txt"
    doc.write_text(" ".join(f"Paragraph {i} is about the city of Zurich and item {i}." for i in range(200)))
    update_index(tmp_path / "idx", [doc], IndexOptions(dense=False))
    searcher = _searcher(tmp_path / "idx", per_doc=0)
    hits = searcher.search("Zurich item 150", k=3)
    assert hits[0].doc_id == str(doc.resolve())
    hit = hits[0]
    assert hit.neighbours.prev and hit.neighbours.next
    texts = searcher.get_chunks([hit.neighbours.prev, hit.neighbours.next])
    assert set(texts) == {hit.neighbours.prev, hit.neighbours.next}
    assert doc.read_text()[hit.start : hit.end] == hit.text
    assert len(_searcher(tmp_path / "idx", per_doc=1).search("Zurich item", k=3)) == 1


def test_symlink_loop_is_not_followed_forever(tmp_path: Path):
    root = tmp_path / "loop"
    (root / "a").mkdir(parents=True)
    (root / "a" / "doc.txt").write_text("Symlinks can point back at their parent.")
    (root / "a" / "back").symlink_to(root)
    (root / "dangling.md").symlink_to(tmp_path / "missing.md")
    report = update_index(tmp_path / "idx", [root], BM25_ONLY)
    assert report.counts.documents == 1
    assert report.skipped_by_reason() == {"unreadable": 1}


def test_oversized_files_are_skipped_and_missing_paths_are_a_usage_error(tmp_path: Path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 50_000)
    report = update_index(tmp_path / "idx", [big], IndexOptions(dense=False, max_file_bytes=10_000))
    assert report.skipped_by_reason() == {"oversized": 1} and report.counts.documents == 0
    assert _searcher(tmp_path / "idx").search("word") == []
    with pytest.raises(UsageError, match="no such file"):
        update_index(tmp_path / "idx", [tmp_path / "nope"], BM25_ONLY)


def test_duplicate_ids_across_files_are_skipped(tmp_path: Path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps({"id": "x", "title": name, "text": "same id"}) + "\n")
    report = update_index(tmp_path / "idx", [tmp_path / "a.jsonl", tmp_path / "b.jsonl"], BM25_ONLY)
    assert report.counts.documents == 1
    assert report.skipped[0].reason.startswith("duplicate id: 'x'")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "manifest.json").write_text("{not json"),
        lambda d: (d / "manifest.json").write_text(
            (d / "manifest.json").read_text().replace(f'"version": {store.FORMAT_VERSION}', '"version": 99')
        ),
        lambda d: (d / "chunks.sqlite").write_bytes(b"garbage" * 100),
        lambda d: shutil.rmtree(d / "search" / "lexical"),
        lambda d: (d / "manifest.json").unlink(),
    ],
    ids=["bad-json", "version", "sqlite", "search-files", "no-manifest"],
)
def test_corrupt_or_mismatched_index_says_to_rebuild(corpus: Path, tmp_path: Path, damage):
    idx = tmp_path / "idx"
    update_index(idx, [corpus], BM25_ONLY)
    for leftover in idx.glob("chunks.sqlite-*"):  # WAL side files would let SQLite repair the damage
        leftover.unlink()
    damage(idx)
    with pytest.raises(store.IndexCorrupt, match="--rebuild"):
        _searcher(idx)
    report = update_index(idx, [corpus], BM25_ONLY, rebuild=True)
    assert report.counts.documents == 5 and _searcher(idx).search("Danube")


def test_interrupted_update_resumes_without_redoing_committed_files(corpus: Path, tmp_path: Path):
    idx = tmp_path / "idx"

    def crash_on_fourth(n: int, total: int, path: str) -> None:
        if n == 4:  # corpus.jsonl and latin1.txt are committed; image.txt is binary
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update_index(idx, [corpus], BM25_ONLY, progress=crash_on_fourth)
    with sqlite3.connect(idx / "chunks.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 2
    report = update_index(idx, [corpus], BM25_ONLY)
    assert (report.files_unchanged, report.files_added) == (2, 2)
    assert _searcher(idx).search("aurora", k=1)[0].doc_id == "q1"


def test_bm25_only_index_refuses_dense_mode_and_empty_query(corpus: Path, tmp_path: Path):
    update_index(tmp_path / "idx", [corpus], BM25_ONLY)
    searcher = _searcher(tmp_path / "idx")
    assert searcher.default_mode() == "bm25"
    with pytest.raises(UsageError, match="no dense vectors"):
        searcher.search("aurora", mode="dense")
    with pytest.raises(UsageError, match="empty"):
        searcher.search("   ")
    assert searcher.search("zzzunknownword") == []


def test_hybrid_search_fuses_bm25_and_dense_ranks(corpus: Path, tmp_path: Path):
    pytest.importorskip("wordllama")
    update_index(tmp_path / "idx", [corpus], IndexOptions(dense=True))
    assert store.read_manifest(tmp_path / "idx").dense_model
    searcher = _searcher(tmp_path / "idx")
    assert searcher.default_mode() == "hybrid"
    hits = searcher.search("northern lights in the polar sky", k=5)
    assert hits[0].doc_id == "q1"
    assert "dense" in hits[0].ranks
    dense_only = searcher.search("volcanic eruption", k=5, mode="dense")
    assert len(dense_only) == 5 and all(set(h.ranks) == {"dense"} for h in dense_only)
    assert dense_only[0].doc_id == "sub/etna.html"


def test_langchain_tool_has_a_typed_schema_and_runs_async(corpus: Path, tmp_path: Path):
    update_index(tmp_path / "idx", [corpus], BM25_ONLY)
    tool = local_search_tool(_searcher(tmp_path / "idx"))
    assert tool.name == "local_search" and tool.args_schema is LocalSearchInput
    assert set(tool.args) == {"query", "k", "mode"}
    results = asyncio.run(tool.ainvoke({"query": "Danube Vienna", "k": 2}))
    assert results[0]["doc_id"] == "rivers.md" and results[0]["neighbours"] == {"prev": None, "next": None}
    with pytest.raises(ValueError):
        tool.invoke({"query": "", "k": 2})
