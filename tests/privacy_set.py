"""A labelled evaluation set for the scrubber, built from templates with Faker (seeded: the same
sentences every run). Each sentence plants one value of one kind, in one of several surface forms
(formats, context words, positions; names from English and German locales); the clean sentences
hold no personal data but numbers that look like it (order and tracking numbers, dates, versions,
amounts). Used by bench/scrub_eval.py and tests/test_privacy.py.

Phone numbers are kept only where libphonenumber calls them valid for their region: a real
customer's number is a valid one, and Faker writes many that are not (area code 011, say).
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

PER_KIND = 120  # sentences per kind: 13 kinds, 1,560 in all
CLEAN = 500


@dataclass(frozen=True)
class Planted:
    kind: str  # the data.scrub key
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Sentence:
    text: str
    planted: tuple[Planted, ...]


def _sentence(kind: str, template: str, value: str) -> Sentence:
    start = template.index("{v}")
    text = template.replace("{v}", value)
    end = start + len(value)
    if kind == "url_credentials":  # the secret part of the URL: user:password
        start, end = start + value.index("://") + 3, start + value.index("@")
    return Sentence(text, (Planted(kind, start, end, text[start:end]),))


TEMPLATES = {
    "email": [
        "Please send the invoice to {v} instead.",
        "{v} is my new address, the old one no longer works",
        "my email is {v}",
        "Contact: {v} (preferred)",
        "I wrote from {v} twice and heard nothing back.",
        "Bitte antworten Sie an {v}, danke.",
    ],
    "phone": [
        "Call me back on {v} after 5pm.",
        "my phone number is {v}",
        "{v} is the best number to reach me",
        "You can text {v} any time today.",
        "Meine Telefonnummer ist {v}.",
        "Tel: {v}",
    ],
    "card": [
        "I was charged twice on card {v} yesterday.",
        "my card number is {v}, please refund it",
        "{v} was declined at checkout",
        "Please remove the card ending... actually the full number is {v}.",
    ],
    "iban": [
        "Please refund to IBAN {v}.",
        "my bank account is {v}",
        "{v} is the account for the transfer",
        "Bitte überweisen Sie auf {v}.",
    ],
    "ip": [
        "I can't log in from {v} since this morning.",
        "the server at {v} keeps timing out",
        "Blocked IP: {v}",
        "{v} shows up in the error log",
    ],
    "national_id": [
        "My SSN is {v} if you need it.",
        "social security number {v}",
        "ssn: {v}",
        "For the tax form: {v} is my social security number.",
    ],
    "secret": [
        "here is my API key {v} it stopped working",
        "The token {v} was rejected with 401",
        "Authorization: Bearer {v}",
        "I pasted {v} into the config by mistake",
    ],
    "person": [
        "My name is {v} and I need help with my account.",
        "{v} called yesterday about the refund.",
        "Please ask {v} to call me back.",
        "Dear support, this is {v}.",
        "Mr. {v} placed the order.",
        "Ich heiße {v} und habe eine Frage.",
        "The parcel was signed for by {v}.",
    ],
    "address": [
        "Please ship it to {v} instead.",
        "I moved to {v} last month.",
        "my address is {v}",
        "{v} is the delivery address on file.",
        "Die Lieferadresse ist {v}.",
    ],
    "passport": [
        "My passport number is {v}.",
        "passport no. {v}, expires next year",
        "Passport: {v}",
        "Meine Reisepassnummer ist {v}.",
    ],
    "date_of_birth": [
        "I was born on {v}.",
        "DOB: {v}",
        "my date of birth is {v}",
        "Geboren am {v} in Hamburg.",
        "birthday is {v}, please update it",
    ],
    "crypto": [
        "Send the refund to my wallet {v}.",
        "my bitcoin address is {v}",
        "{v} is the wallet I used",
    ],
    "url_credentials": [
        "The webhook is {v} and it fails.",
        "connect with {v} to see it",
        "I configured {v} in the app",
    ],
}

CLEAN_TEMPLATES = [
    "Order #{order} has not arrived yet.",
    "My order {order} was shipped on {date}.",
    "Tracking number {tracking} shows no movement since {date}.",
    "The package {tracking} is stuck in customs.",
    "I paid {amount} but was charged {amount2}.",
    "After the update to version {version} the app crashes.",
    "Build {version} fixed it, thanks.",
    "Invoice {invoice} for {amount} is wrong.",
    "I ordered {qty} units on {date} and got {qty2}.",
    "The meeting moved from {time} to {time2}.",
    "Ticket {ticket} was closed without an answer.",
    "Item SKU {sku} is out of stock again.",
    "Refund of {amount} for order {order} is pending since {date}.",
    "Error code {code} appears after {qty} seconds.",
    "Room {room} on floor {qty} has no wifi.",
    "Flight {flight} on {date} was cancelled.",
    "Die Bestellung {order} kam am {date} nicht an.",
    "I upgraded to {version} and it's {percent} slower.",
    "Our account ID is {account}, please check it.",
]


def _btc(rng: random.Random) -> str:
    """A valid Base58Check Bitcoin address (version 0)."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    payload = bytes([0]) + bytes(rng.randrange(256) for _ in range(20))
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(payload + check, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = alphabet[rest] + out
    return "1" * (len(payload + check) - len((payload + check).lstrip(b"\0"))) + out


def _token(rng: random.Random, n: int, chars: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _values(kind: str, fakers: dict, rng: random.Random) -> str:
    en, de, gb, fr = fakers["en_US"], fakers["de_DE"], fakers["en_GB"], fakers["fr_FR"]
    if kind == "email":
        form = rng.randrange(5)
        user, domain = en.user_name(), en.free_email_domain()
        if form == 0:
            return en.email()
        if form == 1:
            return f"{en.first_name().lower()}.{en.last_name().lower()}+{rng.randrange(99)}@{en.domain_name()}"
        if form == 2:
            return de.email().upper()
        if form == 3:
            name, tld = domain.rsplit(".", 1)
            return f"{user} (at) {name} (dot) {tld}"
        name, tld = domain.rsplit(".", 1)
        return f"{user} at {name} dot {tld}"
    if kind == "phone":
        import phonenumbers

        while True:
            locale, region = rng.choice([("en_US", "US"), ("en_GB", "GB"), ("de_DE", "DE"), ("fr_FR", "FR")])
            number = fakers[locale].phone_number()
            try:
                if "x" not in number and phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                    return number
            except phonenumbers.NumberParseException:
                pass
    if kind == "card":
        number = en.credit_card_number(rng.choice(["visa16", "mastercard", "amex", "discover"]))
        form = rng.randrange(3)
        if form == 0:
            return number
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        return (" " if form == 1 else "-").join(groups)
    if kind == "iban":
        iban = rng.choice([en, de, gb, fr, fakers["nl_NL"]]).iban()
        return iban if rng.random() < 0.5 else " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    if kind == "ip":
        return rng.choice([en.ipv4_public, en.ipv4_private, en.ipv6])()
    if kind == "national_id":
        ssn = en.ssn()
        form = rng.randrange(3)
        return ssn if form == 0 else ssn.replace("-", " ") if form == 1 else ssn.replace("-", "")
    if kind == "secret":
        form = rng.randrange(7)
        return [
            lambda: "sk-proj-" + _token(rng, 48, string.ascii_letters + string.digits + "_-"),
            lambda: "AKIA" + _token(rng, 16, string.ascii_uppercase + string.digits),
            lambda: "ghp_" + _token(rng, 36),
            lambda: (
                "xoxb-"
                + str(rng.randrange(10**11, 10**12))
                + "-"
                + _token(rng, 24, string.ascii_lowercase + string.digits)
            ),
            lambda: "sk_live_" + _token(rng, 24),
            lambda: (
                "eyJhbGciOiJIUzI1NiJ9."
                + _token(rng, 40, string.ascii_letters + string.digits + "_-")
                + "."
                + _token(rng, 43)
            ),
            lambda: _token(rng, 32, string.ascii_letters + string.digits),
        ][form]()
    if kind == "person":
        return rng.choice([en, de, gb])
    if kind == "address":
        return rng.choice([en.street_address, de.street_address, gb.street_address])()
    if kind == "passport":
        form = rng.randrange(3)
        if form == 0:
            return "".join(rng.choice(string.digits) for _ in range(9))  # US, UK
        if form == 1:
            return "C" + _token(rng, 8, "CFGHJKLMNPRTVWXYZ0123456789")  # German
        return rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + "".join(rng.choice(string.digits) for _ in range(8))
    if kind == "date_of_birth":
        day = en.date_of_birth(minimum_age=18, maximum_age=90)
        return rng.choice([
            day.strftime("%d %B %Y"), day.strftime("%m/%d/%Y"), day.strftime("%Y-%m-%d"), day.strftime("%d.%m.%Y"),
            day.strftime("%B %d, %Y"),
        ])  # fmt: skip
    if kind == "crypto":
        return _btc(rng) if rng.random() < 0.6 else "0x" + _token(rng, 40, "0123456789abcdef")
    if kind == "url_credentials":
        scheme = rng.choice(["https", "postgres", "mysql", "ftp", "redis"])
        user, password = en.user_name(), _token(rng, 12) + rng.choice("!#%")
        return f"{scheme}://{user}:{password}@{en.domain_name()}/{en.uri_path()}"
    raise ValueError(kind)


def _clean(rng: random.Random, en) -> str:
    template = rng.choice(CLEAN_TEMPLATES)
    day = en.date_between("-2y", "+30d")
    r = rng.randrange
    fill = {
        "order": rng.choice([str(r(10**12, 10**13)), f"ORD-{r(2019, 2027)}-{r(10**5, 10**6)}",
                             f"{r(100, 999)}-{r(10**6, 10**7)}-{r(10**6, 10**7)}"]),
        "date": rng.choice([day.isoformat(), day.strftime("%d %B %Y"), day.strftime("%B %d"),
                            day.strftime("%d.%m.%Y")]),
        "tracking": rng.choice(["1Z" + _token(rng, 16, string.ascii_uppercase + string.digits),
                                " ".join(str(r(1000, 9999)) for _ in range(5)) + " " + str(r(10, 99)),
                                "JD" + "".join(rng.choice(string.digits) for _ in range(18))]),
        "amount": rng.choice([f"${r(1, 3000):,}.{r(100):02d}", f"EUR {r(1, 900)},{r(100):02d}",
                              f"{r(1, 9)}.{r(100, 999)},{r(100):02d} €"]),
        "amount2": f"${rng.randrange(1, 3000)}.{rng.randrange(100):02d}",
        "version": rng.choice([f"{rng.randrange(1, 20)}.{rng.randrange(30)}.{rng.randrange(20)}",
                               f"v{rng.randrange(1, 9)}.{rng.randrange(10)}.{rng.randrange(10)}.{rng.randrange(10)}",
                               f"10.0.{rng.randrange(19000, 22999)}.{rng.randrange(1000, 5000)}"]),
        "invoice": f"INV-{rng.randrange(10**5, 10**6)}",
        "qty": str(rng.randrange(1, 500)),
        "qty2": str(rng.randrange(1, 500)),
        "time": f"{rng.randrange(7, 12)}:{rng.choice(['00', '15', '30', '45'])}",
        "time2": f"{rng.randrange(13, 19)}:{rng.choice(['00', '15', '30', '45'])}",
        "ticket": f"#{rng.randrange(10**4, 10**6)}",
        "sku": f"{_token(rng, 3, string.ascii_uppercase)}-{rng.randrange(1000, 99999)}",
        "code": f"E{rng.randrange(100, 999)}",
        "room": str(rng.randrange(100, 999)),
        "flight": f"{rng.choice(['LH', 'BA', 'UA', 'AF'])} {rng.randrange(100, 9999)}",
        "percent": f"{rng.randrange(1, 90)}%",
        "account": str(r(10**7, 10**8)),
    }  # fmt: skip
    return template.format(**fill)


def evaluation_set(seed: int = 7) -> tuple[list[Sentence], list[str]]:
    """(sentences each planting one value, clean sentences)."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(["en_US", "de_DE", "en_GB", "fr_FR", "nl_NL"]):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed + i)
    planted = []
    for kind, templates in TEMPLATES.items():
        for i in range(PER_KIND):
            value = _values(kind, fakers, rng)
            if kind == "person":
                value = value.name() if rng.random() < 0.7 else value.first_name() + " " + value.last_name()
            planted.append(_sentence(kind, templates[i % len(templates)], value))
    clean = [_clean(rng, fakers["en_US"]) for _ in range(CLEAN)]
    return planted, clean
