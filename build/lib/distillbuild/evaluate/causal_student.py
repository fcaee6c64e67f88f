"""A causal-LM student answering held-out prompts, for evaluation.

Locally: the base model with the trained LoRA/QLoRA adapter (peft) or a fully fine-tuned model
directory, greedy decoding through the chat template, on CPU or a GPU when present. Remotely:
any OpenAI-compatible endpoint serving the student (for example vLLM with the adapter loaded),
one request at a time, as a user would call it, so latency is per request.

Both return each answer with its logprobs in the OpenAI response's shape (`content[i].token`,
`logprob`, `top_logprobs`), so a classification student's answer is mapped to a label and a
confidence exactly as the teacher's is (normalize_label, then the sequence walk of
protocol/softlabels.py). Locally, a list of prompts is answered in left-padded batches; a
single prompt (the latency loop) is one unpadded call.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from distillbuild.console import Progress, eta_text, rate_text
from distillbuild.protocol.answers import answer_label_confidence
from distillbuild.protocol.normalize import normalize_label
from distillbuild.protocol.prompts import student_messages
from distillbuild.protocol.reasoning import split_reply
from distillbuild.spec.model import Reasoning, StudentEndpoint, Task

ADAPTER_CONFIG = "adapter_config.json"
TOP_LOGPROBS = 10  # alternatives kept per generated token, as a teacher's top_logprobs
BATCH = 16  # prompts per local generate() call in the accuracy pass


def _position(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}


def _generated_line(done: int, total: int, rate: float, eta_s: float | None) -> str:
    return f"evaluate: {done}/{total} answers generated, {rate_text(rate)}, ETA {eta_text(eta_s)}"


def _progress(total: int):
    """A bar (or plain lines in logs) over answers being generated; none for a single prompt (the latency loop)."""
    return Progress("generating", total, _generated_line) if total > 1 else nullcontext(_NoProgress())


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass


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
        return [text for text, _ in self.generate_scored(conversations)]

    def generate_scored(self, conversations: list[list[dict[str, str]]]) -> list[tuple[str, dict[str, Any]]]:
        """Greedy answers with their logprobs ({"content": [...]}, OpenAI's shape)."""
        out: list[tuple[str, dict[str, Any]]] = []
        with _progress(len(conversations)) as progress:
            for start in range(0, len(conversations), BATCH):
                batch = conversations[start : start + BATCH]
                out += self._generate_batch(batch)
                progress.advance(len(batch))
        return out

    def _generate_batch(self, batch: list[list[dict[str, str]]]) -> list[tuple[str, dict[str, Any]]]:
        import torch  # lazy: seconds to import

        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues every row from its last real token
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        prompts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        enc = tok(prompts, return_tensors="pt", padding=len(batch) > 1, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        with torch.inference_mode():
            generated = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
        new = generated.sequences[:, enc["input_ids"].shape[1] :]
        steps = torch.stack(generated.logits, dim=1).float().log_softmax(-1)  # (batch, step, vocab)
        top = steps.topk(TOP_LOGPROBS, dim=-1)
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        # A special token (the end of the turn, a new turn's start) ends the answer: decoding would drop it
        # and run the next words into the label ("legit" + "<|im_end|>" + "leg" reads "legitleg").
        stop = {tok.eos_token_id, pad_id, *(eos if isinstance(eos, list) else [eos]), *tok.all_special_ids}
        return [self._scored(row_ids, steps[i], top.values[i], top.indices[i], stop) for i, row_ids in enumerate(new)]

    def _scored(self, ids, logprobs, top_values, top_ids, stop: set) -> tuple[str, dict[str, Any]]:
        decode = self.tokenizer.decode
        content, kept = [], []
        for step, token_id in enumerate(ids.tolist()):
            if token_id in stop:
                break
            kept.append(token_id)
            alts = [(decode([t]), float(v)) for t, v in zip(top_ids[step].tolist(), top_values[step].tolist())]
            content.append(_position(decode([token_id]), float(logprobs[step, token_id]), alts))
        return decode(kept, skip_special_tokens=True).strip(), {"content": content}


class EndpointStudent:
    """The student behind an OpenAI-compatible endpoint. The key comes from the environment only."""

    def __init__(
        self, base_url: str, model: str, api_key_env: str | None, max_new_tokens: int = 32, timeout_s: float = 60
    ):
        from openai import OpenAI  # lazy: the SDK is slow to import and only an endpoint student needs it

        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.client = OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=timeout_s, max_retries=3)
        self.model, self.max_new_tokens = model, max_new_tokens

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        return [text for text, _ in self.generate_scored(conversations)]

    def generate_scored(self, conversations: list[list[dict[str, str]]]) -> list[tuple[str, dict[str, Any] | None]]:
        out = []
        with _progress(len(conversations)) as progress:
            for messages in conversations:
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=0,
                    max_tokens=self.max_new_tokens,
                    logprobs=True,
                    top_logprobs=TOP_LOGPROBS,
                )
                choice = response.choices[0]
                out.append(
                    ((choice.message.content or "").strip(), choice.logprobs.model_dump() if choice.logprobs else None)
                )
                progress.advance()
        return out


class CausalClassifier:
    """Classification by a causal student: its answer text normalised to a label (or None), and
    that label's probability as the teacher's confidence is read (None when the answer is no label).

    `reasoning` is student.reasoning: a trace student writes its rationale first and the answer on
    a line after `marker` (read there, as a reasoning teacher's is; no such line: no label); a
    step-by-step student is asked for its label task."""

    def __init__(self, student: Any, task: Task, reasoning: str = "answer", marker: str = "Answer:"):
        self.student, self.task, self.reasoning = student, task, reasoning
        self.split = Reasoning(mode="prompt", marker=marker, instruction="") if reasoning == "trace" else None
        self.last_answers: list[str] = []
        self.last_confidence: list[float | None] = []
        self.last_logprobs: list[dict[str, Any] | None] = []
        tokenizer = getattr(student, "tokenizer", None)
        if tokenizer is not None and self.split is None:  # a label, a leading space or quote, the end of the turn
            longest = max(len(tokenizer.encode(f" {label}", add_special_tokens=False)) for label in task.labels)
            student.max_new_tokens = min(student.max_new_tokens, longest + 2)

    def predict(self, texts: list[str]) -> list[str | None]:
        labels = tuple(self.task.labels)
        scored = self.student.generate_scored([student_messages(self.task, t, self.reasoning) for t in texts])
        self.last_answers = [text for text, _ in scored]  # the text behind each label, for predictions.json
        if self.split is not None:  # the answer line after the rationale, and its own tokens
            parts = [split_reply({"content": text}, lp, self.split) for text, lp in scored]
            scored = [(p.answer or "", p.logprobs) for p in parts]
        self.last_logprobs = [lp for _, lp in scored]
        predicted = [normalize_label(text, list(labels)) if text else None for text, _ in scored]
        self.last_confidence = [
            answer_label_confidence(text, lp, labels) if label else None for label, (text, lp) in zip(predicted, scored)
        ]
        return predicted


def load_causal_student(
    model_dir: Path, threads: int, *, endpoint: StudentEndpoint | None, base_model: str | None, max_new_tokens: int
):
    """The student behind `endpoint` (student.endpoint: base_url, model, api_key_env) when given,
    else the model in model_dir loaded over `base_model` (a local directory or a hub id)."""
    if endpoint is not None:
        return EndpointStudent(endpoint.base_url, endpoint.model, endpoint.api_key_env, max_new_tokens)
    return LocalCausalStudent.load(model_dir, base_model, threads, max_new_tokens)
