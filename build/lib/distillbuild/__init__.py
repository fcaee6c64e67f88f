"""distillbuild: a declarative build system for distilled models."""

__version__ = "0.1.0"
