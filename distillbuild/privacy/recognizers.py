"""Presidio recognizers for each kind (privacy/kinds.py), all offline.

Presidio's own where they are checked well: e-mail (its tld check through an offline
tldextract, which would otherwise fetch the public suffix list), phone numbers (libphonenumber,
per region), IBANs (checksum), IP addresses, Bitcoin addresses, and its spaCy recognizer for
names, places and organisations. Cards are this module's (Luhn-checked like Presidio's, with
Mastercard's 2-series, and never a stretch of a longer tracking number). Secrets come from
detect-secrets' own token formats. The rest are patterns whose value follows a context word ('passport', 'born on',
'password is', 'my name is'): `ContextRecognizer` reports the value alone, so the context word
stays and needs no lemmatizer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
)

LANGUAGE = "en"


class ContextRecognizer(EntityRecognizer):
    """Regular expressions with a named group `value`: the group's span is the finding."""

    def __init__(self, entity: str, patterns: Iterable[str], score: float = 0.9, flags: int = re.IGNORECASE):
        super().__init__(supported_entities=[entity], name=f"{entity.title()}Context", supported_language=LANGUAGE)
        self.compiled = [re.compile(p, flags) for p in patterns]
        self.score = score

    def load(self) -> None:  # nothing to load: the patterns are compiled in __init__
        pass

    def valid(self, value: str) -> bool:
        return True

    def analyze(self, text, entities, nlp_artifacts=None):
        found = []
        for pattern in self.compiled:
            for match in pattern.finditer(text):
                start, end = match.span("value")
                if end > start and self.valid(match.group("value")):
                    found.append(RecognizerResult(self.supported_entities[0], start, end, self.score))
        return found


class SecretRecognizer(ContextRecognizer):
    """Token formats: detect-secrets' (AWS, GitHub, GitLab, Slack, Stripe, JWT, ...), today's
    OpenAI and Anthropic keys, bearer tokens, passwords after 'password is' (with a digit, a
    symbol or a capital inside: 'my password is incorrect' is a complaint), and long tokens that
    mix lower case, upper case and digits with a high entropy (a random key, not a word or a
    tracking number)."""

    OWN = (
        r"(?<![\w-])(?P<value>sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,})",
        r"(?i:\bbearer)\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)",
        r"(?i:\b(?:password|passwort|passcode|pwd|pin)\s*(?:is|was|ist|=|:))\s*[\"']?"
        r"(?P<value>(?=\S*[^A-Za-z\s.,;\"'])[^\s\"']{3,}?|[A-Za-z][a-z]*[A-Z][^\s\"']*)[\"']?(?=[.,;]?(?:\s|$))",
    )
    GENERIC = re.compile(r"(?<![\w-])(?P<value>[A-Za-z0-9_\-+/]{24,}={0,2})(?![\w-])")

    def __init__(self):
        super().__init__("SECRET", (*self.OWN, *_detect_secrets_patterns()), score=0.95, flags=0)  # as written

    def analyze(self, text, entities, nlp_artifacts=None):
        found = super().analyze(text, entities, nlp_artifacts)
        for match in self.GENERIC.finditer(text):
            value = match.group("value")
            if _looks_random(value):
                found.append(RecognizerResult("SECRET", match.start("value"), match.end("value"), 0.7))
        return found


def _detect_secrets_patterns() -> list[str]:
    """detect-secrets' regular expressions for tokens with a fixed shape; its keyword and
    entropy detectors are written for source code (`password = "..."`), not for prose."""
    from detect_secrets.plugins import (
        aws,
        azure_storage_key,
        discord,
        github_token,
        gitlab_token,
        jwt,
        mailchimp,
        openai,
        private_key,
        pypi_token,
        sendgrid,
        slack,
        square_oauth,
        stripe,
        telegram_token,
        twilio,
    )

    plugins = (
        aws.AWSKeyDetector, azure_storage_key.AzureStorageKeyDetector, discord.DiscordBotTokenDetector,
        github_token.GitHubTokenDetector, gitlab_token.GitLabTokenDetector, jwt.JwtTokenDetector,
        mailchimp.MailchimpDetector, openai.OpenAIDetector, private_key.PrivateKeyDetector,
        pypi_token.PypiTokenDetector, sendgrid.SendGridDetector, slack.SlackDetector,
        square_oauth.SquareOAuthDetector, stripe.StripeDetector, telegram_token.TelegramBotTokenDetector,
        twilio.TwilioKeyDetector,
    )  # fmt: skip
    patterns = []
    for plugin in plugins:
        for regex in plugin().denylist:
            if regex.groups == 0:  # a token's own shape (those with groups read a value after a keyword)
                patterns.append(rf"(?P<value>{regex.pattern})")
    return patterns


def _looks_random(token: str) -> bool:
    if not (re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"\d", token)):
        return False
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy >= 4.0


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with its top-level-domain check offline."""

    def validate_result(self, pattern_text: str):

        extract = _offline_tldextract()
        result = extract(pattern_text)
        return result.fqdn != ""


_TLD = None


def _offline_tldextract():
    """tldextract with its bundled public suffix list: it fetches none."""
    global _TLD
    if _TLD is None:
        import tldextract

        _TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    return _TLD


class QuietIpRecognizer(IpRecognizer):
    """IP addresses, but not a version number that happens to have four parts ('v4.2.1.0')."""

    VERSION = re.compile(r"(?:\bv|version\s*|build\s*|release\s*)$", re.IGNORECASE)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        found = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in found if not self.VERSION.search(text[max(0, r.start - 9) : r.start])]


class ValidPhoneRecognizer(PhoneRecognizer):
    """libphonenumber's matches as findings on their own when the number is valid in one of the
    regions (or written in international form and valid there), and a merely possible number
    (a fictional 555 one, a drama range) when a phone word stands near it. Presidio scores both
    0.4 and leaves the rest to its context enhancer, which needs a lemmatizer. A match joined by
    a dash or a letter to more of an identifier ('ORD-2024-555182') is part of that identifier."""

    SCORE = 0.75
    NEAR = re.compile(
        r"\b(?:call|phone|tel|telephone|mobile|cell|text|sms|whatsapp|reach|contact|fax|ring|dial"
        r"|anrufen|ruf|telefon|telefonnummer|handy|nummer|rufnummer)\b",
        re.IGNORECASE,
    )

    def __init__(self, supported_regions, supported_entity="PHONE"):
        super().__init__(supported_regions=supported_regions, supported_entity=supported_entity, leniency=0)

    # Seven digits or more with separators between them: libphonenumber's matcher (one pass per
    # region, most of the scrubber's time) runs only on a text that holds such a run.
    MAYBE = re.compile(r"(?:\d[\s().\-/]{0,3}){7,}")

    def analyze(self, text, entities, nlp_artifacts=None):
        import phonenumbers

        if not self.MAYBE.search(text):
            return []
        found = []
        for r in super().analyze(text, entities, nlp_artifacts):
            value = text[r.start : r.end]
            if not _phone_shaped(value) or _joined(text, r.start, r.end):
                continue
            valid = any(_valid_in(phonenumbers, value, region) for region in self.supported_regions)
            international = value.lstrip().startswith("+")  # a country code written out: a phone number
            if valid or international or self.NEAR.search(text[max(0, r.start - 30) : r.end + 30]):
                found.append(r)
        return found


def _valid_in(phonenumbers, value: str, region: str) -> bool:
    """Valid in `region`; written nationally, with the region's trunk prefix as people dial it
    ('030 1234567' in Germany, not '301234567', which reads as an account number)."""
    value = value.strip()
    if not value.startswith("+"):
        prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix
        if prefix == "0" and not re.sub(r"\D", "", value).startswith(prefix):  # North America's "1" is optional
            return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, region))
    except phonenumbers.NumberParseException:
        return False


NOT_PHONE = re.compile(  # dates and year ranges
    r"\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d\d|(?:19|20)\d\d[./-]\d{1,2}[./-]\d{1,2}|(?:19|20)\d\d\s?[-/]\s?(?:19|20)\d\d"
)


def _phone_shaped(value: str) -> bool:
    """7 to 15 digits, no date in them; an unbroken run of 12 or more without '+' reads as an order number."""
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15 or NOT_PHONE.search(value):
        return False
    return re.fullmatch(r"\d{12,}", value) is None


def _joined(text: str, start: int, end: int) -> bool:
    """Part of something longer: an identifier (joined by a dash or a letter) or a longer run of
    digit groups (a card, a tracking number)."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    return bool(re.search(r"\w-?$|\d $", before) or re.match(r"^-?\w|^ \d", after))


class CardRecognizer(EntityRecognizer):
    """Card numbers of the major networks (first digit 2 to 6: Mastercard's 2-series too, which
    Presidio's pattern misses), Luhn-checked, 13 to 19 digits. A run of digit groups is taken
    whole, or as its longest prefix or suffix of whole groups when what is left beside it is
    short (a quantity before, a CVV or an expiry after): a stretch of a tracking number stays. An unbroken
    run must be 15 or 16 digits (an order number of 13 passes the Luhn check one time in ten)."""

    RUN = re.compile(r"(?<![\w-])\d+(?:[ /-]\d+)*(?![\w-])")
    BEFORE, AFTER = 2, 4  # digits that may sit beside a card in one run: a quantity before; a CVV or an expiry after

    def __init__(self):
        super().__init__(supported_entities=["CARD"], name="CardNumber", supported_language=LANGUAGE)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        found = []
        for run in self.RUN.finditer(text):
            groups = list(re.finditer(r"\d+", run.group(0)))
            spans = [(0, len(groups))] + sorted(
                (
                    (i, j)
                    for i in range(len(groups))
                    for j in range(i + 1, len(groups) + 1)
                    if (i == 0) != (j == len(groups))
                ),
                key=lambda ij: ij[0] - ij[1],
            )
            for i, j in spans:
                sizes = [len(g.group(0)) for g in groups[i:j]]
                digits = "".join(g.group(0) for g in groups[i:j])
                before, after = (sum(len(g.group(0)) for g in part) for part in (groups[:i], groups[j:]))
                if (
                    before > self.BEFORE
                    or after > self.AFTER
                    or not self._grouped(sizes)
                    or not self._card(digits, j - i)
                ):
                    continue
                start, end = run.start() + groups[i].start(), run.start() + groups[j - 1].end()
                found.append(RecognizerResult("CARD", start, end, 1.0))
                break
        return found

    @staticmethod
    def _grouped(sizes: list[int]) -> bool:
        """As cards are printed: one piece, fours (the last group shorter), or Amex's and Diners' 4-6-5 and 4-6-4."""
        return len(sizes) == 1 or sizes in ([4, 6, 5], [4, 6, 4]) or (set(sizes[:-1]) == {4} and 1 <= sizes[-1] <= 4)

    @staticmethod
    def _card(digits: str, groups: int) -> bool:
        if digits[0] not in "23456" or not 13 <= len(digits) <= 19:
            return False
        if groups == 1 and len(digits) not in (15, 16):
            return False
        return luhn_ok(digits)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


class WindowRecognizer(ContextRecognizer):
    """A value with a context word within `window` characters before or after it."""

    def __init__(self, entity: str, value: str, context: str, window: int = 40, score: float = 0.9):
        super().__init__(entity, (rf"(?P<value>{value})",), score=score)
        self.near = re.compile(context, re.IGNORECASE)  # not `context`: Presidio's own word list
        self.window = window

    def analyze(self, text, entities, nlp_artifacts=None):
        return [
            r
            for r in super().analyze(text, entities, nlp_artifacts)
            if self.near.search(text[max(0, r.start - self.window) : r.end + self.window])
        ]


DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\.?\s+(?:of\s+)?[A-Za-zä]{3,9}\.?,?\s+\d{4}"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"
)
NAME = r"[A-ZÄÖÜ][a-zäöüßéèáíóúñ'-]+(?:\s+(?:van|von|de|der|den|da|di|le|la)?\s*[A-ZÄÖÜ][a-zäöüßéèáíóúñ'-]+){0,2}"
# Street suffixes: the common ones of USPS Publication 28 (C1), which also covers Britain's.
STREET_WORDS = "|".join(
    """Alley Annex Arcade Avenue Ave Bayou Beach Bend Bluffs? Bottom Boulevard Blvd Branch Bridge Brook Brooks
    Burgs? Bypass Camp Canyon Cape Causeway Centers? Circles? Cir Cliffs? Club Common Corners? Course Courts? Ct
    Coves? Creek Crescent Crest Crossing Crossroad Curve Dale Dam Divide Drives? Dr Estates? Expressway Extensions?
    Falls? Ferry Fields? Flats? Fords? Forest Forge Forks? Fort Freeway Gardens? Gateway Glens? Greens? Groves?
    Harbors? Haven Heights Highway Hwy Hills? Hollow Inlet Islands? Isle Junctions? Keys? Knolls? Lakes? Land
    Landing Lane Ln Lights? Loaf Locks? Lodge Loop Mall Manors? Meadows? Mews Mill Mills Mission Motorway Mount
    Mountains? Neck Orchard Oval Overpass Park Parks Parkways? Pkwy Pass Passage Path Pike Pines? Place Pl Plains?
    Plaza Points? Ports? Prairie Radial Ranch Rapids? Rest Ridges? River Road Rd Roads Route Row Rue Run Shoals?
    Shores? Skyway Springs? Spurs? Squares? Sq Station Stravenue Streams? Street St Streets Summit Terrace
    Throughway Trace Track Trafficway Trail Trailer Tunnel Turnpike Underpass Unions? Valleys? Viaduct Views? Villages?
    Ville Via Vista Walks? Wall Way Ways Wells? Close Drove Gate Green Grove Hill Rise Walk Wharf Yard""".split()
)
UNIT = r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Fl\.?)\s*#?\s*\w+)?"
STREET = r"(?:[A-Z][a-z]+\.?\s+){1,3}(?:" + STREET_WORDS + r")\.?"
GERMAN_STREET = (
    r"[A-ZÄÖÜ][a-zäöüß]+(?:-[A-ZÄÖÜ][a-zäöüß]+)*"
    r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|-(?:Straße|Strasse|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer))"
    r"|[A-ZÄÖÜ][a-zäöüß]+(?:er)?\s+(?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer)"
)
HOUSE = r"\d{1,4}[a-zA-Z]?(?:\s*[-/]\s*\d{1,4}[a-zA-Z]?)?"


def pattern_recognizers(phone_regions: Iterable[str], id_regions: Iterable[str]) -> dict[str, list[EntityRecognizer]]:
    """The recognizers of each kind's tag that need no model."""
    id_regions = {r.upper() for r in id_regions}
    national = []
    if "US" in id_regions:  # SSNs: dashed anywhere (000, 666 and 9xx are never issued), else beside 'SSN'
        national.append(
            ContextRecognizer(
                "NATIONAL_ID", (r"(?<![\w-])(?P<value>(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4})(?![\w-])",)
            )
        )
        national.append(
            WindowRecognizer(
                "NATIONAL_ID", r"(?<![\w-])\d{3}[ .-]?\d{2}[ .-]?\d{4}(?![\w-])", r"\bssn\b|social security"
            )
        )
    return {
        "SECRET": [SecretRecognizer()],
        "CREDENTIALS": [
            ContextRecognizer("CREDENTIALS", (r"\b[a-z][a-z0-9+.-]*://(?P<value>[^\s:/@]+:[^\s@/]+)@",), score=1.0)
        ],
        "EMAIL": [
            OfflineEmailRecognizer(supported_entity="EMAIL"),
            ContextRecognizer(
                "EMAIL",
                (
                    r"(?P<value>\b[\w.+-]+\s*(?:\(at\)|\[at\]|\{at\}|\s+at\s+)\s*[\w-]+"
                    r"(?:\s*(?:\(dot\)|\[dot\]|\{dot\}|\s+dot\s+)\s*[\w-]+)+)\b",
                ),
            ),
        ],
        "CARD": [CardRecognizer()],
        "IBAN": [IbanRecognizer(supported_entity="IBAN")],
        "CRYPTO": [
            CryptoRecognizer(supported_entity="CRYPTO"),
            ContextRecognizer("CRYPTO", (r"\b(?P<value>0x[a-fA-F0-9]{40})\b",), flags=0),
        ],
        "NATIONAL_ID": national,
        "PASSPORT": [
            ContextRecognizer(
                "PASSPORT",
                (
                    r"\b(?:passport|reisepass)(?:\s*(?:no\.?|number|num\.?|nr\.?|nummer|#))?\s*(?:is|ist|:)?\s*"
                    r"(?P<value>(?-i:[A-Z0-9]{6,10}))\b",
                ),
            )
        ],
        "DOB": [
            ContextRecognizer(
                "DOB",
                (
                    r"\b(?:born(?:\s+on)?|date\s+of\s+birth|d\.?o\.?b\.?|birth\s*date|birthday(?:\s+is)?"
                    r"|geboren(?:\s+am)?|geburtsdatum)\s*(?:is|was|ist|:)?\s*(?P<value>" + DATE + ")",
                ),
            )
        ],
        "PHONE": [ValidPhoneRecognizer(supported_regions=tuple(phone_regions))],
        "IP": [QuietIpRecognizer(supported_entity="IP")],
        "ADDRESS": [
            ContextRecognizer(
                "ADDRESS",
                (
                    r"(?P<value>\b\d{1,6}[A-Za-z]?\s+" + STREET + UNIT + r")(?!\w)",
                    r"(?P<value>\b(?:Flat|Studio|Apartment|Unit)\s+\d{1,4}[A-Za-z]?[,\s]+" + STREET + r")(?!\w)",
                    r"(?P<value>\b(?:" + GERMAN_STREET + r")\s+" + HOUSE + r")(?![\w/-])",
                ),
                flags=0,
            )
        ],
        "PERSON": [
            ContextRecognizer(
                "PERSON",
                (
                    r"(?i:\bmy name is|\bmy name's|\bname:|\bich heiße|\bmein name ist|\bthis is)\s+(?P<value>"
                    + NAME
                    + ")",
                    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Herr|Frau)\.?\s+(?P<value>" + NAME + ")",
                ),
                flags=0,
            )
        ],
    }


def ner_recognizer(entities: list[str]) -> SpacyRecognizer:
    """Presidio's spaCy recognizer for the model's PERSON, place and ORG entities."""
    return SpacyRecognizer(supported_language=LANGUAGE, supported_entities=entities)
