"""The pooled HotpotQA retrieval set: every paragraph of every question (deduplicated by title+text)
as one corpus, and per question the ids of its two gold (`is_supporting`) paragraphs.

Built the same way as the project's contract check, so figures are comparable with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel


class Passage(BaseModel):
    id: str
    title: str
    text: str


class Question(BaseModel):
    id: str
    question: str
    gold_ids: list[str]
    answers: list[str] = []


def load_pool(data_path: Path) -> tuple[list[Passage], list[Question]]:
    """`data_path` is the data set folder or its hotpotqa_dev_500.jsonl."""
    file = data_path / "hotpotqa_dev_500.jsonl" if data_path.is_dir() else data_path
    key_to_id: dict[tuple[str, str], str] = {}
    passages: list[Passage] = []
    questions: list[Question] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        gold = []
        for ctx in row["contexts"]:
            key = (ctx["title"], ctx["paragraph_text"].strip())
            if key not in key_to_id:
                key_to_id[key] = f"p{len(key_to_id)}"
                passages.append(Passage(id=key_to_id[key], title=key[0], text=key[1]))
            if ctx["is_supporting"]:
                gold.append(key_to_id[key])
        answers = [a for obj in row.get("answers_objects", []) for a in obj.get("spans", [])]
        questions.append(Question(id=row["question_id"], question=row["question_text"], gold_ids=gold, answers=answers))
    return passages, questions


def write_corpus_jsonl(passages: list[Passage], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for p in passages:
            f.write(p.model_dump_json() + "\n")
    return path


KS = (2, 5, 10, 20)


def recall_table(ranked: list[list[str]], questions: list[Question], ks: tuple[int, ...] = KS) -> dict[str, float]:
    """recall@k (share of gold paragraphs in the top k) and both@k (share of questions with all gold in the top k)."""
    figures: dict[str, float] = {}
    for k in ks:
        recall = both = 0.0
        for ids, q in zip(ranked, questions, strict=True):
            found = len(set(ids[:k]) & set(q.gold_ids))
            recall += found / len(q.gold_ids)
            both += found == len(q.gold_ids)
        figures[f"recall@{k}"] = round(recall / len(questions), 3)
        figures[f"both@{k}"] = round(both / len(questions), 3)
    return figures
