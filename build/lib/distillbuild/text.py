"""Text equality as the whole pipeline means it (DESIGN.md): equal after Unicode NFKC, case
folding and collapsing whitespace. Exact dedup, decontamination and the few-shot checks share it."""

from __future__ import annotations

import unicodedata


def normalize_text(text: str) -> str:
    """Equal after Unicode NFKC, case folding and collapsing whitespace: an exact duplicate."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
