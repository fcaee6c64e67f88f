"""`preference` (when student.preference is set): DPO on the pairs, over the SFT student.

The SFT adapter is merged into its base (peft) and saved with its tokenizer: that model is DPO's
starting point and, with the new LoRA adapter switched off, its reference, as DPO wants (the
policy may move from the SFT model only as far as beta allows). The config is the SFT one for
the same student (adapter, precision, CPU or GPU settings, distributed) with `rl: dpo`, `rl_beta`,
the pairs as a `chat_template.default` DPO dataset, the preference learning rate and epochs;
Axolotl's validator checks it (no key dropped) and `axolotl train` runs it, as the train stage
does. `evaluate` then answers with the DPO adapter over the merged model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from distillbuild import layout
from distillbuild.console import log
from distillbuild.io import fresh_tmp_dir, replace_dir, write_json, write_text
from distillbuild.measurements import write_report
from distillbuild.pipeline.contract import Out
from distillbuild.pipeline.student_base import student_base
from distillbuild.spec import Spec
from distillbuild.train import MEASURED as TRAINING_MEASURED
from distillbuild.train.axolotl_config import Section, axolotl_sections, plan_device, render_yaml

READS = ("name", "task.type", "student")  # the SFT student's settings, and the preference ones
CONFIG = f"{layout.PREFERENCE_CONFIG}/axolotl.yaml"
PLAN = f"{layout.PREFERENCE_CONFIG}/axolotl_plan.json"
PREPARED = f"{layout.PREFERENCE_DIR}/axolotl_prepared"


def applies(spec: Spec) -> bool:
    return spec.student.preference is not None


def deps(spec: Spec) -> list[str]:
    return [layout.PAIRS, layout.MODEL_DIR]


def outs(spec: Spec) -> list[Out]:
    return [layout.PREFERENCE_BASE, layout.PREFERENCE_CONFIG, layout.PREFERENCE_MODEL, layout.PREFERENCE_REPORT]


def dpo_sections(spec: Spec, device: str) -> list[Section]:
    """The DPO config's sections: the SFT config's for a student based on the merged SFT model,
    its data, output and evaluation replaced, `rl: dpo` added."""
    pref = spec.student.preference
    student = replace(
        spec.student,
        base_model=layout.PREFERENCE_BASE,
        epochs=pref.epochs,
        learning_rate=pref.learning_rate,
        axolotl=None,
    )
    out: list[Section] = []
    for title, body in axolotl_sections(student, spec.teacher, device):
        body = dict(body)
        if "datasets" in body:
            body.pop("test_datasets", None)
            body.update(
                datasets=[
                    {
                        "path": layout.PAIRS,
                        "split": "train",  # Axolotl's DPO datasets take no ds_type
                        "type": "chat_template.default",
                        "field_messages": "messages",
                        "field_chosen": "chosen",
                        "field_rejected": "rejected",
                    }
                ],
                dataset_prepared_path=PREPARED,
                sample_packing=False,
            )
            body.pop("eval_sample_packing", None)
            body.pop("pad_to_sequence_len", None)
            title = "data: the pairs stage's (prompt, chosen: the teacher's, rejected: the SFT student's)"
        if "output_dir" in body:
            body.update(output_dir=layout.PREFERENCE_MODEL, eval_strategy="no")
            title = "output: the DPO adapter, over the merged SFT model"
        out.append((title, body))
        if "base_model" in body:
            out.append(
                (
                    f"preference: DPO, beta {pref.beta}; the reference is the merged SFT model (adapter off)",
                    {"rl": "dpo", "rl_beta": float(pref.beta)},
                )
            )
    return out


def merge_sft(spec: Spec, dest: Path) -> None:
    """The SFT adapter (build/model) merged into its base, saved with the trained tokenizer."""
    from peft import PeftModel  # lazy: torch, transformers and peft take seconds to import
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = spec.resolve(student_base(spec))
    model = AutoModelForCausalLM.from_pretrained(str(base) if base.is_dir() else student_base(spec))
    merged = PeftModel.from_pretrained(model, layout.MODEL_DIR).merge_and_unload()
    merged.save_pretrained(dest)
    AutoTokenizer.from_pretrained(layout.MODEL_DIR).save_pretrained(dest)


def write_config(spec: Spec, out_dir: Path) -> dict[str, Any]:
    plan = plan_device(spec.student.device, None)
    if spec.student.device == "auto":  # the SFT stage's decision: the same machine trains both
        from distillbuild.io import read_json
        from distillbuild.train.axolotl_config import PLAN as SFT_PLAN

        sft = read_json(Path(SFT_PLAN))
        plan = {
            **plan,
            "device": sft["device"],
            "reason": f"as the SFT run: {sft['reason']}",
            "parameters": sft.get("parameters"),
        }
    sections = dpo_sections(spec, plan["device"])
    text = render_yaml(spec.name, spec.student, sections, plan, spec.path.name)
    write_text(out_dir / Path(CONFIG).name, text.replace("`distill stage configure`", "`distill stage preference`"))
    write_json(out_dir / Path(PLAN).name, plan)
    return plan


def run(spec: Spec) -> int:
    from distillbuild.train.axolotl_run import train_axolotl  # lazy: subprocess plumbing and log parsing

    base = Path(layout.PREFERENCE_BASE)
    tmp = fresh_tmp_dir(base)
    log("preference: merging the SFT adapter into its base (DPO's start and reference)")
    merge_sft(spec, tmp)
    replace_dir(tmp, base)
    config_dir = Path(layout.PREFERENCE_CONFIG)
    tmp = fresh_tmp_dir(config_dir)
    plan = write_config(spec, tmp)
    replace_dir(tmp, config_dir)
    log(f"preference: wrote {CONFIG} ({plan['device']} settings), beta {spec.student.preference.beta}")
    history = train_axolotl(Path(CONFIG), Path(PLAN), Path(layout.PREFERENCE_MODEL), log)
    write_report(Path(layout.PREFERENCE_REPORT), history, TRAINING_MEASURED)
    return 0
