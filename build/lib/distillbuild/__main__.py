"""`python -m distillbuild` is the `distill` command (how a stage starts `distill serve` as a child)."""

from distillbuild.cli import main

main()
