"""A causal-LM student answering held-out prompts, for evaluation.

Locally: the base model with the trained LoRA/QLoRA adapter (peft) or a fully fine-tuned model
directory, greedy decoding through the chat template, on CPU or a GPU when present. Remotely:
any OpenAI-compatible endpoint serving the student (for example vLLM with the adapter loaded),
one request at a time, as a user would call it, so latency is per request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distillbuild.curate.normalize import normalize_label
from distillbuild.spec.model import StudentEndpoint, Task
from distillbuild.teacher.prompts import messages_for

ADAPTER_CONFIG = "adapter_config.json"


class LocalCausalStudent:
    def __init__(self, model, tokenizer, max_new_tokens: int):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens

    @classmethod
    def load(cls, model_dir: Path, base_model: str, threads: int = 1, max_new_tokens: int = 32) -> "LocalCausalStudent":
        import torch  # lazy, as transformers and peft: seconds to import, and only a local student needs them
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        tokenizer_dir = model_dir if (model_dir / "tokenizer_config.json").exists() else base_model
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if (model_dir / ADAPTER_CONFIG).exists():
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
            model = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()  # merged: faster decoding
        else:
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
        model.to(device).eval()
        return cls(model, tokenizer, max_new_tokens)

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        import torch  # lazy: seconds to import

        out = []
        for messages in conversations:  # one at a time: no padding effects, and it is how latency is measured
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True)
            ids = {k: v.to(self.model.device) for k, v in ids.items()}
            with torch.inference_mode():
                generated = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, do_sample=False,
                                                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
            new = generated[0, ids["input_ids"].shape[1]:]
            out.append(self.tokenizer.decode(new, skip_special_tokens=True).strip())
        return out


class EndpointStudent:
    """The student behind an OpenAI-compatible endpoint. The key comes from the environment only."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None, max_new_tokens: int = 32, timeout_s: float = 60):
        from openai import OpenAI  # lazy: the SDK is slow to import and only an endpoint student needs it

        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.client = OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=timeout_s, max_retries=3)
        self.model, self.max_new_tokens = model, max_new_tokens

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        out = []
        for messages in conversations:
            response = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                           max_tokens=self.max_new_tokens)
            out.append((response.choices[0].message.content or "").strip())
        return out


class CausalClassifier:
    """Classification by a causal student: its answer text, normalised to a label (or None)."""

    def __init__(self, student: Any, task: Task):
        self.student, self.task = student, task
        self.last_answers: list[str] = []

    def predict(self, texts: list[str]) -> list[str | None]:
        answers = self.student.generate([messages_for(self.task, t) for t in texts])
        self.last_answers = answers  # the text behind each label, for predictions.json
        return [normalize_label(a, list(self.task.labels)) for a in answers]


def load_causal_student(model_dir: Path, threads: int, *, endpoint: StudentEndpoint | None, base_model: str | None,
                        max_new_tokens: int):
    """The student behind `endpoint` (student.endpoint: base_url, model, api_key_env) when given,
    else the model in model_dir loaded over `base_model` (a local directory or a hub id)."""
    if endpoint is not None:
        return EndpointStudent(endpoint.base_url, endpoint.model, endpoint.api_key_env, max_new_tokens)
    return LocalCausalStudent.load(model_dir, base_model, threads, max_new_tokens)
