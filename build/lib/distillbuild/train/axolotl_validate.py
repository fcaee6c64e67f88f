"""Check Axolotl configs with Axolotl's own validator and report the keys it drops.

Run it with the Python that has Axolotl (it imports only the standard library, PyYAML and
Axolotl, so it runs as a module or as a plain script, with or without distillbuild installed):

    .venv-axolotl/bin/python -m distillbuild.train.axolotl_validate build/configure/axolotl.yaml
    .venv-axolotl/bin/python distillbuild/train/axolotl_validate.py a.yaml --cwd other/ b.yaml

It prints one JSON document on stdout:

    {"axolotl": "0.19.0", "cuda_devices": 0,
     "configs": [{"path": "a.yaml", "ok": true, "errors": [], "dropped": []}, ...]}

`errors` are what `validate_config` raised (Axolotl refuses the config); `dropped` are key paths
present in the file but absent after validation (Axolotl ignores them without a word:
`datasets[0].feild_messages`, `fsdp_config.ofload_params`). A config is ok when both are empty.
Relative paths in a config (base_model, datasets, deepspeed) are read from the working
directory, as `axolotl train` reads them; `--cwd DIR` before some configs reads them from DIR.
Exit status: 0 when every config is ok, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def dropped_keys(emitted: Any, validated: Any, path: str = "") -> list[str]:
    """Key paths of mappings in `emitted` that `validated` lacks (recursing into mappings and
    lists of mappings). Values that Axolotl normalises (types, added defaults) are not drops."""
    out: list[str] = []
    if isinstance(emitted, dict) and isinstance(validated, dict):
        for key, value in emitted.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in validated:
                out.append(child)
            else:
                out.extend(dropped_keys(value, validated[key], child))
    elif isinstance(emitted, list) and isinstance(validated, list):
        for i, (a, b) in enumerate(zip(emitted, validated)):
            out.extend(dropped_keys(a, b, f"{path}[{i}]"))
        if len(validated) < len(emitted):
            out.extend(f"{path}[{i}]" for i in range(len(validated), len(emitted)))
    return out


def _plain(value: Any) -> Any:
    """Pydantic models and enums inside a validated config, as plain data."""
    if isinstance(value, dict):  # before model_dump: Axolotl's DictDefault answers None for any attribute
        return {k: _plain(v) for k, v in value.items()}
    if callable(getattr(value, "model_dump", None)):
        return _plain(value.model_dump(exclude_none=True))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and type(value).__module__ != "builtins" and not isinstance(value, (str, int, float)):
        return value.value
    return value


def _error_text(exc: BaseException) -> list[str]:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic ValidationError: one line per problem
        try:
            lines = []
            for err in errors():
                where = ".".join(str(p) for p in err.get("loc", ()))
                lines.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
            if lines:
                return lines
        except Exception:  # noqa: BLE001 - fall back to the plain message
            pass
    return [f"{type(exc).__name__}: {exc}".strip()]


def validate_one(path: str) -> dict[str, Any]:
    import yaml
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    result: dict[str, Any] = {"path": path, "ok": False, "errors": [], "dropped": []}
    try:
        with open(path, encoding="utf-8") as fh:
            emitted = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        result["errors"] = [f"cannot read: {exc}"]
        return result
    if not isinstance(emitted, dict):
        result["errors"] = ["not a mapping of Axolotl keys"]
        return result
    cfg = DictDefault(json.loads(json.dumps(emitted)))  # a private deep copy
    try:
        prepare_plugins(cfg)  # first, or the plugins' keys (kd_*) are dropped as unknown
        validated = validate_config(cfg)
    except Exception as exc:  # noqa: BLE001 - any refusal is reported, not raised
        result["errors"] = _error_text(exc)
        if cfg.get("plugins"):
            from axolotl.integrations.base import PluginManager

            try:
                PluginManager.get_instance().on_config_validation_error(cfg)
            except Exception:  # noqa: BLE001
                pass
        return result
    result["dropped"] = dropped_keys(emitted, _plain(dict(validated)))
    result["ok"] = not result["dropped"]
    return result


def _axolotl_version() -> str:
    try:
        from importlib.metadata import version

        return version("axolotl")
    except Exception:  # noqa: BLE001
        return "unknown"


def _cuda_devices() -> int:
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or any(a in ("-h", "--help") for a in args):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    # Axolotl logs to stdout; keep stdout for the JSON report alone.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        results = []
        start = os.getcwd()
        it = iter(args)
        for arg in it:
            if arg == "--cwd":  # the following configs read relative paths from DIR
                target = next(it, None)
                if target is None:
                    print("--cwd needs a directory", file=sys.stderr)
                    return 2
                os.chdir(os.path.join(start, target))
                continue
            results.append(validate_one(os.path.join(start, arg) if not os.path.isabs(arg) else arg))
            results[-1]["path"] = arg
        report = {"axolotl": _axolotl_version(), "cuda_devices": _cuda_devices(), "configs": results}
    finally:
        sys.stdout = real_stdout
    print(json.dumps(report, indent=2, sort_keys=False))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
