"""Evaluation data sets by name or path: HotpotQA (IRCoT JSONL; original + corpus), MuSiQue (+ corpus),
Bamboogle, FRAMES, and the question-only 2Wiki/MuSiQue lists. The format is recognised from the records.

Every question becomes a BatchQuestion whose `meta` holds what the report needs: the number of hops,
a category (question type, reasoning type) and the ids of its gold supporting passages. Passages are
identified by a hash of (title, text): titles repeat in MuSiQue, and the id must not depend on order.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..batch.inputs import BatchQuestion
from ..errors import UsageError

# name -> (folder under eval.data_dir, question file)
KNOWN = {
    "hotpotqa": ("hotpotqa_dev_distractor_500", "hotpotqa_dev_500.jsonl"),
    "hotpotqa-train": ("hotpotqa_train_hipporag_100", "hotpotqa_train.json"),
    "musique": ("musique_dev_kag_100", "musique_qa_100.json"),
    "musique-train": ("musique_train_hipporag_100", "musique_train.json"),
    "bamboogle": ("bamboogle", "bamboogle.json"),
    "frames": ("frames", "frames.json"),
    "2wiki": ("twowiki_musique_qa500_nocontext", "2wiki.json"),
    "musique-500": ("twowiki_musique_qa500_nocontext", "musique.json"),
}


class Passage(BaseModel):
    id: str
    title: str
    text: str


class Dataset(BaseModel):
    name: str
    path: Path
    format: str
    questions: list[BatchQuestion]
    passages: list[Passage] = []  # empty: no corpus (web or closed-book only)


def passage_id(title: str, text: str) -> str:
    return "p" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:12]


class _Pool:
    """Passages deduplicated by (title, normalised text)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Passage] = {}

    def add(self, title: str, text: str) -> str:
        title, text = " ".join(title.split()), " ".join(text.split())
        pid = passage_id(title, text)
        self.by_id.setdefault(pid, Passage(id=pid, title=title, text=text))
        return pid


def _question(qid: Any, text: str, answers: list[str], **meta: Any) -> BatchQuestion:
    return BatchQuestion(id=str(qid), question=" ".join(text.split()), answers=[a for a in answers if a], meta=meta)


def _hotpot_ircot(rows: list[dict], pool: _Pool, folder: Path) -> list[BatchQuestion]:
    out = []
    for r in rows:
        gold = [pool.add(c["title"], c["paragraph_text"]) for c in r["contexts"] if c.get("is_supporting")]
        for c in r["contexts"]:
            pool.add(c["title"], c["paragraph_text"])
        answers = [s for obj in r.get("answers_objects", []) for s in obj.get("spans", [])]
        out.append(_question(r["question_id"], r["question_text"], answers, hops=2, category=None, gold_passages=gold))
    return out


def _hotpot_original(rows: list[dict], pool: _Pool, folder: Path) -> list[BatchQuestion]:
    for corpus in sorted(folder.glob("*_corpus.json")):
        data = _load(corpus)
        if isinstance(data, dict):  # {title: [sentences]}
            for title, sentences in data.items():
                pool.add(title, "".join(sentences) if isinstance(sentences, list) else str(sentences))
    out = []
    for r in rows:
        supporting = {t for t, _ in r.get("supporting_facts", [])}
        gold = []
        for title, sentences in r["context"]:
            pid = pool.add(title, "".join(sentences))
            if title in supporting:
                gold.append(pid)
        out.append(
            _question(r["_id"], r["question"], [r["answer"]], hops=2, category=r.get("type"), gold_passages=gold)
        )
    return out


def _musique(rows: list[dict], pool: _Pool, folder: Path) -> list[BatchQuestion]:
    for corpus in sorted(folder.glob("*_corpus.json")):
        data = _load(corpus)
        if isinstance(data, list):  # [{title, text}]
            for p in data:
                pool.add(p.get("title", ""), p.get("text", ""))
    out = []
    for r in rows:
        gold = [pool.add(p["title"], p["paragraph_text"]) for p in r["paragraphs"] if p.get("is_supporting")]
        for p in r["paragraphs"]:
            pool.add(p["title"], p["paragraph_text"])
        shape = re.match(r"(\dhop\d?)", r["id"])
        hops = len(r.get("question_decomposition") or []) or None
        answers = [r["answer"], *r.get("answer_aliases", [])]
        out.append(_question(r["id"], r["question"], answers, hops=hops, category=shape.group(1) if shape else None,
                             gold_passages=gold))  # fmt: skip
    return out


def _question_only(rows: list[dict], pool: _Pool, folder: Path) -> list[BatchQuestion]:
    out = []
    for r in rows:
        answers = r.get("answer")
        answers = answers if isinstance(answers, list) else [answers or r.get("Answer", "")]
        links: list[str] = []
        if isinstance(r.get("wiki_links"), str):  # FRAMES: a Python list literal, never eval'd
            try:
                links = list(ast.literal_eval(r["wiki_links"]))
            except (ValueError, SyntaxError):
                links = []
        hops = 2 if r.get("source") == "bamboogle" else None  # Bamboogle is 2-hop by construction
        out.append(_question(r["id"], r["Question"], [str(a) for a in answers], hops=hops,
                             category=r.get("reasoning_types") or r.get("source"), gold_links=links))  # fmt: skip
    return out


FORMATS: dict[str, tuple[Callable[[dict], bool], Callable[[list[dict], _Pool, Path], list[BatchQuestion]]]] = {
    "hotpotqa-ircot": (lambda r: "question_id" in r and "contexts" in r, _hotpot_ircot),
    "hotpotqa": (lambda r: "_id" in r and "context" in r and "supporting_facts" in r, _hotpot_original),
    "musique": (lambda r: "paragraphs" in r and "question" in r, _musique),
    "questions": (lambda r: "Question" in r and "id" in r, _question_only),
}


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}") from None


def resolve(name_or_path: str, data_dir: Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_dir():
            files = sorted(f for f in path.glob("*.json*") if not f.stem.endswith("_corpus"))
            if len(files) != 1:
                raise UsageError(f"{path} holds {len(files)} question files; name one of them")
            return files[0]
        return path
    if name_or_path in KNOWN:
        folder, file = KNOWN[name_or_path]
        found = data_dir / folder / file
        if not found.is_file():
            raise UsageError(f"data set {name_or_path!r} not found at {found}; set eval.data_dir or give a path")
        return found
    raise UsageError(f"no data set {name_or_path!r}: give a file or one of {', '.join(KNOWN)}")


def load_dataset(name_or_path: str, data_dir: Path) -> Dataset:
    path = resolve(name_or_path, data_dir)
    rows = _load(path)
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise UsageError(f"{path}: expected a list of question records")
    for fmt, (matches, reader) in FORMATS.items():
        if matches(rows[0]):
            pool = _Pool()
            try:
                questions = reader(rows, pool, path.parent)
            except (KeyError, TypeError, ValueError) as e:
                raise UsageError(f"{path}: a {fmt} record lacks or mangles {e}") from None
            name = name_or_path if name_or_path in KNOWN else path.stem
            return Dataset(name=name, path=path, format=fmt, questions=questions, passages=list(pool.by_id.values()))
    raise UsageError(f"{path}: unknown record format (keys {', '.join(sorted(rows[0])[:8])})")


def select(questions: list[BatchQuestion], ids_file: Path | None, limit: int | None) -> list[BatchQuestion]:
    """The questions listed in `ids_file` (in its order), then the first `limit` of them."""
    if ids_file is not None:
        try:
            wanted = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        except OSError as e:
            raise UsageError(f"cannot read {ids_file}: {e.strerror}") from None
        by_id = {q.id: q for q in questions}
        missing = [i for i in wanted if i not in by_id]
        if len(missing) == len(wanted):
            raise UsageError(f"none of the {len(wanted)} ids in {ids_file} is in the data set")
        questions = [by_id[i] for i in wanted if i in by_id]
    return questions[:limit] if limit is not None else questions
