"""Write data/ from the SpamAssassin corpus in ../../../shared/datasets/spamassassin (public domain).

inputs.jsonl: 500 training-split e-mails the teacher labels, each with its gold label (never shown
to the teacher nor trained on: the filter's report audits the teacher with it). heldout.jsonl:
400 test-split e-mails with gold labels. examples.jsonl: the teacher's few-shot examples, from the
training split, none of them an input (examples-reasoning.jsonl: the same with a rationale each). inputs-more.jsonl: 2,000 more training-split e-mails (none
of the above) for progressive/, where the MiniLM student is the teacher: a cheap teacher can label
four times as many. Labels are `spam` and `legit` (the corpus's ham). Each sample is stratified by the corpus's groups (easy ham,
hard ham, spam), so the shares of spam and of look-alike ham are the corpus's. Deterministic:
rerunning writes the same bytes.
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[2] / "shared" / "datasets" / "spamassassin"
INPUTS, HELDOUT, MORE = 500, 400, 2000
EXAMPLES = ("spam", "ham", "ham", "spam")  # drawn in this order...
TURNS = (1, 0, 3, 2)  # ...and shown ham, spam, spam, ham: SmolLM2 leans to the label it saw last
# The teacher answers with these words: SmolLM2 says `legit` for legitimate mail far more
# reliably than the corpus's `ham` (README.md has the figures, from training-split rows).
LABELS = {"spam": "spam", "ham": "legit"}
# examples-reasoning.jsonl: the same examples with the reasoning a teacher asked to reason (or to
# explain its answer) is shown (reasoning/, teacher.reasoning in explain mode). Written by hand.
RATIONALES = {
    "easy-ham-1/00486": "It quotes another writer and argues back about a topic of discussion; it sells nothing and "
    "asks for no money, so it is legit.",
    "spam-2/00760": "It is written to anyone with debts, offers a free consultation and pushes the reader to contact "
    "them now: an unsolicited offer about money, so it is spam.",
    "spam-2/00189": "The greeting has a placeholder instead of a name and it advertises free minutes of a calling "
    "product: a mass mailing that sells a service, so it is spam.",
    "easy-ham-2/01306": "A list member replies to another by name about filtering spam for their users and asks the "
    "list a question: a discussion, nothing offered, so it is legit.",
}
BODY_CHARS = 1500  # the template reads less; the rest leaves room to change it
FIELDS = ("id", "group", "label", "subject", "body")


def read(split: str) -> list[dict]:
    with open(SOURCE / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def stratified(rows: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n rows, each group's share as in `rows` (largest remainders), in the corpus's order."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    exact = {g: n * len(members) / len(rows) for g, members in groups.items()}
    quota = {g: int(q) for g, q in exact.items()}
    for g in sorted(exact, key=lambda g: quota[g] - exact[g])[: n - sum(quota.values())]:
        quota[g] += 1
    chosen = {id(r) for g, members in sorted(groups.items()) for r in rng.sample(members, quota[g])}
    return [r for r in rows if id(r) in chosen]


def slim(row: dict) -> dict:
    out = {k: (row[k][:BODY_CHARS] if k == "body" else row[k]) for k in FIELDS}
    return {**out, "label": LABELS[row["label"]]}


def write(name: str, rows: list[dict], rationale: bool = False) -> None:
    (HERE / "data").mkdir(exist_ok=True)
    with open(HERE / "data" / name, "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps({**slim(r), **({"rationale": RATIONALES[r["id"]]} if rationale else {})}, ensure_ascii=False)
            + "\n"
            for r in rows
        )


def main() -> int:
    if not SOURCE.is_dir():
        print(f"prepare.py: {SOURCE} not found (the SpamAssassin corpus)", file=sys.stderr)
        return 2
    rng = random.Random(2002)
    train, test = read("train"), read("test")
    inputs = stratified(train, INPUTS, rng)
    taken = {r["id"] for r in inputs}
    pool = {
        label: [r for r in train if r["label"] == label and r["id"] not in taken and len(r["body"]) > 200]
        for label in ("spam", "ham")
    }
    examples = []
    for label in EXAMPLES:
        row = rng.choice(pool[label])
        pool[label].remove(row)
        examples.append(row)
    examples = [examples[i] for i in TURNS]
    write("inputs.jsonl", inputs)
    write("heldout.jsonl", stratified(test, HELDOUT, rng))
    write("examples.jsonl", examples)
    write("examples-reasoning.jsonl", examples, rationale=True)
    used = taken | {r["id"] for r in examples}  # drawn last: the files above stay as they were
    write("inputs-more.jsonl", stratified([r for r in train if r["id"] not in used], MORE, rng))
    return 0


if __name__ == "__main__":
    sys.exit(main())
