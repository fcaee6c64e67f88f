"""An encoder-classifier student as one ONNX graph, and that graph answering through onnxruntime.

`export_onnx` traces the encoder, its mean pooling and the head with torch.onnx's TorchScript
exporter (`dynamo=False`: no onnxscript needed, and the traced graph of a BERT-style encoder is
well trodden), batch and sequence axes left dynamic. The tokenizer and a `student.json` (labels,
max_length, the graph's inputs) go beside the graph, so the directory serves on its own.
`quantize="int8"` applies onnxruntime's dynamic quantization: int8 weights, activations
quantized on the fly; smaller and faster on CPU, and not bit-exact, which is why the export stage
compares it with the PyTorch student before it is trusted.

`OnnxClassifier` loads such a directory and answers like `EncoderClassifier` (predict,
predict_proba), with neither torch nor the training code.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

GRAPH = "model.onnx"
META = "student.json"


def export_onnx(clf, out_dir: Path, *, opset: int, quantize: str) -> Path:
    """Write `clf` (an EncoderClassifier) to out_dir as GRAPH + tokenizer + META; returns out_dir."""
    import torch  # lazy: only the export stage needs torch's exporter

    tokenizer, model = clf.tokenizer, clf.model.eval()
    names = list(tokenizer.model_input_names)
    sample = tokenizer(["an example text to trace", "another"], padding=True, return_tensors="pt")

    class Logits(torch.nn.Module):  # positional inputs, as an ONNX graph takes them
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs)))

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        traced = Path(tmp) / GRAPH
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                Logits(),
                tuple(sample[n] for n in names),
                str(traced),
                dynamo=False,
                input_names=names,
                output_names=["logits"],
                opset_version=opset,
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
            )
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            level, root.level = root.level, logging.ERROR  # it advises pre-processing on the root logger
            try:
                quantize_dynamic(str(traced), str(out_dir / GRAPH), weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
        else:
            shutil.copyfile(traced, out_dir / GRAPH)
    tokenizer.save_pretrained(str(out_dir))
    meta = {
        "labels": list(clf.labels),
        "max_length": clf.max_length,
        "inputs": names,
        "quantize": quantize,
        "opset": opset,
        "pooling": "mean",
    }
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir


class OnnxClassifier:
    """An exported classifier: tokenizer + onnxruntime session; answers like EncoderClassifier."""

    def __init__(self, session, tokenizer, meta: dict):
        self.session, self.tokenizer, self.meta = session, tokenizer, meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.max_length = int(meta["max_length"])

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> "OnnxClassifier":
        import onnxruntime as ort  # lazy: only exported models need it
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model_dir / GRAPH), options, providers=["CPUExecutionProvider"])
        meta = json.loads((model_dir / META).read_text(encoding="utf-8"))
        return cls(session, AutoTokenizer.from_pretrained(str(model_dir)), meta)

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in self.meta["inputs"]}
            logits = self.session.run(["logits"], feed)[0].astype(np.float64)
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            out[start : start + len(logits)] = exp / exp.sum(axis=1, keepdims=True)
        return out

    def predict(self, texts: list[str], batch_size: int = 64) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts, batch_size).argmax(axis=1)]
