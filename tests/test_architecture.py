"""The package's layers hold, and a stage is one module plus one list entry.

Layers, top to bottom (ARCHITECTURE.md): cli -> review, reports, serve -> pipeline (the contract,
the stage list, compile, the runner and the stages) -> endpoints -> engines (curate, seed, train,
evaluate, export) -> protocol -> llm -> base modules (spec, io, layout, errors, ...). A module
may import only from its own layer or below, and no import cycle may form, between modules or
between packages, counting the imports inside functions too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from distillbuild.cli import main
from distillbuild.pipeline import stage_list
from distillbuild.pipeline.contract import Stage

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "distillbuild"

ENGINES = {"curate", "seed", "train", "evaluate", "export"}
# Each layer's rank: a module imports only from its own rank or below. Unlisted modules are base (0).
RANK = {
    "llm": 1,
    "protocol": 2,
    **{e: 3 for e in ENGINES},
    "endpoints": 4,
    "pipeline": 5,
    "review": 6,
    "reports": 6,
    "serve": 6,
    "cli": 7,
    "__main__": 7,
}
UPPER = {name for name, rank in RANK.items() if rank >= 5}  # what engines and base modules never import


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every distillbuild module `path` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) for name, path in files.items()}


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded into distillbuild's top-level packages (a module outside any package
    is its own node): a cycle here is one that the module graph can hide, such as a.x -> b.y and
    b.z -> a.w."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[layer(module)] |= {layer(t) for t in targets if layer(t) != layer(module)}
    return dict(packages)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_at_every_depth():
    graph = import_graph()
    assert "distillbuild.pipeline.stage_list" in graph["distillbuild.pipeline.compile"]  # a top-level import
    assert "distillbuild.pipeline.runner" in graph["distillbuild.cli.build"]  # an import inside a command function


def test_no_engine_or_base_module_reaches_up():
    reaching_up = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if layer(module) not in UPPER
        for target in targets
        if layer(target) in UPPER
    )
    assert reaching_up == []


def rank(module: str) -> int:
    return RANK.get(layer(module), 0)


def test_every_import_points_down_or_level():
    upward = sorted(f"{m} imports {t}" for m, ts in import_graph().items() for t in ts if rank(t) > rank(m))
    assert upward == []


def test_base_modules_import_no_engine():
    base = {m: t for m, t in import_graph().items() if rank(m) == 0}
    assert sorted(f"{m} imports {t}" for m, ts in base.items() for t in ts if rank(t) > 0) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_cycles_between_packages():
    assert cycles(package_graph(import_graph())) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_package_cycle_that_no_module_cycle_shows_is_found():
    modules = {
        "distillbuild.a.x": {"distillbuild.b.y"},
        "distillbuild.b.y": set(),
        "distillbuild.b.z": {"distillbuild.a.w"},
        "distillbuild.a.w": set(),
    }
    assert cycles(modules) == []
    assert cycles(package_graph(modules)) == [["a", "b"]]


TOY_STAGE = """
from distillbuild import layout
from distillbuild.io import write_json
from distillbuild.pipeline.contract import uncached

READS = ("task.labels", "split", "no.such.key")


def deps(spec):
    return [layout.DATASET_DIR]


def outs(spec):
    return ["build/toy/summary.json"]


def metrics(spec):
    return [uncached("build/toy/metrics.json")]


def run(spec):
    write_json(__import__("pathlib").Path("build/toy/summary.json"), {"labels": len(spec.get("task.labels"))})
    return 0
"""


def test_a_new_stage_is_one_module_and_one_list_entry(project, tmp_path, monkeypatch):
    (tmp_path / "toy_stage.py").write_text(TOY_STAGE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_stage

    monkeypatch.setattr(stage_list, "PIPELINE", [*stage_list.PIPELINE, Stage.of(toy_stage)])  # the list entry
    spec_path = project()
    runner = CliRunner()
    compiled = runner.invoke(main, ["compile", str(spec_path)])
    assert compiled.exit_code == 0, compiled.output
    entry = yaml.safe_load((spec_path.parent / "dvc.yaml").read_text())["stages"]["toy_stage"]
    assert entry == {
        "cmd": "distill stage toy_stage",
        "deps": ["build/dataset"],
        "params": [{"distill.yaml": ["task.labels", "split"]}],  # a key the spec lacks is left out
        "outs": ["build/toy/summary.json"],
        "metrics": [{"build/toy/metrics.json": {"cache": False}}],
    }
    monkeypatch.chdir(tmp_path)  # the stage runs in the spec's directory; restored afterwards
    ran = runner.invoke(main, ["stage", "toy_stage", "--spec", str(spec_path)])
    assert ran.exit_code == 0, ran.output
    assert json.loads((spec_path.parent / "build/toy/summary.json").read_text()) == {"labels": 4}
    unknown = runner.invoke(main, ["stage", "no_such_stage", "--spec", str(spec_path)])
    assert unknown.exit_code == 2 and "toy_stage" in unknown.output  # the choice lists the new stage


def test_only_the_pipeline_serve_and_the_cli_start_a_server():
    """Engines get settings for an endpoint someone else opened; they never start a server.
    `distill serve` may: it starts llama.cpp for an exported GGUF student."""
    starters = sorted(
        m for m, ts in import_graph().items() if any(layer(t) == "endpoints" for t in ts) and layer(m) != "endpoints"
    )
    assert starters and all(layer(m) in ("pipeline", "cli", "serve") for m in starters), starters
