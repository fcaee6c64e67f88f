"""The `distill` command: thin, parses arguments and delegates.

Exit codes: 0 ok, 1 a gate failed (or `compile --check` found dvc.yaml stale),
2 bad spec or usage, 3 a runtime failure.

Each command imports what it runs inside its own function: `distill validate` loads the spec
modules alone and answers in about 0.15 s, while `distill stage` brings the stages and their
engines.
"""

from distillbuild.cli import build, cache, data, project, review, serve  # noqa: F401 - each registers its commands
from distillbuild.cli.main import main

__all__ = ["main"]
