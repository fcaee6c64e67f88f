"""YAML loading that keeps line numbers and refuses what PyYAML lets through.

PyYAML silently keeps the last of two duplicate keys and expands aliases lazily (a
"billion laughs" document is tiny on disk and exponential once walked). We compose the
node graph ourselves, so that every key path gets its line, duplicates are reported, and
the expanded size is measured, memoised per node, before anything walks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillbuild.errors import SpecError, SpecIssue

MAX_SPEC_BYTES = 1 << 20  # refused before parsing
MAX_EXPANDED_NODES = 100_000  # after alias expansion
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass
class LoadedYaml:
    """A parsed document plus the line (1-based) of every key path in it."""

    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    file: str = ""

    def line_of(self, path: str) -> int:
        """Line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = parent_path(path)
        return self.lines.get("", 1)


def join_path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


_MISSING = object()


def get_path(data: Any, dotted: str, default: Any = None) -> Any:
    """data["a"]["b"] for "a.b"; `default` where any step is absent or not a mapping."""
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def has_path(data: Any, dotted: str) -> bool:
    return get_path(data, dotted, _MISSING) is not _MISSING


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count once aliases are expanded; memoised so a bomb costs O(distinct nodes)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # guards against recursive structures
    size = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo) + _expanded_size(v, memo)
            if size > MAX_EXPANDED_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > MAX_EXPANDED_NODES:
                break
    memo[key] = size
    return size


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.lines: dict[str, int] = {}
        self.issues: list[SpecIssue] = []

    def build(self, node: yaml.Node, path: str) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            self.issues.append(SpecIssue(self.file, node.start_mark.line + 1, path, f"unsupported YAML tag {node.tag}"))
            return None
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if isinstance(key, bool) and key_node.value.lower() not in ("true", "false"):
                    key = key_node.value  # YAML 1.1 reads `on:`/`yes:` keys as booleans; nobody means that
                elif isinstance(key, bool):  # a literal true/false key: what a YAML 1.1 tool writes back for `on:`
                    self.issues.append(
                        SpecIssue(
                            self.file,
                            key_node.start_mark.line + 1,
                            join_path(path, key_node.value),
                            _boolean_key_message(key_node.value, path),
                        )
                    )
                    continue
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    self.issues.append(
                        SpecIssue(self.file, key_node.start_mark.line + 1, path, "keys must be plain scalars")
                    )
                    continue
                child = join_path(path, key)
                line = key_node.start_mark.line + 1
                if key in out:
                    first = self.lines.get(child, "?")
                    self.issues.append(
                        SpecIssue(self.file, line, child, f"duplicate key '{key}' (first defined on line {first})")
                    )
                    continue
                self.lines[child] = line
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, join_path(path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def load_yaml_text(text: str, file: str) -> LoadedYaml:
    """Parse one YAML document with line marks. Raises SpecError."""
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise SpecError([SpecIssue(file, 1, "", "the file is empty")])
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise SpecError([SpecIssue(file, 1, "", "the file is empty")])
        if _expanded_size(root, {}) > MAX_EXPANDED_NODES:
            raise SpecError(
                [
                    SpecIssue(
                        file,
                        root.start_mark.line + 1,
                        "",
                        f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?); refused",
                    )
                ]
            )
        builder = _Builder(file, loader)
        data = builder.build(root, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = exc.context or ""
        if (
            exc.context_mark is not None
            and exc.problem_mark is not None
            and exc.context_mark.line != exc.problem_mark.line
        ):
            context += f" (started on line {exc.context_mark.line + 1})"
        what = " ".join(p for p in (context, str(exc.problem or "")) if p)
        raise SpecError([SpecIssue(file, line, "", f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(file, 1, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SpecError([SpecIssue(file, 1, "", "the document nests too deeply; refused")]) from None
    finally:
        loader.dispose()
    if builder.issues:
        raise SpecError(builder.issues)
    return LoadedYaml(data=data, lines=builder.lines, file=file)


def load_yaml_file(path: Path, display: str | None = None) -> LoadedYaml:
    """Read and parse a spec file; oversize, unreadable and non-UTF-8 files are refused."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SpecError([SpecIssue(name, 1, "", "no such file")]) from None
    except OSError as exc:
        raise SpecError([SpecIssue(name, 1, "", f"cannot read: {exc.strerror}")]) from None
    if path.is_dir():
        raise SpecError([SpecIssue(name, 1, "", "is a directory, not a spec file")])
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            [SpecIssue(name, 1, "", f"the file is {size:,} bytes; specs over {MAX_SPEC_BYTES:,} are refused")]
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SpecError([SpecIssue(name, 1, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SpecError([SpecIssue(name, line, "", f"not UTF-8 text (byte {exc.start})")]) from None
    return load_yaml_text(text, name)


def _boolean_key_message(written: str, path: str) -> str:
    said = (
        f"the key `{written}` is a YAML boolean, not a name: YAML 1.1 tools (PyYAML) load the keys on, off, "
        f"yes and no as booleans and save them back as true/false, so a spec that went through one lost a key"
    )
    if path.startswith("gates."):
        return said + "; under a gate it was `on: ci_low` (or ci_high), now spelled `bound: ci_low`"
    return said + "; put the original key back"
