"""The kinds of personal and secret data the scrubber knows: their spec key, their tag and how
they are found. The spec's `data.scrub` turns each on or off by its key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    key: str  # data.scrub.<key>
    tag: str  # what a value becomes: [TAG], or [TAG_N] as a pseudonym
    description: str
    ner: bool = False  # found by the named-entity model (optional), not by patterns alone
    default: bool = True


KINDS: tuple[Kind, ...] = (
    Kind(
        "secret", "SECRET", "API keys and tokens (detect-secrets' formats and more), passwords written after 'password'"
    ),
    Kind("url_credentials", "CREDENTIALS", "user:password inside a URL"),
    Kind("email", "EMAIL", "e-mail addresses, also written as 'name (at) domain (dot) com'"),
    Kind("iban", "IBAN", "IBANs (checksum-checked)"),
    Kind("card", "CARD", "payment card numbers (Luhn-checked)"),
    Kind("crypto", "CRYPTO", "Bitcoin and Ethereum wallet addresses"),
    Kind("national_id", "NATIONAL_ID", "national ID numbers of data.scrub.id_regions (US: SSN)"),
    Kind("passport", "PASSPORT", "passport numbers written after 'passport'"),
    Kind("date_of_birth", "DOB", "dates written as a date of birth ('born on', 'DOB:')"),
    Kind("phone", "PHONE", "phone numbers of data.scrub.phone_regions, or in international form (libphonenumber)"),
    Kind("ip", "IP", "IPv4 and IPv6 addresses"),
    Kind("address", "ADDRESS", "street addresses (a number and a street, English and German forms)"),
    Kind("person", "PERSON", "people's names: after 'my name is', a title, and by the NER model", ner=True),
    Kind("location", "LOCATION", "places (cities, countries) by the NER model", ner=True),
    Kind(
        "organization",
        "ORG",
        "organisations by the NER model (off by default: brands are rarely personal)",
        ner=True,
        default=False,
    ),  # fmt: skip
)

BY_KEY = {k.key: k for k in KINDS}
BY_TAG = {k.tag: k for k in KINDS}
