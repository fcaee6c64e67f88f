"""What serving a build needs, and nothing else: the image's pick stage.

    python -m distillbuild.serve.bundle PIPELINE_DIR OUT_DIR

copies the spec, the exported model and, when the spec routes, the route's threshold and the
files its teacher fallback reads (few-shot examples, a stand-in's answers) into OUT_DIR, keeping
their places relative to the spec. No dataset, no PyTorch checkpoint, no DVC cache: a served
image holds the model and the spec, so a leaked image leaks no training data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from distillbuild import layout
from distillbuild.errors import StageError
from distillbuild.spec import Spec, load_spec


def served_files(spec: Spec) -> list[Path]:
    """Paths relative to the spec's directory: files and directories, each needed to serve."""
    if spec.student.kind != "encoder-classifier" or not (spec.dir / layout.EXPORT_DIR / "model.onnx").is_file():
        raise StageError(
            "an image serves an exported encoder student (no PyTorch inside): add `export: {format: onnx}` "
            "and run `dvc repro`. A causal student is served by its engine (llama.cpp, vLLM); name it in "
            "student.endpoint and serve the spec from there"
        )
    files = [spec.path.relative_to(spec.dir), Path(layout.EXPORT_DIR)]
    if spec.route is not None:
        files.append(Path(layout.ROUTE_REPORT))
        if isinstance(spec.task.examples, str):
            files.append(Path(spec.task.examples))
        simulated = spec.teacher.simulated
        if spec.teacher.provider == "simulated" and simulated is not None:
            files.append(Path(simulated.answers))
    missing = [str(f) for f in files if not (spec.dir / f).exists()]
    if missing:
        raise StageError(f"not built or missing in {spec.dir}: {', '.join(missing)} (run `dvc repro` or `dvc pull`)")
    return files


def bundle(spec_path: Path, out: Path) -> list[Path]:
    spec = load_spec(spec_path, ("*",))
    files = served_files(spec)
    for rel in files:
        source, target = spec.dir / rel, out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m distillbuild.serve.bundle PIPELINE_DIR OUT_DIR", file=sys.stderr)
        return 2
    pipeline, out = Path(argv[0]), Path(argv[1])
    try:
        files = bundle(pipeline / "distill.yaml" if pipeline.is_dir() else pipeline, out)
    except StageError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"bundle: {', '.join(map(str, files))} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
