"""Eval data sets: each format recognised from its records, gold passages and hops, names and selection."""

from __future__ import annotations

import json

import pytest
from deepsearch.agent.errors import UsageError
from deepsearch.agent.eval.datasets import load_dataset, passage_id, select

IRCOT = {"question_id": "h1", "question_text": "Who?", "answers_objects": [{"spans": ["Ann"]}],
         "contexts": [{"id": "0", "title": "A", "paragraph_text": "Ann  wrote it.", "is_supporting": True},
                      {"id": "1", "title": "B", "paragraph_text": "Bob did not.", "is_supporting": False}]}  # fmt: skip
HOTPOT = {"_id": "o1", "question": "Which?", "answer": "x", "type": "comparison", "level": "easy",
          "supporting_facts": [["A", 0]], "context": [["A", ["Ann", " wrote it."]], ["C", ["Cy."]]]}  # fmt: skip
MUSIQUE = {"id": "3hop1__1_2_3", "question": "What?", "answer": "y", "answer_aliases": ["why"], "answerable": True,
           "paragraphs": [{"idx": 0, "title": "T", "paragraph_text": "one", "is_supporting": True},
                          {"idx": 1, "title": "T", "paragraph_text": "two", "is_supporting": False}],
           "question_decomposition": [{"id": 1}, {"id": 2}, {"id": 3}]}  # fmt: skip
FRAMES = {"id": "0", "Question": "Name?", "Answer": "Jane", "answer": ["Jane"], "reasoning_types": "Temporal",
          "wiki_links": "['https://en.wikipedia.org/wiki/A', 'https://en.wikipedia.org/wiki/B']"}  # fmt: skip


def test_ircot_hotpot_pools_passages_and_marks_gold(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(IRCOT) + "\n")
    data = load_dataset(str(path), tmp_path)
    q = data.questions[0]
    assert data.format == "hotpotqa-ircot" and q.answers == ["Ann"] and q.meta["hops"] == 2
    assert q.meta["gold_passages"] == [passage_id("A", "Ann wrote it.")] and len(data.passages) == 2


def test_original_hotpot_reads_the_corpus_beside_it(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([HOTPOT]))
    (tmp_path / "train_corpus.json").write_text(json.dumps({"A": ["Ann", " wrote it."], "D": ["Dee."]}))
    data = load_dataset(str(tmp_path / "train.json"), tmp_path)
    q = data.questions[0]
    assert data.format == "hotpotqa" and q.meta["category"] == "comparison"
    assert q.meta["gold_passages"] == [passage_id("A", "Ann wrote it.")]
    assert {p.title for p in data.passages} == {"A", "C", "D"}  # the corpus passage and the question's own


def test_musique_keeps_same_title_passages_apart_and_counts_hops(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps([MUSIQUE]))
    data = load_dataset(str(tmp_path / "m.json"), tmp_path)
    q = data.questions[0]
    assert q.answers == ["y", "why"] and q.meta["hops"] == 3 and q.meta["category"] == "3hop1"
    assert len(data.passages) == 2 and q.meta["gold_passages"] == [passage_id("T", "one")]


def test_frames_has_no_passages_and_links_are_parsed_not_evaluated(tmp_path):
    (tmp_path / "frames.json").write_text(json.dumps([FRAMES, {**FRAMES, "id": "1", "wiki_links": "__import__('os')"}]))
    data = load_dataset(str(tmp_path / "frames.json"), tmp_path)
    assert data.format == "questions" and not data.passages
    assert len(data.questions[0].meta["gold_links"]) == 2 and data.questions[1].meta["gold_links"] == []


def test_names_resolve_under_the_data_dir(tmp_path):
    folder = tmp_path / "bamboogle"
    folder.mkdir()
    (folder / "bamboogle.json").write_text(json.dumps([{"Question": "Q?", "source": "bamboogle", "id": "b1",
                                                        "answer": ["a"]}]))  # fmt: skip
    data = load_dataset("bamboogle", tmp_path)
    assert data.name == "bamboogle" and data.questions[0].meta["hops"] == 2
    with pytest.raises(UsageError, match="not found at"):
        load_dataset("frames", tmp_path)
    with pytest.raises(UsageError, match="no data set 'nope'"):
        load_dataset("nope", tmp_path)


@pytest.mark.parametrize(("content", "message"), [("[]", "expected a list"), ('[{"x": 1}]', "unknown record format"),
                                                  ("{oops", "not valid JSON")])  # fmt: skip
def test_bad_files_are_usage_errors(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        load_dataset(str(tmp_path / "bad.json"), tmp_path)


def test_select_by_ids_file_then_limit(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({**IRCOT, "question_id": f"h{i}"}) + "\n" for i in range(5)))
    questions = load_dataset(str(path), tmp_path).questions
    ids = tmp_path / "ids.txt"
    ids.write_text("h3\nh1\nmissing\nh4\n")
    assert [q.id for q in select(questions, ids, 2)] == ["h3", "h1"]
    ids.write_text("zzz\n")
    with pytest.raises(UsageError, match="none of the 1 ids"):
        select(questions, ids, None)
