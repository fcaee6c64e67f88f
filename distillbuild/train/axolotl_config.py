"""The Axolotl QLoRA config for a causal-LM student, as a plain dict (pure)."""

from __future__ import annotations

from typing import Any

from distillbuild import layout


def axolotl_config(spec_data: dict[str, Any]) -> dict[str, Any]:
    student = spec_data["student"]
    lora = student.get("lora") or {}
    dataset = {
        "path": layout.DATASET_TRAIN,
        "ds_type": "json",
        "type": "chat_template",
        "field_messages": "messages",
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    cfg: dict[str, Any] = {
        "base_model": student["base_model"],
        "load_in_4bit": True,
        "adapter": "qlora",
        "lora_r": lora.get("r", 16),
        "lora_alpha": lora.get("alpha", 32),
        "lora_dropout": lora.get("dropout", 0.05),
        "lora_target_linear": True,
        "sequence_len": student["max_length"],
        "sample_packing": False,
        "datasets": [dataset],
        "test_datasets": [{**dataset, "path": layout.DATASET_VAL, "split": "train"}],
        "dataset_prepared_path": f"{layout.BUILD}/axolotl_prepared",
        "micro_batch_size": student["batch_size"],
        "gradient_accumulation_steps": 1,
        "num_epochs": student["epochs"],
        "learning_rate": student["learning_rate"],
        "optimizer": "adamw_torch",
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "bf16": "auto",
        "gradient_checkpointing": True,
        "seed": student["seed"],
        "output_dir": layout.MODEL_DIR,
        "save_strategy": "epoch",
    }
    if student.get("chat_template"):
        cfg["chat_template"] = student["chat_template"]
    else:
        cfg["chat_template"] = "tokenizer_default"
    return cfg
