"""CPU trainer for ``encoder-classifier`` students, with Hinton-style knowledge distillation.

The student is a Hugging Face encoder (``AutoModel``) loaded from a local directory, mean-pooled
over the attention mask (as sentence-transformers/all-MiniLM-L6-v2 does), followed by
``Dropout(0.1) + Linear(hidden, n_labels)``. The whole network is fine-tuned with AdamW (two
parameter groups: encoder and head learning rates) under a linear schedule with ~6 % warmup.

Rows carry a hard label and, optionally, the teacher's label distribution (``label_probs``); see
:func:`distillation_loss` for how the two are combined.

A trained student is written as::

    out_dir/encoder/          save_pretrained() of the encoder and its tokenizer
    out_dir/head.safetensors  the classification head ("weight", "bias")
    out_dir/student.json      labels, max_length, pooling, base_model, training config

It is written into a temporary sibling directory and renamed into place at the end, so an
interrupted run never leaves a directory that looks like a finished model. What this trainer
shares with the encoder-extractor's (config checks, the base model, the schedule, progress lines,
the atomic save) is in :mod:`distillbuild.train.common`.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from distillbuild.train.common import (
    PACKAGED_MODEL_IDS,
    STUDENT_FILE,
    EarlyStopping,
    TrainConfigChecks,
    TrainingRun,
    adamw_with_warmup,
    fit_and_save,
    inference,
    load_base_model,
    load_saved_student,
    mean_pool,
    resolve_base_model,
    save_encoder,
    start_fit,
    texts_by_length,
    token_states,
    write_model_dir,
)

__all__ = [
    "EncoderTrainConfig",
    "EncoderClassifier",
    "PACKAGED_MODEL_IDS",
    "distillation_loss",
    "fit_encoder_classifier",
    "resolve_base_model",
    "save_encoder_classifier",
    "train_encoder_classifier",
]

HEAD_FILE = "head.safetensors"
HEAD_DROPOUT = 0.1
_EPS = 1e-8


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class EncoderTrainConfig(TrainConfigChecks):
    base_model: str  # a local directory holding a HF encoder, or a packaged model id
    labels: tuple[str, ...]  # class names, index order = head output order
    max_length: int = 64
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5  # encoder
    head_learning_rate: float = 2e-3  # classification head
    kd_alpha: float = 0.5  # weight of the soft-label KD term; (1 - alpha) weights hard-label CE
    kd_temperature: float = 2.0
    seed: int = 13
    threads: int | None = None  # torch.set_num_threads when given
    class_weights: str = "none"  # "balanced": CE weighted by n / (classes * count of the label)
    finetune: str = "full"  # "head": freeze the encoder, train the head on (cached) embeddings
    patience: int | None = None  # stop after this many epochs without a lower validation loss

    _WHAT = "encoder train config"

    def __post_init__(self) -> None:
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
            raise ValueError(f"labels must be a list of class names, got {labels!r}")
        labels = tuple(labels)
        object.__setattr__(self, "labels", labels)
        if len(labels) < 2:
            raise ValueError(f"an encoder classifier needs at least 2 labels, got {list(labels)}")
        if not all(isinstance(lab, str) and lab for lab in labels):
            raise ValueError(f"labels must be non-empty strings, got {list(labels)}")
        dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dupes:
            raise ValueError(f"duplicate labels: {dupes}")
        self._check_base_model()
        self._check_sizes(
            ("max_length", "epochs", "batch_size"), 4, ("learning_rate", "head_learning_rate", "kd_temperature")
        )
        a = self.kd_alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise ValueError(f"kd_alpha must be a number in [0, 1], got {a!r}")
        object.__setattr__(self, "kd_alpha", float(a))
        self._check_seed_and_threads()
        if self.finetune not in ("full", "head"):
            raise ValueError(f"finetune must be 'full' or 'head', got {self.finetune!r}")
        if self.class_weights not in ("none", "balanced"):
            raise ValueError(f"class_weights must be 'none' or 'balanced', got {self.class_weights!r}")
        pt = self.patience
        if pt is not None and (isinstance(pt, bool) or not isinstance(pt, int) or pt < 1):
            raise ValueError(f"patience must be a positive integer or null, got {pt!r}")

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``from_dict(to_dict())`` round-trips."""
        return {**super().to_dict(), "labels": list(self.labels)}


# --------------------------------------------------------------------------- loss


def distillation_loss(
    student_logits: torch.Tensor,
    hard_labels: torch.Tensor,
    teacher_probs: torch.Tensor,
    has_soft: torch.Tensor,
    alpha: float,
    temperature: float,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Knowledge-distillation loss of Hinton, Vinyals & Dean (2015), masked per row.

    With student logits ``z`` (B, C), hard labels ``y`` and teacher probabilities ``p`` (B, C)::

        ce_i   = -log softmax(z_i)[y_i]
        p_T,i  = softmax(log max(p_i / sum p_i, eps) / T)          (= p_i^(1/T), renormalised)
        q_T,i  = log_softmax(z_i / T)
        kd_i   = T^2 * KL(p_T,i || exp q_T,i) = T^2 * sum_c p_T,ic (log p_T,ic - q_T,ic)
        loss_i = alpha * kd_i + (1 - alpha) * ce_i   if has_soft_i   else   ce_i
        loss   = mean_i loss_i

    The T^2 factor keeps the soft-target gradients on the same scale as the CE gradients.
    ``class_weight`` (C,), when given, scales each row's ``ce_i`` by the weight of its label
    (for imbalanced classes); the KD term is left as the teacher's distribution has it.
    Returns ``(loss, kd, ce)`` where ``kd`` is the batchmean of ``kd_i`` over the rows with soft
    labels (``None`` when there are none) and ``ce`` the mean of ``ce_i`` over all rows; ``kd``
    and ``ce`` are for logging, ``loss`` is what to back-propagate. Rows without soft labels may
    hold anything (e.g. zeros) in ``teacher_probs``.
    """
    _check_loss_inputs(student_logits, teacher_probs, alpha, temperature)
    ce_rows = F.cross_entropy(student_logits, hard_labels, reduction="none")
    if class_weight is not None:
        ce_rows = ce_rows * class_weight.to(ce_rows.dtype)[hard_labels]
    ce = ce_rows.mean()
    has_soft = has_soft.to(dtype=torch.bool, device=student_logits.device)
    n_soft = int(has_soft.sum().item())
    if n_soft == 0 or alpha == 0.0:
        kd = None
        if n_soft:
            kd = _kd_rows(student_logits, teacher_probs, temperature)[has_soft].mean().detach()
        return ce, kd, ce

    kd_rows = _kd_rows(student_logits, teacher_probs, temperature)
    mixed = alpha * kd_rows + (1.0 - alpha) * ce_rows
    loss_rows = torch.where(has_soft, mixed, ce_rows)
    kd = kd_rows[has_soft].sum() / n_soft
    return loss_rows.mean(), kd, ce


def _check_loss_inputs(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, alpha: float, temperature: float
) -> None:
    if student_logits.ndim != 2:
        raise ValueError(f"student_logits must be (batch, classes), got {tuple(student_logits.shape)}")
    if teacher_probs.shape != student_logits.shape:
        raise ValueError(
            f"teacher_probs shape {tuple(teacher_probs.shape)} != logits shape {tuple(student_logits.shape)}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _kd_rows(logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row ``T^2 * KL(p_T || q_T)`` (see :func:`distillation_loss`)."""
    p = teacher_probs.to(logits.dtype).clamp(min=0.0)
    p = p / p.sum(dim=-1, keepdim=True).clamp(min=_EPS)
    log_p_t = F.log_softmax(p.clamp(min=_EPS).log() / temperature, dim=-1)
    log_q_t = F.log_softmax(logits / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_q_t)).sum(dim=-1) * temperature**2


# --------------------------------------------------------------------------- model


class _EncoderHeadModel(nn.Module):
    """Encoder -> attention-masked mean pooling -> dropout -> linear head."""

    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float = HEAD_DROPOUT):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def pool(self, **batch: torch.Tensor) -> torch.Tensor:
        return mean_pool(token_states(self.encoder(**batch)), batch["attention_mask"])

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(**batch)))


def _tokenize(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    return dict(
        tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
    )


def _check_pooling(spec_path: Path, meta: dict) -> None:
    if meta.get("pooling", "mean") != "mean":
        raise ValueError(f"{spec_path}: unsupported pooling {meta.get('pooling')!r}")


class EncoderClassifier:
    """A trained encoder-classifier student, for inference."""

    def __init__(self, model: _EncoderHeadModel, tokenizer, labels, max_length: int, meta: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.labels: tuple[str, ...] = tuple(labels)
        self.max_length = int(max_length)
        self.meta = dict(meta or {})

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None) -> "EncoderClassifier":
        saved = load_saved_student(model_dir, "encoder classifier", threads, HEAD_FILE, _check_pooling)
        labels = tuple(saved.meta["labels"])
        model = _EncoderHeadModel(saved.encoder, len(labels))
        head = saved.weights
        if tuple(head["weight"].shape) != tuple(model.head.weight.shape):
            raise ValueError(
                f"{Path(model_dir) / HEAD_FILE}: head weight shape {tuple(head['weight'].shape)} does "
                f"not match {len(labels)} labels x hidden {model.head.in_features}"
            )
        model.head.load_state_dict(head)
        model.eval()
        return cls(model, saved.tokenizer, labels, saved.meta.get("max_length", 64), meta=saved.meta)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), len(labels))``, columns in ``labels`` order."""
        texts, order = texts_by_length(texts, "predict_proba")  # length-sorted batches, undone below
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        batch_size = max(1, int(batch_size))
        with inference(self.model):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = _tokenize(self.tokenizer, [texts[i] for i in idx], self.max_length)
                probs = torch.softmax(self.model(**batch).float(), dim=-1)
                out[idx] = probs.cpu().numpy()
        return out

    def predict(self, texts: list[str], batch_size: int = 64) -> list[str]:
        probs = self.predict_proba(texts, batch_size=batch_size)
        self.last_confidence = [float(p) for p in probs.max(axis=1)]  # each answer's probability (evaluate keeps it)
        return [self.labels[i] for i in probs.argmax(axis=1)]


# --------------------------------------------------------------------------- training


@dataclass
class _Prepared:
    texts: list[str]
    labels: torch.Tensor  # (n,) long
    teacher: torch.Tensor  # (n, C) float, zeros where no soft label
    has_soft: torch.Tensor  # (n,) bool


def _prepare_rows(rows: list[dict], labels: tuple[str, ...], what: str) -> _Prepared:
    index = {lab: i for i, lab in enumerate(labels)}
    texts: list[str] = []
    hard: list[int] = []
    teacher = np.zeros((len(rows), len(labels)), dtype=np.float32)
    has_soft = np.zeros(len(rows), dtype=bool)
    for n, row in enumerate(rows):
        where = f"{what} row {n}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a dict, got {type(row).__name__}")
        text = row.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: 'text' must be a string, got {text!r}")
        probs = row.get("label_probs")
        if probs is not None:
            if not isinstance(probs, dict):
                raise ValueError(f"{where}: 'label_probs' must be a mapping label -> prob or null")
            unknown = sorted(str(k) for k in probs if k not in index)
            if unknown:
                raise ValueError(f"{where}: label_probs has unknown label(s) {unknown}; known: {list(labels)}")
            for lab, value in probs.items():
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: label_probs[{lab!r}] is not a number: {value!r}") from None
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"{where}: label_probs[{lab!r}] must be finite and >= 0, got {value}")
                teacher[n, index[lab]] = value
            total = float(teacher[n].sum())
            if not total > 0:
                raise ValueError(f"{where}: label_probs sum to {total}; need a positive total")
            teacher[n] /= total
            has_soft[n] = True
        label = row.get("label")
        if label is None and probs is not None:
            label = labels[int(teacher[n].argmax())]
        if label not in index:
            raise ValueError(f"{where}: label {label!r} is not one of {list(labels)}")
        texts.append(text)
        hard.append(index[label])
    return _Prepared(
        texts=texts,
        labels=torch.tensor(hard, dtype=torch.long),
        teacher=torch.from_numpy(teacher),
        has_soft=torch.from_numpy(has_soft),
    )


def _evaluate(
    clf: EncoderClassifier, data: _Prepared, embeddings: torch.Tensor | None = None
) -> tuple[float | None, float | None]:
    if not data.texts:
        return None, None
    if embeddings is not None:  # a frozen encoder: the head alone, on the cached embeddings
        clf.model.eval()
        with torch.inference_mode():
            probs = torch.softmax(clf.model.head(embeddings), dim=-1).numpy()
    else:
        probs = clf.predict_proba(data.texts)
    y = data.labels.numpy()
    acc = float((probs.argmax(axis=1) == y).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    return acc, nll


class EmbeddingCache:
    """Pooled embeddings of a frozen encoder, one SQLite row per (model, max_length, text), so a
    head-only retrain after a filter change encodes only texts it has not seen."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self.hits = self.misses = 0

    @staticmethod
    def key(model_id: str, max_length: int, text: str) -> str:
        return hashlib.sha256(f"{model_id}\0{max_length}\0{text}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: list[tuple[str, np.ndarray]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
            [(k, v.astype(np.float32).tobytes()) for k, v in items],
        )

    def close(self) -> None:
        self.db.close()


def model_fingerprint(path: Path) -> str:
    """A content hash of a model directory's files: embeddings are only valid for these weights."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@torch.inference_mode()
def _embed(
    model: _EncoderHeadModel,
    tokenizer,
    texts: list[str],
    max_length: int,
    cache: EmbeddingCache | None,
    model_id: str,
    batch_size: int = 64,
) -> torch.Tensor:
    keys = [EmbeddingCache.key(model_id, max_length, t) for t in texts]
    known = cache.get_many(list(dict.fromkeys(keys))) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    model.eval()
    fresh: list[tuple[str, np.ndarray]] = []
    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        vectors = model.pool(**_tokenize(tokenizer, [texts[i] for i in idx], max_length)).float().numpy()
        for i, vector in zip(idx, vectors):
            known[keys[i]] = vector
            fresh.append((keys[i], vector))
    if cache is not None:
        cache.put_many(fresh)
        cache.hits += len(texts) - len(todo)
        cache.misses += len(todo)
    return torch.from_numpy(np.stack([known[k] for k in keys]))


@dataclass
class _Embedded:
    """A frozen encoder's pooled embeddings of the train and val texts (``finetune: head``)."""

    train: torch.Tensor
    val: torch.Tensor | None


def _prepare_train_val(
    cfg: EncoderTrainConfig, train_rows: list[dict], val_rows: list[dict]
) -> tuple[_Prepared, _Prepared]:
    train = _prepare_rows(list(train_rows), cfg.labels, "train")
    val = _prepare_rows(list(val_rows or []), cfg.labels, "val")
    if len(train.texts) == 0:
        raise ValueError("no training rows")
    return train, val


def _embed_frozen(
    cfg: EncoderTrainConfig,
    model: _EncoderHeadModel,
    tokenizer,
    base_path: Path,
    train: _Prepared,
    val: _Prepared,
    embedding_cache: Path | None,
    log: Callable[[str], None],
) -> _Embedded:
    """Freeze the encoder and embed every text once (or take it from the cache)."""
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    store = EmbeddingCache(Path(embedding_cache)) if embedding_cache else None
    try:
        fingerprint = model_fingerprint(base_path)
        embeddings = _embed(model, tokenizer, train.texts, cfg.max_length, store, fingerprint)
        val_embeddings = _embed(model, tokenizer, val.texts, cfg.max_length, store, fingerprint) if val.texts else None
    finally:
        if store is not None:
            log(f"  embeddings: {store.hits} from the cache, {store.misses} encoded")
            store.close()
    return _Embedded(embeddings, val_embeddings)


def _param_groups(cfg: EncoderTrainConfig, model: _EncoderHeadModel) -> list[dict]:
    """The encoder (when fine-tuned) and the head, each with its learning rate."""
    groups = [{"params": list(model.head.parameters()), "lr": cfg.head_learning_rate}]
    if cfg.finetune == "full":
        groups.insert(
            0, {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.learning_rate}
        )
    return groups


def _class_weight(cfg: EncoderTrainConfig, labels: torch.Tensor) -> torch.Tensor | None:
    """``balanced``: n / (classes * count) per label (0 for a label no row has); else None."""
    if cfg.class_weights != "balanced":
        return None
    counts = torch.bincount(labels, minlength=len(cfg.labels)).float()
    return torch.where(counts > 0, len(labels) / (len(cfg.labels) * counts.clamp(min=1)), torch.zeros_like(counts))


def _log_start(
    cfg: EncoderTrainConfig,
    base_path: Path,
    n: int,
    n_soft: int,
    n_val: int,
    total_steps: int,
    log: Callable[[str], None],
) -> None:
    log(
        f"encoder-classifier: base={cfg.base_model} ({base_path}) train={n} "
        f"(soft labels {n_soft}) val={n_val} labels={len(cfg.labels)} "
        f"epochs={cfg.epochs} batch={cfg.batch_size} steps={total_steps} "
        f"threads={torch.get_num_threads()}"
    )


def _train_epoch(
    run: TrainingRun,
    epoch: int,
    cfg: EncoderTrainConfig,
    clf: EncoderClassifier,
    train: _Prepared,
    embedded: _Embedded | None,
    gen: torch.Generator,
    class_weight: torch.Tensor | None,
) -> None:
    """One pass over the shuffled training rows, one optimiser step per batch."""
    model, n = clf.model, len(train.texts)
    model.train()
    if embedded is not None:
        model.encoder.eval()  # frozen: no dropout inside it either
    perm = torch.randperm(n, generator=gen)
    for start in range(0, n, cfg.batch_size):
        idx = perm[start : start + cfg.batch_size]
        if embedded is not None:
            logits = model.head(model.dropout(embedded.train[idx]))
        else:
            batch = _tokenize(clf.tokenizer, [train.texts[i] for i in idx.tolist()], cfg.max_length)
            logits = model(**batch)
        loss, kd, ce = distillation_loss(
            logits,
            train.labels[idx],
            train.teacher[idx],
            train.has_soft[idx],
            cfg.kd_alpha,
            cfg.kd_temperature,
            class_weight,
        )
        run.optimise(epoch, len(idx), loss, kd_loss=kd, ce_loss=ce)


def _end_epoch(
    epoch: int,
    cfg: EncoderTrainConfig,
    clf: EncoderClassifier,
    val: _Prepared,
    embedded: _Embedded | None,
    log: Callable[[str], None],
) -> dict:
    """The epoch's validation record (accuracy and loss, None without val rows)."""
    acc, vloss = _evaluate(clf, val, embedded.val if embedded is not None else None)
    if acc is not None:
        log(f"  epoch {epoch}/{cfg.epochs} val_accuracy {acc:.4f} val_loss {vloss:.4f}")
    return {"epoch": epoch, "val_accuracy": acc, "val_loss": vloss}


def fit_encoder_classifier(
    cfg: EncoderTrainConfig,
    train_rows: list[dict],
    val_rows: list[dict],
    log: Callable[[str], None] = print,
    base_dir: Path | None = None,
    embedding_cache: Path | None = None,
) -> tuple[EncoderClassifier, dict]:
    """Train in memory; returns the classifier (eval mode) and the training log dict.

    :func:`train_encoder_classifier` is this plus :func:`save_encoder_classifier`.
    """
    t0 = start_fit(cfg.threads)
    train, val = _prepare_train_val(cfg, train_rows, val_rows)
    base_path, encoder, tokenizer = load_base_model(cfg, base_dir)
    model = _EncoderHeadModel(encoder, len(cfg.labels))
    clf = EncoderClassifier(model, tokenizer, cfg.labels, cfg.max_length)
    n, total_steps = len(train.texts), math.ceil(len(train.texts) / cfg.batch_size) * cfg.epochs
    embedded = None
    if cfg.finetune == "head":
        embedded = _embed_frozen(cfg, model, tokenizer, base_path, train, val, embedding_cache, log)
    optimizer, scheduler = adamw_with_warmup(_param_groups(cfg, model), total_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    class_weight = _class_weight(cfg, train.labels)
    n_soft = int(train.has_soft.sum())
    _log_start(cfg, base_path, n, n_soft, len(val.texts), total_steps, log)

    run = TrainingRun(
        log, cfg.epochs, total_steps, model, list(model.parameters()), optimizer, scheduler, entry_in_errors=True
    )
    stopping = EarlyStopping(cfg.patience)
    run.train(
        lambda epoch: _train_epoch(run, epoch, cfg, clf, train, embedded, gen, class_weight),
        lambda epoch: _end_epoch(epoch, cfg, clf, val, embedded, log),
        stopping,
    )
    stopping.restore_best(model, len(run.epoch_log), log)

    model.eval()
    result = run.result(
        t0,
        n,
        len(val.texts),
        soft_label_rows=n_soft,
        best_epoch=stopping.best_epoch or None,
        stopped_early_at=stopping.stopped_at,
    )
    clf.meta = {
        "labels": list(cfg.labels),
        "max_length": cfg.max_length,
        "pooling": "mean",
        "base_model": cfg.base_model,
        "config": cfg.to_dict(),
    }
    return clf, result


def save_encoder_classifier(clf: EncoderClassifier, out_dir: Path) -> None:
    """Write ``clf`` to ``out_dir`` via a temporary sibling directory renamed into place."""

    def write(tmp: Path) -> None:
        save_encoder(tmp, clf.model.encoder, clf.tokenizer)
        head = {k: v.detach().cpu().contiguous().clone() for k, v in clf.model.head.state_dict().items()}
        save_file(head, str(tmp / HEAD_FILE))
        spec = dict(clf.meta)
        spec.update({"labels": list(clf.labels), "max_length": clf.max_length, "pooling": "mean"})
        # student.json last: its presence marks a complete model.
        (tmp / STUDENT_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    write_model_dir(out_dir, write)


def train_encoder_classifier(
    cfg: EncoderTrainConfig,
    train_rows: list[dict],
    val_rows: list[dict],
    out_dir: Path,
    log: Callable[[str], None] = print,
    embedding_cache: Path | None = None,
) -> dict:
    """rows: {"text": str, "label": str (one of cfg.labels), "label_probs": {label: prob} or None}.
    Writes the trained student to out_dir and returns a training log dict:
    {"steps": [{"step", "epoch", "loss", "kd_loss" (None when the batch had no soft labels),
    "ce_loss"}], "epochs": [{"epoch", "val_accuracy", "val_loss"}] (None without val rows),
    "train_rows", "val_rows", "soft_label_rows", "seconds"}.
    ``val_loss`` is the mean hard-label cross-entropy of the eval-mode model on ``val_rows``.
    A relative ``cfg.base_model`` is resolved against the current directory."""
    return fit_and_save(
        "encoder-classifier",
        lambda: fit_encoder_classifier(cfg, train_rows, val_rows, log=log, embedding_cache=embedding_cache),
        save_encoder_classifier,
        out_dir,
        log,
    )
