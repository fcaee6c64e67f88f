"""Has production moved away from what the student was distilled on? (`distill drift`)

Two signals, each against a threshold from the spec's `drift` section:

- **Out-of-distribution share.** Every text is embedded (mean-pooled MiniLM, the packaged
  encoder, normalised). The training inputs are split in two by a hash of their text: for a
  quarter of them, the cosine similarity to their nearest neighbour among the rest gives the
  distribution an in-distribution input reaches; its 5th percentile is the cut-off. A new input
  whose nearest training neighbour is less similar than that is out of distribution. With no
  drift about 5% of new inputs fall below it by construction; `max_ood_share` says how many more
  are tolerated.
- **Label-share shift** (a built encoder-classifier student): the total variation distance
  between the shares of each label the student predicts on the training inputs and on the new
  ones (0: the same mix, 1: disjoint).

`distill drift` exits 1 when either exceeds its threshold: a scheduled CI job can re-distil.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from distillbuild.errors import StageError
from distillbuild.spec.inputs import read_rows
from distillbuild.spec.model import Drift

CUTOFF_QUANTILE = 0.05  # the in-distribution similarity below which a new input counts as out of distribution
PROBE_SHARE = 4  # one training input in this many is the in-distribution probe


def _probe(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % PROBE_SHARE == 0


def nearest_similarity(queries: np.ndarray, reference: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Each query's cosine similarity to its nearest reference row (rows already normalised)."""
    out = []
    for start in range(0, len(queries), chunk):
        out.append((queries[start : start + chunk] @ reference.T).max(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def label_shift(before: Sequence[str], after: Sequence[str]) -> tuple[float, dict[str, dict[str, float]]]:
    """Total variation distance of the two label mixes, and the mixes."""
    a, b = Counter(before), Counter(after)
    labels = sorted(set(a) | set(b), key=str)
    share_a = {str(k): a[k] / max(len(before), 1) for k in labels}
    share_b = {str(k): b[k] / max(len(after), 1) for k in labels}
    tvd = 0.5 * sum(abs(share_a[str(k)] - share_b[str(k)]) for k in labels)
    return round(tvd, 6), {"training": share_a, "new": share_b}


OOD_EXAMPLES = 5  # new inputs quoted in the report: the least like the training ones


def drift_report(
    train_texts: list[str],
    new_texts: list[str],
    embed: Callable[[list[str]], np.ndarray],
    max_ood_share: float,
    max_label_shift: float,
    predict: Callable[[list[str]], list[str]] | None = None,
    mask: Callable[[list[str]], list[str]] | None = None,
) -> dict[str, Any]:
    """The measures and the verdict; `mask` (data.scrub at the `drift` door) is applied to the
    example texts the report quotes (the new inputs least like the training ones)."""
    probe = [t for t in train_texts if _probe(t)]
    reference = [t for t in train_texts if not _probe(t)]
    if len(probe) < 20 or len(reference) < 20 or not new_texts:
        raise ValueError(
            f"drift needs at least ~100 training inputs and some new ones (got {len(train_texts)} and {len(new_texts)})"
        )
    ref = embed(reference)
    baseline = nearest_similarity(embed(probe), ref)
    cutoff = float(np.quantile(baseline, CUTOFF_QUANTILE))
    similarity = nearest_similarity(embed(new_texts), ref)
    ood_share = float((similarity < cutoff).mean())
    report: dict[str, Any] = {
        "training_inputs": len(train_texts),
        "new_inputs": len(new_texts),
        "similarity_cutoff": round(cutoff, 6),
        "in_distribution_similarity_median": round(float(np.median(baseline)), 6),
        "new_similarity_median": round(float(np.median(similarity)), 6),
        "ood_share": round(ood_share, 6),
        "ood_share_expected_without_drift": CUTOFF_QUANTILE,
        "max_ood_share": max_ood_share,
    }
    farthest = [new_texts[i] for i in np.argsort(similarity)[:OOD_EXAMPLES] if similarity[i] < cutoff]
    report["ood_examples"] = mask(farthest) if mask is not None else farthest
    reasons = []
    if ood_share > max_ood_share:
        reasons.append(f"{ood_share:.1%} of the new inputs are out of distribution (more than {max_ood_share:.0%})")
    if predict is not None:
        shift, mixes = label_shift(predict(train_texts), predict(new_texts))
        report.update(label_shift=shift, max_label_shift=max_label_shift, label_shares=mixes)
        if shift > max_label_shift:
            reasons.append(
                f"the student's label mix moved by {shift:.3f} (total variation, more than {max_label_shift})"
            )
    else:
        report["label_shift"] = None  # no encoder-classifier student built: not measured
    report.update(drift=bool(reasons), reasons=reasons)
    return report


def minilm_embedder(threads: int = 1, batch: int = 64) -> Callable[[list[str]], np.ndarray]:
    """Normalised mean-pooled embeddings from the packaged MiniLM (the same for every spec)."""
    import torch  # lazy: seconds to import

    from distillbuild.train.common import load_encoder, mean_pool, resolve_base_model

    torch.set_num_threads(threads)
    encoder, tokenizer = load_encoder(resolve_base_model("sentence-transformers/all-MiniLM-L6-v2"))
    encoder.eval()

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                enc = tokenizer(
                    texts[start : start + batch], padding=True, truncation=True, max_length=128, return_tensors="pt"
                )
                pooled = mean_pool(encoder(**enc).last_hidden_state, enc["attention_mask"])
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    return embed


def spec_drift(
    training: Path,
    new: Path,
    template: str | None,
    settings: Drift,
    threads: int,
    classifier: Path | None,
    mask: Callable[[list[str]], list[str]] | None = None,
) -> dict[str, Any]:
    """`distill drift`: a sample of the training inputs against a sample of new ones (each at most
    `settings.sample` rows, drawn with a fixed seed), with the built encoder classifier's label
    mix when `classifier` is its directory."""

    def texts(path: Path) -> list[str]:
        rows = [r["text"] for r in read_rows(path, template, need_label=False)]
        return random.Random(0).sample(rows, settings.sample) if len(rows) > settings.sample else rows

    predict = None
    if classifier is not None:
        from distillbuild.train.encoder import EncoderClassifier  # lazy: imports torch

        predict = EncoderClassifier.load(classifier, threads=threads).predict
    try:
        return drift_report(
            texts(training),
            texts(new),
            minilm_embedder(threads),
            settings.max_ood_share,
            settings.max_label_shift,
            predict,
            mask,
        )
    except ValueError as exc:
        raise StageError(str(exc)) from None


def drift_text(report: dict[str, Any]) -> str:
    """The report in two lines: the measures, then the verdict."""
    shift = (
        "not measured (no encoder-classifier student built)"
        if report["label_shift"] is None
        else f"{report['label_shift']:.3f} (max {report['max_label_shift']})"
    )
    measures = (
        f"drift: {report['new_inputs']} new inputs against {report['training_inputs']} training inputs; "
        f"out of distribution {report['ood_share']:.1%} (about {report['ood_share_expected_without_drift']:.0%} "
        f"without drift, max {report['max_ood_share']:.0%}); label shift {shift}"
    )
    verdict = (
        "drift: RE-DISTIL: " + "; ".join(report["reasons"]) if report["drift"] else "drift: none beyond the thresholds"
    )
    examples = "".join(f"\n  least like the training inputs: {t[:160]!r}" for t in report.get("ood_examples") or [])
    return measures + "\n" + verdict + examples
