"""Run `axolotl train` for the train stage: find Axolotl, check the config with Axolotl's own
validator, refuse a GPU-sized model on a machine without a GPU, stream Axolotl's progress to the
log, and move the trained adapter (or model) into place.

Axolotl is found as DISTILL_AXOLOTL (a path to its `axolotl` executable, for example
`.venv-axolotl/bin/axolotl` from `make axolotl-venv-full`) or as `axolotl` on PATH. Its own
Python (the executable's interpreter) runs the validator and says how many GPUs it sees.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from distillbuild.errors import StageError
from distillbuild.train.axolotl_config import CPU_MAX_PARAMETERS, PREPARED_DIR, human_count

ENV_EXECUTABLE = "DISTILL_AXOLOTL"
VALIDATOR = Path(__file__).with_name("axolotl_validate.py")
QUIET = {
    "AXOLOTL_DO_NOT_TRACK": "1",  # Axolotl's telemetry is on by default
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",  # lines as they happen, not in 8 KiB lumps
}
_LOG_DICT = re.compile(r"\{'[\w/ ()]+': .*\}")  # what the HF Trainer logs: {'loss': '2.31', 'epoch': '0.5', ...}
_BANNER = re.compile(r"^[\s@#=+./]+$")  # Axolotl's ASCII-art logo
_TQDM = re.compile(r"\d+%\|")


def find_axolotl() -> str:
    configured = os.environ.get(ENV_EXECUTABLE)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StageError(
                f"{ENV_EXECUTABLE}={configured} is not an executable file (it should name Axolotl's "
                "`axolotl` command, for example .venv-axolotl/bin/axolotl)"
            )
        return str(path.absolute())
    found = shutil.which("axolotl")
    if found is None:
        raise StageError(
            "trainer: axolotl needs Axolotl 0.19, which is not installed here: on a GPU machine "
            "`pip install 'distillbuild[axolotl]'`; or `make axolotl-venv-full` and set "
            f"{ENV_EXECUTABLE}=.venv-axolotl/bin/axolotl"
        )
    return found


def axolotl_python(executable: str) -> str | None:
    """The interpreter Axolotl runs in: its console script's #! line, else a python beside it."""
    try:
        with open(executable, "rb") as fh:
            first = fh.readline(4096).decode("utf-8", "replace").strip()
    except OSError:
        first = ""
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and Path(parts[0]).name.startswith("python") and Path(parts[0]).is_file():
            return parts[0]
    for name in ("python", "python3"):
        candidate = Path(executable).parent / name
        if candidate.is_file():
            return str(candidate)
    return None


def _env(executable: str, hide_gpus: bool) -> dict[str, str]:
    env = {**os.environ, **QUIET}
    # `axolotl train` starts `accelerate launch` by name: it must be Axolotl's, not another venv's.
    env["PATH"] = str(Path(executable).parent) + os.pathsep + env.get("PATH", "")
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def check_config(python: str, config: Path, env: dict[str, str]) -> dict[str, Any]:
    """Axolotl's validator on the config (see axolotl_validate); its report."""
    done = subprocess.run([python, str(VALIDATOR), str(config)], env=env, capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise StageError(f"Axolotl's validator did not run ({python}, exit {done.returncode}):\n{tail}") from None


def refuse_without_gpu(plan: dict[str, Any], cuda_devices: int) -> None:
    if plan.get("device") != "gpu" or cuda_devices > 0:
        return
    parameters = plan.get("parameters")
    if plan.get("requested") == "gpu":
        why = "student.device is gpu"
    elif parameters is None:
        why = "the base model's size is unknown (not a local directory with config.json), so it is not trained on a CPU"
    else:
        why = (
            f"the base model has about {human_count(parameters)} parameters, too many to train on a CPU "
            f"(the limit is {human_count(plan.get('cpu_max_parameters') or CPU_MAX_PARAMETERS)})"
        )
    raise StageError(
        f"train: no GPU found, and {why}. Run the pipeline on a machine with a GPU, or choose a "
        "smaller student.base_model (student.device: cpu forces CPU training)."
    )


def _parse_log_dict(line: str) -> dict[str, Any] | None:
    match = _LOG_DICT.search(line)
    if not match:
        return None
    try:
        data = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(data, dict) or not any(str(k).endswith("loss") for k in data):
        return None
    out = {}
    for key, value in data.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def stream(cmd: list[str], env: dict[str, str], log: Callable[[str], None]) -> tuple[int, list[dict], list[str]]:
    """Run `cmd`, logging its lines (progress bars at most every 5 s); return the exit code, the
    logged metric dicts and the last lines of output."""
    # Its own process group: `axolotl train` starts `accelerate launch`, which starts the trainer.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return _pump(proc, log)
    except BaseException:
        try:  # interrupted: no trainer may go on unseen
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        raise


def _pump(proc: subprocess.Popen, log: Callable[[str], None]) -> tuple[int, list[dict], list[str]]:
    metrics: list[dict] = []
    tail: deque[str] = deque(maxlen=40)
    last_bar = 0.0
    buf = b""
    assert proc.stdout is not None
    while True:
        chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line.strip():
                continue
            if _BANNER.match(line):
                continue
            tail.append(line)
            found = _parse_log_dict(line)
            if found is not None:
                metrics.append(found)
            if _TQDM.search(line) and found is None:
                now = time.monotonic()
                if now - last_bar < 5 and "100%" not in line:
                    continue
                last_bar = now
            log(f"axolotl: {line}")
    if buf.strip():
        tail.append(buf.decode("utf-8", "replace").rstrip())
        log(f"axolotl: {tail[-1]}")
    return proc.wait(), metrics, list(tail)


def _uses_ray(config: Path) -> bool:
    import yaml

    try:
        return bool((yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("use_ray"))
    except (OSError, yaml.YAMLError):
        return False


def _read_plan(plan_path: Path) -> dict[str, Any]:
    try:
        return json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StageError(f"{plan_path}: missing or unreadable; run the configure stage first") from None


def _validated(executable: str, config: Path, env: dict[str, str], log: Callable[[str], None]) -> dict[str, Any]:
    """Axolotl's validator's report on ``config``; StageError when it refuses the config."""
    python = axolotl_python(executable)
    if python is None:
        raise StageError(f"cannot tell which Python runs {executable} (no #! line): Axolotl's validator needs it")
    log(f"train: checking {config} with Axolotl's validator ({python})")
    report = check_config(python, config, env)
    result = report["configs"][0]
    if not result["ok"]:
        problems = result["errors"] + [
            f"key {k} is not one Axolotl reads (it would be ignored)" for k in result["dropped"]
        ]
        raise StageError(f"Axolotl {report.get('axolotl')} refuses {config}:\n  " + "\n  ".join(problems))
    return report


def _train_command(executable: str, config: Path, output_dir: Path) -> list[str]:
    cmd = [executable, "train", str(config), f"--output-dir={output_dir}"]
    if _uses_ray(config):
        # Ray Train starts its own workers: `--use-ray` makes Axolotl skip `accelerate launch`,
        # which would otherwise start one Ray driver per local GPU.
        cmd.append("--use-ray")
    return cmd


def _check_output(tmp: Path, code: int, seconds: float, tail: list[str]) -> None:
    """StageError (and ``tmp`` removed) when the run failed or wrote no adapter or model."""
    if code != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StageError(
            f"axolotl train exited {code} after {seconds} s; its last lines:\n  " + "\n  ".join(tail[-15:])
        )
    if not (tmp / "adapter_config.json").is_file() and not (tmp / "config.json").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise StageError("axolotl train finished but wrote no adapter or model (nothing in its output_dir)")


def _move_into_place(tmp: Path, model_dir: Path) -> None:
    """The trained output, less its checkpoints, renamed to ``model_dir`` (replacing an old one)."""
    for stale in tmp.glob("checkpoint-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(model_dir)


def _run_training(
    executable: str, config: Path, env: dict[str, str], model_dir: Path, log: Callable[[str], None]
) -> tuple[float, list[dict]]:
    """`axolotl train` into a temporary sibling of ``model_dir``, then moved into place; returns
    the seconds it took and the metric dicts it logged."""
    shutil.rmtree(PREPARED_DIR, ignore_errors=True)  # Axolotl's cache key ignores the files' contents
    tmp = model_dir.with_name(f".{model_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = _train_command(executable, config, tmp)
    log("train: " + " ".join([Path(executable).name, *cmd[1:]]))
    started = time.monotonic()
    try:
        code, metrics, tail = stream(cmd, env, log)
    except BaseException:  # Ctrl-C or a kill: leave no half-written model behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = round(time.monotonic() - started, 1)
    _check_output(tmp, code, seconds, tail)
    _move_into_place(tmp, model_dir)
    return seconds, metrics


def _summary(
    report: dict[str, Any],
    plan: dict[str, Any],
    cuda: int,
    model_dir: Path,
    seconds: float,
    metrics: list[dict],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The closing log line and the training log dict, from the metrics Axolotl logged."""
    steps = [
        {"step": i + 1, "loss": m["loss"]}
        for i, m in enumerate(x for x in metrics if "loss" in x and isinstance(x["loss"], float))
    ]
    evals = [
        {"epoch": m.get("epoch"), "val_loss": m["eval_loss"]} for m in metrics if isinstance(m.get("eval_loss"), float)
    ]  # the first is before training (epoch 0)
    summary = next((m for m in reversed(metrics) if isinstance(m.get("train_loss"), float)), {})
    log(
        f"train: saved {model_dir} in {seconds} s ({len(steps)} logged steps"
        + (f", validation loss {evals[0]['val_loss']:.4f} -> {evals[-1]['val_loss']:.4f})" if evals else ")")
    )
    return {
        "trainer": "axolotl",
        "axolotl": report.get("axolotl"),
        "device": plan["device"],
        "gpus": cuda,
        "parameters": plan.get("parameters"),
        "output": "adapter" if (model_dir / "adapter_config.json").is_file() else "model",
        "seconds": seconds,
        "steps": steps,
        "epochs": evals,
        "train_loss": summary.get("train_loss"),
    }


def train_axolotl(config: Path, plan_path: Path, model_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Check ``config`` with Axolotl's validator, refuse a GPU-sized run without a GPU, train into
    ``model_dir``; returns the training log dict."""
    executable = find_axolotl()
    plan = _read_plan(plan_path)
    env = _env(executable, hide_gpus=plan.get("requested") == "cpu")
    report = _validated(executable, config, env, log)
    cuda = int(report.get("cuda_devices") or 0)
    refuse_without_gpu(plan, cuda)
    log(f"train: Axolotl {report.get('axolotl')}, {cuda} GPU(s) visible, {plan['device']} settings ({plan['reason']})")
    if plan["device"] == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # `accelerate launch` gives its trainer one thread unless told otherwise: half this machine,
        # or less. Every core, as torch itself would take.
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    seconds, metrics = _run_training(executable, config, env, model_dir, log)
    summary = _summary(report, plan, cuda, model_dir, seconds, metrics, log)
    if plan["device"] == "cpu":
        summary["cpu_threads"] = int(env.get("OMP_NUM_THREADS") or 1)
    return summary
