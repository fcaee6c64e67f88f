"""Exit codes and the errors that map onto them.

0 ok, 1 a gate failed, 2 bad spec or usage, 3 a runtime failure (teacher, budget, trainer).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_SPEC = 2
EXIT_RUNTIME = 3


@dataclass(frozen=True, order=True)
class SpecIssue:
    """One problem in a spec, located as FILE:LINE: key.path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(root)'}: {self.message}"


class SpecError(Exception):
    """A spec that cannot be used; carries every issue found, in file order."""

    def __init__(self, issues: list[SpecIssue]):
        self.issues = sorted(set(issues), key=lambda i: (i.file, i.line, i.path, i.message))
        super().__init__("\n".join(str(i) for i in self.issues))


class StageError(Exception):
    """A runtime failure of a stage (exit 3): a clear message, no traceback."""

    exit_code = EXIT_RUNTIME
