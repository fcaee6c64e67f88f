"""The scrubber against a labelled set: recall and precision per kind, and the share of clean
sentences it changes, for the regex scrubber this project had before (read from git history)
and the Presidio one, with and without the NER model, side by side in one run; then speed.

    .venv/bin/python bench/scrub_eval.py
    .venv/bin/python bench/scrub_eval.py --speed-rows 100000   # throughput on 100k log lines

The set (tests/privacy_set.py): 120 sentences for each of 13 kinds, one planted value each, in
several surface forms, and 500 clean sentences with confusable numbers. A planted value counts
as found when every letter and digit of it is inside a masked span (a value half masked leaks).
A masked span is right when it overlaps a planted value; precision is per tag the scrubber wrote.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import types
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

OLD_COMMIT = "e8eafd9"  # the last commit with the regex scrubber (distillbuild/curate/scrub.py)
TAG = re.compile(r"\[[A-Z][A-Z0-9_]*\]")
STRUCTURED = ("email", "phone", "card", "iban", "ip", "national_id", "secret")
NAMED = ("person", "address")


def old_scrubber():
    """The regex scrubber as it was, loaded from git: e-mail, phone and card rules."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:distillbuild/curate/scrub.py"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    module = types.ModuleType("old_scrub")
    sys.modules["old_scrub"] = module  # dataclasses look their module up
    exec(compile(source, "old_scrub.py", "exec"), module.__dict__)
    scrubber = module.Scrubber.from_spec(None)
    return lambda texts: [scrubber(t) for t in texts]


def masked_spans(original: str, output: str) -> list[tuple[int, int, str]]:
    """(start, end, tag) of each stretch of `original` that a tag replaced in `output`: the text
    between tags is copied unchanged, so the output read as a pattern (each tag a group) aligns."""
    pieces, tags = TAG.split(output), TAG.findall(output)
    pattern = re.escape(pieces[0]) + "".join("(.+?)" + re.escape(piece) for piece in pieces[1:])
    match = re.fullmatch(pattern, original, re.DOTALL)
    if match is None:  # the scrubber changed more than the tags show
        return [(0, len(original), "UNALIGNED")]
    return [
        (match.start(i + 1), match.end(i + 1), t[1:-1].rstrip("0123456789").rstrip("_")) for i, t in enumerate(tags)
    ]


def evaluate(name: str, mask, planted, clean) -> dict:
    outputs = mask([s.text for s in planted])
    found, total = Counter(), Counter()
    emitted, right = Counter(), Counter()
    for sentence, out in zip(planted, outputs):
        spans = masked_spans(sentence.text, out)
        for p in sentence.planted:
            total[p.kind] += 1
            covered = all(
                any(a <= i < b for a, b, _ in spans) for i in range(p.start, p.end) if sentence.text[i].isalnum()
            )
            found[p.kind] += covered
        for a, b, tag in spans:
            emitted[tag] += 1
            right[tag] += any(a < p.end and p.start < b for p in sentence.planted)
    clean_out = mask(clean)
    changed = [(c, o) for c, o in zip(clean, clean_out) if c != o]
    for c, o in changed:  # every span masked in a clean sentence is a wrong one
        for _a, _b, tag in masked_spans(c, o):
            emitted[tag] += 1
    return {
        "name": name,
        "recall": {k: found[k] / total[k] for k in total},
        "precision": {t: right[t] / emitted[t] for t in emitted},
        "clean_changed": len(changed) / len(clean),
        "examples": changed[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-rows", type=int, default=20000)
    args = parser.parse_args()
    from privacy_set import evaluation_set

    from distillbuild.privacy.scrubber import Scrubber, ScrubSettings, ner_available

    planted, clean = evaluation_set()
    print(f"{len(planted)} sentences with one planted value each, {len(clean)} clean sentences")
    engines = [("old regex", old_scrubber()), ("presidio", Scrubber(ScrubSettings(ner="off")).mask_many)]
    if ner_available():
        engines.append(("presidio + NER", Scrubber(ScrubSettings(ner="on")).mask_many))
    results = [evaluate(name, mask, planted, clean) for name, mask in engines]
    kinds = list(dict.fromkeys(s.planted[0].kind for s in planted))
    print("\nrecall per kind (planted values wholly masked)")
    print("| kind | " + " | ".join(r["name"] for r in results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{r['recall'][kind]:.3f}" for r in results) + " |")
    print("\nprecision per tag written (masked spans that cover a planted value)")
    tags = sorted({t for r in results for t in r["precision"]})
    print("| tag | " + " | ".join(r["name"] for r in results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for tag in tags:
        print(
            f"| {tag} | "
            + " | ".join(f"{r['precision'][tag]:.3f}" if tag in r["precision"] else "-" for r in results)
            + " |"
        )
    print("\n| clean sentences changed | " + " | ".join(f"{r['clean_changed']:.1%}" for r in results) + " |")
    for r in results:
        for before, after in r["examples"]:
            print(f"  {r['name']}: {before!r} -> {after!r}")
    speed(args.speed_rows, planted, clean, engines)


def speed(n: int, planted, clean, engines) -> None:
    """Rows per second on log-like lines: a tenth carry a value, the rest are clean."""
    lines = [(planted[i % len(planted)].text if i % 10 == 0 else clean[i % len(clean)]) for i in range(n)]
    print(f"\nspeed on {n:,} lines (one in ten with a value), one process:")
    by_name = defaultdict(float)
    for name, mask in engines:
        t0 = time.perf_counter()
        mask(lines)
        by_name[name] = n / (time.perf_counter() - t0)
        print(f"  {name:<16} {by_name[name]:>9,.0f} rows/s")


if __name__ == "__main__":
    main()
