"""`train`: train the student from the config `configure` wrote.

The local trainer fine-tunes an encoder with a classification head on CPU, distilling the
teacher's soft labels (Hinton et al.); an Axolotl config is handed to `axolotl train`.
"""

from __future__ import annotations

import os
from pathlib import Path

from distillbuild import layout
from distillbuild.console import log
from distillbuild.errors import StageError
from distillbuild.io import read_json, read_json_or_none, read_jsonl, write_json
from distillbuild.llm.cache import cache_dir
from distillbuild.markup import charts
from distillbuild.markup.tables import table
from distillbuild.measurements import read_report, write_report
from distillbuild.pipeline.contract import Out, uncached
from distillbuild.spec import Spec
from distillbuild.train import MEASURED as TRAINING_MEASURED
from distillbuild.train.axolotl_config import PLAN
from distillbuild.train.axolotl_ray import ray_launch_config
from distillbuild.train.axolotl_run import train_axolotl

# --- contract: what pipeline/compile.py declares in dvc.yaml for this stage (see pipeline/contract.py) ---

READS = ()  # only the config `configure` wrote


def deps(spec: Spec) -> list[str]:
    return [layout.DATASET_DIR, layout.CONFIG_DIR]


def outs(spec: Spec) -> list[Out]:
    return [layout.MODEL_DIR, layout.TRAIN_REPORT]


def plots(spec: Spec) -> list[Out]:
    return [uncached(layout.TRAIN_HISTORY)]


def views(spec: Spec) -> list[dict]:
    return [{layout.TRAIN_HISTORY: {"x": "step", "y": "loss", "title": "Training loss"}}]


def _trainer_rows(path: Path) -> list[dict]:
    rows = []
    for row in read_jsonl(path):
        text = next(m["content"] for m in row["messages"] if m["role"] == "user")
        rows.append({"text": text, "label": row["label"], "label_probs": row.get("label_probs")})
    return rows


def _train_local(config_path: Path, repo_root: Path) -> dict:
    # The trainers import torch (seconds): only when a stage trains.
    from distillbuild.train.encoder import EncoderTrainConfig, resolve_base_model, train_encoder_classifier

    raw = read_json(config_path)
    if raw.get("kind") == "encoder-extractor":  # extraction: a head per field (distillbuild/train/extractor.py)
        from distillbuild.train.extractor import train_from_config  # torch, as above

        return train_from_config(
            raw,
            _trainer_rows(Path(layout.DATASET_TRAIN)),
            _trainer_rows(Path(layout.DATASET_VAL)),
            Path(layout.MODEL_DIR),
            log=log,
        )
    try:
        resolve_base_model(raw["base_model"], Path.cwd())  # fail early and clearly when it is absent
    except FileNotFoundError as exc:
        raise StageError(str(exc)) from None
    # The name as the spec gives it, not the resolved path: the model's files must not
    # depend on where a virtualenv happens to live.
    cfg = EncoderTrainConfig.from_dict({k: v for k, v in raw.items() if k not in ("trainer", "kind", "name")})
    train = _trainer_rows(Path(layout.DATASET_TRAIN))
    val = _trainer_rows(Path(layout.DATASET_VAL))
    embeddings = cache_dir(repo_root) / "embeddings.sqlite"  # beside the teacher cache
    history = train_encoder_classifier(cfg, train, val, Path(layout.MODEL_DIR), log=log, embedding_cache=embeddings)
    return history


def _train_axolotl(config_path: Path, spec: Spec) -> dict:
    """`axolotl train` on the config (checked first by Axolotl's validator); the adapter lands in
    build/model. No GPU and a model too big for a CPU: a clear StageError (exit 3). With
    `execution.engine: ray`, Ray Train runs it on the cluster (train/axolotl_ray.py)."""
    if spec.execution.engine != "ray":
        return train_axolotl(config_path, Path(PLAN), Path(layout.MODEL_DIR), log)
    launch = ray_launch_config(config_path, spec.execution.train)
    address = spec.execution.address
    if address != "auto":  # auto: RAY_ADDRESS as set, or the cluster `ray start --head` started here
        os.environ["RAY_ADDRESS"] = "" if address == "local" else address
    log(f"train: on the Ray cluster ({address}), {launch} (execution.train)")
    try:
        return train_axolotl(launch, Path(PLAN), Path(layout.MODEL_DIR), log)
    finally:
        launch.unlink(missing_ok=True)


def run(spec: Spec) -> int:
    local = Path(layout.LOCAL_TRAINER_CONFIG)
    history = (
        _train_local(local, spec.repo_root) if local.exists() else _train_axolotl(Path(layout.AXOLOTL_CONFIG), spec)
    )
    write_json(Path(layout.TRAIN_HISTORY), [{"step": s["step"], "loss": s["loss"]} for s in history.get("steps", [])])
    write_report(Path(layout.TRAIN_REPORT), {k: v for k, v in history.items() if k != "steps"}, TRAINING_MEASURED)
    return 0


def report_html(spec: Spec) -> str:
    """Its section of `distill report`'s page: the loss curves and the run's facts."""
    history = read_json_or_none(spec.dir / layout.TRAIN_HISTORY) or []
    report = read_report(spec.dir / layout.TRAIN_REPORT) or {}
    if not history and not report:
        return ""
    steps = [(h["step"], h["loss"]) for h in history if isinstance(h.get("loss"), (int, float))]
    epochs = report.get("epochs") or []
    val = [(e["epoch"], e["val_loss"]) for e in epochs if isinstance(e.get("val_loss"), (int, float))]
    val_acc = [(e["epoch"], e["val_accuracy"]) for e in epochs if isinstance(e.get("val_accuracy"), (int, float))]
    out = ["<h2>Training</h2><div class=charts>"]
    out.append(charts.lines([("training loss", steps)], title="Training loss by step", x_label="step", y_label="loss"))
    if val or val_acc:
        series = [s for s in (("validation loss", val), ("validation accuracy", val_acc)) if s[1]]
        out.append(charts.lines(series, title="Validation by epoch", x_label="epoch", y_label="value"))
    out.append("</div>")
    facts = [
        [k, report[k]]
        for k in ("train_rows", "val_rows", "soft_label_rows", "best_epoch", "seconds", "trainer", "device")
        if k in report
    ]
    return "".join(out) + (table(facts, ["", ""]) if facts else "")
