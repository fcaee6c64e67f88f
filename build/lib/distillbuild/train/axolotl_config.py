"""The Axolotl config for a causal-LM student, as plain data (pure).

    sections = axolotl_sections(spec.student, spec.teacher, device="gpu")  # [(title, {key: value})], in file order
    cfg = flatten(sections)                                   # the dict `axolotl train` reads
    text = render_yaml(spec.name, spec.student, sections, plan)  # the YAML file, with its header comment
    ds = deepspeed_config(spec.student.distributed)           # the DeepSpeed JSON beside it, or None

Every value comes from the spec (defaults from the schema) or from a rule written here, so the
same spec gives the same bytes. What a practitioner would pick on a GPU: QLoRA (4-bit base
weights + LoRA), bf16 where the GPU has it, FlashAttention-2, sample packing and bitsandbytes'
8-bit AdamW; FSDP2, ZeRO-3 and any CPU offload get a plain fused AdamW instead (Axolotl
refuses adamw_bnb_8bit under FSDP2, and 8-bit bitsandbytes states do not shard or offload).
A CPU-sized base model (or `student.device: cpu`) gets the settings Axolotl trains with on a
CPU: SDPA attention, no fused LoRA kernels, fp32, no packing.

Axolotl drops keys it does not know without a word, so every key here is checked against its
validator (`distillbuild.train.axolotl_validate`, in tests and before each training run).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from distillbuild import layout
from distillbuild.spec.model import Distributed, Kd, Student, Teacher, thaw

AXOLOTL_VERSION = "0.19.0"

# Above this many parameters a base model is not trained on a CPU: a 2-core runner does a
# two-layer toy in seconds and a 135M model in minutes; a 1B model would take days.
CPU_MAX_PARAMETERS = 200_000_000

PREPARED_DIR = f"{layout.BUILD}/axolotl_prepared"  # Axolotl's tokenized-dataset cache (train clears it)
PLAN = f"{layout.CONFIG_DIR}/axolotl_plan.json"  # the device decision, for the train stage
KD_PLUGIN = "axolotl.integrations.kd.KDPlugin"
KD_DATASET_TYPE = "axolotl.integrations.kd.chat_template"
LOGPROBS_FIELD = "logprobs"

# Optimizers whose state bitsandbytes keeps in 8 bits: they break under FSDP2 and do not
# shard (ZeRO-3) or offload.
BNB_8BIT_OPTIMIZERS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit")


def deepspeed_path(zero_stage: int) -> str:
    # Axolotl recognises ZeRO-3 by "zero3" in the file name (QLoRA and loading paths), so
    # the stage is in the name.
    return f"{layout.CONFIG_DIR}/deepspeed_zero{zero_stage}.json"


# ---------------------------------------------------------------------------------------------
# Model size and the training device


def estimate_parameters(model_config: dict[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer from its config.json (exact for Llama-style
    models; a close estimate for others); None when the config lacks the sizes."""
    cfg = model_config.get("text_config") if isinstance(model_config.get("text_config"), dict) else model_config

    def first(*names: str) -> Any:
        for name in names:
            value = cfg.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    vocab = first("vocab_size")
    hidden = first("hidden_size", "n_embd", "d_model")
    layers = first("num_hidden_layers", "n_layer", "num_layers")
    if vocab is None or hidden is None or layers is None:
        return None
    heads = first("num_attention_heads", "n_head") or max(1, hidden // 64)
    kv_heads = first("num_key_value_heads", "num_kv_heads") or heads
    head_dim = first("head_dim") or hidden // heads
    intermediate = first("intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    experts = first("num_local_experts", "num_experts", "n_routed_experts") or 1
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim  # q, o; k, v
    mlp = 3 * hidden * intermediate * experts  # gated MLP (gate, up, down)
    norms = 2 * hidden
    tied = cfg.get("tie_word_embeddings", model_config.get("tie_word_embeddings", True))
    embeddings = vocab * hidden * (1 if tied else 2)
    return embeddings + layers * (attention + mlp + norms) + hidden


def human_count(n: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return str(n)


def plan_device(requested: str, parameters: int | None) -> dict[str, Any]:
    """Which settings to emit (gpu or cpu) and why: the `axolotl_plan.json` that `train` reads."""
    if requested in ("cpu", "gpu"):
        device, reason = requested, f"student.device is {requested}"
    elif parameters is None:
        device, reason = "gpu", "the base model's size is unknown (no local config.json), so GPU settings"
    elif parameters <= CPU_MAX_PARAMETERS:
        device, reason = (
            "cpu",
            (
                f"the base model has about {human_count(parameters)} parameters, CPU-sized "
                f"(at most {human_count(CPU_MAX_PARAMETERS)}), so CPU settings"
            ),
        )
    else:
        device, reason = (
            "gpu",
            (
                f"the base model has about {human_count(parameters)} parameters, more than a CPU "
                f"trains (limit {human_count(CPU_MAX_PARAMETERS)}), so GPU settings"
            ),
        )
    return {
        "device": device,
        "requested": requested,
        "reason": reason,
        "parameters": parameters,
        "cpu_max_parameters": CPU_MAX_PARAMETERS,
    }


# ---------------------------------------------------------------------------------------------
# The config


def optimizer(student: Student, device: str) -> str:
    """The optimizer: the spec's, or the one a practitioner would pick for this setup."""
    if device == "cpu":
        return "adamw_torch"
    chosen = student.gpu.optimizer
    if chosen != "auto":
        return chosen
    dist = student.distributed
    if dist.strategy == "fsdp" or dist.offload or (dist.strategy == "deepspeed" and dist.zero_stage == 3):
        return "adamw_torch_fused"
    return "adamw_bnb_8bit"


def _dataset(path: str, kd_temperature: float | None) -> dict[str, Any]:
    """One dataset entry; `kd_temperature` (logit distillation only) is the teacher's."""
    ds: dict[str, Any] = {
        "path": path,
        "ds_type": "json",
        "split": "train",
        "type": KD_DATASET_TYPE if kd_temperature is not None else "chat_template",
        "field_messages": "messages",
        "roles_to_train": ["assistant"],
        "train_on_eos": "turn",
    }
    if kd_temperature is not None:
        ds["logprobs_field"] = LOGPROBS_FIELD
        ds["temperature"] = kd_temperature
    return ds


def effective_adapter(adapter: str, device: str) -> str:
    """qlora trains as lora on a CPU: bitsandbytes' CPU backend quantises to 4 bits but registers
    no backward for its 4-bit matmul (torch warns that gradients may be silently wrong)."""
    return "lora" if adapter == "qlora" and device == "cpu" else adapter


def teacher_temperature(teacher: Teacher) -> float:
    """The temperature the teacher's logprobs were sampled at. A greedy teacher (temperature 0)
    reports its untempered distribution, which is temperature 1 (Axolotl reads 0 as unset)."""
    t = teacher.temperature
    return float(t) if t > 0 else 1.0


def logit_kd(student: Student) -> bool:
    return student.kd.mode == "logits"


Section = tuple[str, dict[str, Any]]  # (title, {key: value}): one commented block of the file


def _adapter_section(student: Student, adapter: str) -> Section:
    """The adapter (or full fine-tuning); `adapter` is the one that trains on this device."""
    if adapter == "full":
        return ("full fine-tuning: every weight trains", {})
    lora = student.lora
    tuning: dict[str, Any] = {}
    if adapter == "qlora":
        tuning["load_in_4bit"] = True
    tuning.update(
        {
            "adapter": adapter,
            "lora_r": lora.r,
            "lora_alpha": lora.alpha,
            "lora_dropout": lora.dropout,
            "lora_target_linear": True,
        }
    )
    if adapter == "qlora":
        title = "QLoRA: 4-bit base weights, a LoRA adapter on every linear layer"
    elif student.adapter == "qlora":
        title = (
            "LoRA on a CPU for adapter qlora: bitsandbytes' 4-bit CPU kernels have no backward pass, "
            "so the base weights stay fp32"
        )
    else:
        title = "LoRA: a LoRA adapter on every linear layer"
    return (title, tuning)


def _kd_section(kd: Kd) -> Section:
    alpha = float(kd.alpha)
    return (
        "logit distillation from the teacher's top-k logprobs (Axolotl's KD plugin)",
        {
            "plugins": [KD_PLUGIN],
            "kd_trainer": True,
            "kd_alpha": alpha,
            "kd_ce_alpha": round(1.0 - alpha, 10),
            "kd_temperature": float(kd.temperature),
        },
    )


def _data_section(student: Student, kd_temperature: float | None, cpu: bool) -> Section:
    packing = (not cpu) and student.gpu.sample_packing
    data: dict[str, Any] = {
        "datasets": [_dataset(layout.DATASET_TRAIN, kd_temperature)],
        "test_datasets": [_dataset(layout.DATASET_VAL, kd_temperature)],
        "dataset_prepared_path": PREPARED_DIR,
        "sequence_len": student.max_length,
        "sample_packing": packing,
    }
    if packing:
        data["eval_sample_packing"] = False  # a small validation set may not fill one packed batch
        data["pad_to_sequence_len"] = True
    return ("data: the dataset stage's chat rows; only the assistant's turns are trained", data)


def _optimisation_section(student: Student, device: str) -> Section:
    return (
        "optimisation",
        {
            "micro_batch_size": student.batch_size,
            "gradient_accumulation_steps": 1,
            "num_epochs": student.epochs,
            "optimizer": optimizer(student, device),
            "learning_rate": student.learning_rate,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.05,
            "seed": student.seed,
        },
    )


def _hardware_section(student: Student, adapter: str, cpu: bool) -> Section:
    hardware: dict[str, Any]
    if cpu:
        hardware = {"bf16": False, "fp16": False, "attn_implementation": "sdpa", "gradient_checkpointing": False}
        if adapter != "full":
            hardware.update({"lora_mlp_kernel": False, "lora_qkv_kernel": False, "lora_o_kernel": False})
        return ("CPU: fp32, PyTorch SDPA attention, no fused LoRA kernels", hardware)
    gpu = student.gpu
    hardware = {
        "bf16": {"auto": "auto", "bf16": True, "fp16": False, "fp32": False}[gpu.precision],
        "fp16": gpu.precision == "fp16",
        "attn_implementation": gpu.attention,
    }
    if student.distributed.strategy != "fsdp":  # FSDP2 checkpoints activations itself (fsdp_config below)
        hardware["gradient_checkpointing"] = gpu.gradient_checkpointing
    if adapter != "full":
        kernels = gpu.lora_kernels
        hardware.update({"lora_mlp_kernel": kernels, "lora_qkv_kernel": kernels, "lora_o_kernel": kernels})
    return ("GPU: mixed precision, attention kernel, activation checkpointing, fused LoRA kernels", hardware)


def _distributed_section(student: Student, adapter: str) -> Section | None:
    """Multi-GPU settings (GPU only), or None for plain single-GPU training."""
    dist = student.distributed
    distributed: dict[str, Any] = {}
    if dist.strategy == "deepspeed":
        distributed["deepspeed"] = deepspeed_path(dist.zero_stage)
        title = f"multi-GPU: DeepSpeed ZeRO-{dist.zero_stage}"
    elif dist.strategy == "fsdp":
        distributed["fsdp_version"] = 2
        distributed["fsdp_config"] = {
            "offload_params": dist.offload,
            # rank 0 loads and the others receive: except 4-bit weights, whose quantisation
            # would deadlock the scatter (Axolotl refuses the pair)
            "cpu_ram_efficient_loading": adapter != "qlora",
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "state_dict_type": "FULL_STATE_DICT",
            "reshard_after_forward": True,
            "activation_checkpointing": student.gpu.gradient_checkpointing,
        }
        title = "multi-GPU: FSDP2 (layers wrapped as the model declares)"
    else:
        title = "one GPU (several under `accelerate launch`: plain data parallel)"
    if dist.launcher == "ray":
        distributed["use_ray"] = True
        distributed["ray_num_workers"] = dist.workers
        title += f"; launched by Ray Train on {dist.workers} worker{'s' if dist.workers != 1 else ''}"
    return (title, distributed) if distributed else None


def _output_section() -> Section:
    return (
        "output: the adapter (or the full model) lands in the train stage's output",
        {
            "output_dir": layout.MODEL_DIR,
            "save_strategy": "no",  # the final weights only; no checkpoints inside a DVC output
            "eval_strategy": "epoch",
            "logging_steps": 1,
        },
    )


def axolotl_sections(student: Student, teacher: Teacher, device: str = "gpu") -> list[Section]:
    """The config as titled sections, in file order; `device` is "gpu" or "cpu"."""
    cpu = device == "cpu"
    adapter = effective_adapter(student.adapter, device)
    kd_temperature = teacher_temperature(teacher) if logit_kd(student) else None
    sections: list[Section] = [
        ("model", {"base_model": student.base_model, "chat_template": student.chat_template or "tokenizer_default"}),
        _adapter_section(student, adapter),
    ]
    if kd_temperature is not None:
        sections.append(_kd_section(student.kd))
    sections.append(_data_section(student, kd_temperature, cpu))
    sections.append(_optimisation_section(student, device))
    sections.append(_hardware_section(student, adapter, cpu))
    distributed = None if cpu else _distributed_section(student, adapter)
    if distributed:
        sections.append(distributed)
    sections.append(_output_section())
    if student.axolotl:
        sections = _apply_overrides(sections, thaw(student.axolotl))
    return sections


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(out.get(k), v)
        return out
    return copy.deepcopy(over)


def _apply_overrides(sections: list[Section], overrides: dict[str, Any]) -> list[Section]:
    """student.axolotl: each key replaces (mappings merge into) the emitted one where it is;
    new keys go to a last section; null removes a key."""
    out, placed = [], set()
    for title, body in sections:
        merged = {}
        for key, value in body.items():
            if key in overrides:
                placed.add(key)
                if overrides[key] is None:
                    continue
                value = _merge(value, overrides[key])
            merged[key] = value
        out.append((title, merged))
    extra = {k: copy.deepcopy(v) for k, v in overrides.items() if k not in placed and v is not None}
    if extra:
        out.append(("student.axolotl: keys given in the spec as they are", extra))
    return out


def flatten(sections: list[Section]) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for _title, body in sections:
        cfg.update(body)
    return cfg


def axolotl_config(student: Student, teacher: Teacher, device: str = "gpu") -> dict[str, Any]:
    """The config `axolotl train` reads, as one mapping."""
    return flatten(axolotl_sections(student, teacher, device))


# ---------------------------------------------------------------------------------------------
# DeepSpeed


def deepspeed_config(dist: Distributed, device: str = "gpu") -> dict[str, Any] | None:
    """The DeepSpeed JSON for `distributed.strategy: deepspeed` (after Axolotl's own
    deepspeed_configs/zero*.json), or None. Precision and batch sizes stay "auto": the
    Axolotl YAML sets them once."""
    if device == "cpu" or dist.strategy != "deepspeed":
        return None
    offload = dist.offload
    config: dict[str, Any] = {
        "zero_optimization": _zero_optimization(dist.zero_stage, offload),
        "zero_allow_untested_optimizer": True,
    }
    if offload:
        config["zero_force_ds_cpu_optimizer"] = False  # the YAML's optimizer runs on the CPU copy
    config.update(
        {
            "bf16": {"enabled": "auto"},
            "fp16": {
                "enabled": "auto",
                "auto_cast": False,
                "loss_scale": 0,
                "initial_scale_power": 32,
                "loss_scale_window": 1000,
                "hysteresis": 2,
                "min_loss_scale": 1,
            },
            "gradient_accumulation_steps": "auto",
            "gradient_clipping": "auto",
            "train_batch_size": "auto",
            "train_micro_batch_size_per_gpu": "auto",
            "wall_clock_breakdown": False,
        }
    )
    return config


def _zero_optimization(stage: int, offload: bool) -> dict[str, Any]:
    """DeepSpeed's `zero_optimization` block for one ZeRO stage, with or without CPU offload."""
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": True}
    if stage >= 2:
        zero["contiguous_gradients"] = True
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        zero.update(
            {
                "sub_group_size": 0,
                "reduce_bucket_size": "auto",
                "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto",
                "stage3_max_live_parameters": 0,
                "stage3_max_reuse_distance": 0,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    return zero


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# The YAML file


def _adapter_line(student: Student, device: str) -> str:
    lora = student.lora
    if effective_adapter(student.adapter, device) != student.adapter:
        return (
            f"qlora, trained as lora on a CPU - a LoRA adapter (r={lora.r}, alpha={lora.alpha}) over fp32 base weights"
        )
    return {
        "qlora": f"qlora - 4-bit base weights, a LoRA adapter (r={lora.r}, alpha={lora.alpha}) trains",
        "lora": f"lora - a LoRA adapter (r={lora.r}, alpha={lora.alpha}) over 16-bit base weights",
        "full": "full - every weight of the base model trains",
    }[student.adapter]


def _distributed_line(dist: Distributed) -> str:
    what = {
        "none": "data parallel",
        "fsdp": "FSDP2",
        "deepspeed": f"DeepSpeed ZeRO-{dist.zero_stage} ({deepspeed_path(dist.zero_stage)})",
    }
    text = what[dist.strategy] + (" with CPU offload" if dist.offload else "")
    if dist.launcher == "ray":
        text += f", launched by Ray on {dist.workers} worker(s)"
    return text


def _describe(student: Student, plan: dict[str, Any]) -> list[str]:
    """The header's summary lines: adapter, device, distillation, and what else is set."""
    if logit_kd(student):
        kd = student.kd
        distill = (
            f"kd.mode logits - the teacher's top-k logprobs (KD plugin, alpha {kd.alpha}, "
            f"temperature {kd.temperature}) and its answers"
        )
    else:
        distill = "kd.mode labels - fine-tuning on the teacher's answers"
    lines = [
        f"adapter:      {_adapter_line(student, plan['device'])}",
        f"device:       {plan['device']} - {plan['reason']}",
        f"distillation: {distill}",
    ]
    dist = student.distributed
    if plan["device"] == "gpu" and (dist.strategy != "none" or dist.launcher != "accelerate"):
        lines.append(f"distributed:  {_distributed_line(dist)}")
    if student.axolotl:
        lines.append("overrides:    student.axolotl (" + ", ".join(sorted(student.axolotl)) + ")")
    return lines


def render_yaml(
    name: str, student: Student, sections: list[Section], plan: dict[str, Any], spec_file: str = "distill.yaml"
) -> str:
    """The YAML file: a header saying where it comes from and what it does, then one
    commented block per section. Same spec and plan, same bytes. `name` is the spec's."""
    import yaml

    header = [
        f"# Axolotl {AXOLOTL_VERSION} config for the causal-LM student of `{name}`.",
        f"# Generated by `distill stage configure` from the `student` section of {spec_file}:",
        "# edit the spec, not this file (every run rewrites it).",
        "#",
        *[f"#   {line}" for line in _describe(student, plan)],
        "#",
        "# The `train` stage checks it with Axolotl's own validator (Axolotl drops unknown keys",
        f"# silently) and runs `axolotl train {layout.AXOLOTL_CONFIG}` from the spec's directory.",
    ]
    parts = ["\n".join(header) + "\n"]
    for title, body in sections:
        block = f"\n# {title}\n"
        if body:
            block += yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)
        parts.append(block)
    return "".join(parts)
