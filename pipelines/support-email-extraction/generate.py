#!/usr/bin/env python3
"""Generate the support-email extraction dataset: customer e-mails to a small online shop,
each mapped to one JSON object (intent, order id, product, urgency, customer name, amount).

Run from anywhere:

    python pipelines/support-email-extraction/generate.py

It rewrites, byte-identically on every run (fixed seed, Python 3.11+ standard library only):

    data/inputs.jsonl       unlabelled e-mails                          {"id", "text"}
    data/heldout.jsonl      gold-labelled e-mails, never trained on     {"id", "text", "label": {...}}
    data/teacher_key.jsonl  answer key of the simulated teacher, one line per input and per
                            held-out e-mail                            {"text", "label", "alternatives"}

SCHEMA below is the JSON Schema of the answer; distill.yaml carries the same as task.output_schema
(tests/test_extraction.py checks that they agree).

The shop ("Brightnest", invented) sells eight home-electronics products and gift cards. Every
phrasing below was written by hand for this project; no existing dataset was copied. All names,
order numbers, tracking numbers and amounts are invented.

Gold rules (what a careful annotator writes; the instruction in distill.yaml says the same):
- intent: what the customer asks for. Money back explicitly asked for is refund_request whatever
  the reason; a broken or faulty item with a replacement or help asked for is damaged_item.
- order_id: the shop's order number as written (BN-123456 or W1234567), without a leading '#';
  tracking numbers, invoice and case numbers are not order numbers. null when absent.
- product: the product the request is about, as its catalogue id; null when none is named.
- urgency: high with explicit urgency (ASAP, today, a deadline, repeated contact, a threatened
  chargeback), low with an explicit "no rush", else normal.
- customer_name: the sender's name as they sign or introduce themselves; other people named in
  the e-mail are not the customer. null when the sender gives no name.
- amount: the money amount the request is about, as a number without currency; null when none.

About 8% of rows are deliberately ambiguous (two products, two amounts, mixed urgency cues, a
second person, an intent between two readings, a tracking number where an order number would
be); their teacher-key `alternatives` hold the other plausible reading, which the simulated
teacher gives when it errs. Other rows carry one plausible mistake as their alternative (a
neighbouring urgency, a confusable intent, a first name for a full name, a tracking number for
the order number, ...) or none, in which case an erring teacher drops a field.
Tone varies on purpose: lowercase, typos, shorthand, ALL-CAPS fragments, one-line messages.
Ten inputs are deliberate duplicates of other inputs (whitespace or case changed).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

SEED = 20250307
HERE = Path(__file__).resolve().parent
OUT = HERE / "data"

N_INPUT_UNIQUE = 480
N_DUPLICATES = 10
N_HELDOUT = 200
AMBIGUOUS_RATE = 0.08

INTENTS = [
    "refund_request",
    "order_status",
    "cancel_order",
    "damaged_item",
    "wrong_item",
    "billing_issue",
    "change_address",
    "product_question",
]
PRODUCTS = [
    "aria_earbuds",
    "halo_speaker",
    "sweep_vacuum",
    "brew_grinder",
    "lumen_lamp",
    "pulse_band",
    "breeze_purifier",
    "tempo_kettle",
    "gift_card",
]
URGENCY = ["low", "normal", "high"]

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["intent", "order_id", "product", "urgency", "customer_name", "amount"],
    "properties": {
        "intent": {"type": "string", "enum": INTENTS, "description": "What the customer asks for."},
        "order_id": {
            "type": ["string", "null"],
            "description": "The shop's order number as written (BN-123456 or W1234567), without a leading '#'; null if none.",
        },
        "product": {
            "type": ["string", "null"],
            "enum": PRODUCTS + [None],
            "description": "The catalogue id of the product the request is about; null if none is named.",
        },
        "urgency": {
            "type": "string",
            "enum": URGENCY,
            "description": "high: explicit urgency or a deadline; low: explicitly no rush; else normal.",
        },
        "customer_name": {
            "type": ["string", "null"],
            "description": "The sender's name as they sign or introduce themselves; null if not given.",
        },
        "amount": {
            "type": ["number", "null"],
            "description": "The money amount the request is about, as a number without currency; null if none.",
        },
    },
}

# How customers name each product: (specific mentions, generic mentions).
MENTIONS = {
    "aria_earbuds": (
        ["Aria earbuds", "Aria Buds", "Aria wireless earbuds", "Aria Buds Pro"],
        ["earbuds", "wireless earbuds", "headphones"],
    ),
    "halo_speaker": (
        ["Halo speaker", "Halo smart speaker", "Halo Mini speaker", "Halo Mini"],
        ["smart speaker", "bluetooth speaker"],
    ),
    "sweep_vacuum": (
        ["Sweep robot vacuum", "Sweep S2 vacuum", "Sweep vacuum", "Sweep S2"],
        ["robot vacuum", "robot hoover"],
    ),
    "brew_grinder": (["Brew coffee grinder", "Brew burr grinder", "Brew grinder"], ["coffee grinder", "burr grinder"]),
    "lumen_lamp": (["Lumen desk lamp", "Lumen lamp", "Lumen LED lamp"], ["desk lamp", "LED lamp"]),
    "pulse_band": (["Pulse fitness band", "Pulse band", "Pulse 3 tracker"], ["fitness tracker", "fitness band"]),
    "breeze_purifier": (["Breeze air purifier", "Breeze purifier", "Breeze 300"], ["air purifier", "purifier"]),
    "tempo_kettle": (
        ["Tempo kettle", "Tempo electric kettle", "Tempo gooseneck kettle"],
        ["electric kettle", "kettle"],
    ),
    "gift_card": (["Brightnest gift card", "e-gift card"], ["gift card", "gift voucher"]),
}

FIRST = [
    "Maria",
    "Tom",
    "Aisha",
    "Kenji",
    "Lucas",
    "Priya",
    "Olga",
    "Daniel",
    "Fatima",
    "Chen",
    "Sophie",
    "Mateus",
    "Grace",
    "Ahmed",
    "Ingrid",
    "Raj",
    "Emily",
    "Tunde",
    "Marco",
    "Hannah",
    "Jorge",
    "Leila",
    "Sam",
    "Yuki",
    "Nora",
    "Pavel",
    "Bea",
    "Kwame",
    "Lena",
    "Diego",
    "José",
    "Zoë",
    "Siobhan",
    "Arjun",
    "Mei",
    "Oskar",
]
LAST = [
    "Lopez",
    "Becker",
    "Okafor",
    "Tanaka",
    "Silva",
    "Sharma",
    "Ivanova",
    "Murphy",
    "Haddad",
    "Wang",
    "Martin",
    "Costa",
    "Nguyen",
    "Hassan",
    "Larsen",
    "Patel",
    "Clarke",
    "Adeyemi",
    "Rossi",
    "Schmidt",
    "Ortiz",
    "Karimi",
    "Novak",
    "Mensah",
    "Dubois",
    "O'Neill",
    "Van Dijk",
]
AGENTS = ["Jordan", "Alex", "Mia", "Chris", "Robin", "Taylor"]
RELATIVES = ["sister", "brother", "mum", "dad", "wife", "husband", "partner", "son", "daughter", "flatmate"]
CARRIERS = ["UPS", "DHL", "FedEx", "Royal Mail", "DPD", "USPS"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
STREETS = ["Elm Street", "King St", "Harbour Road", "Station Road", "Oak Avenue", "Queen St W", "Mill Lane"]
CITIES = ["Leeds", "Toronto", "Austin", "Cork", "Melbourne", "Denver", "Porto", "Rotterdam", "Calgary"]
PRICES = [
    14.99,
    19.99,
    24.5,
    29,
    29.99,
    34.99,
    39,
    44.95,
    49.99,
    59,
    59.99,
    69.99,
    79,
    89.99,
    99,
    119.99,
    129,
    149.99,
    199,
    249.99,
    329,
    1188,
]

# --------------------------------------------------------------------------------------------
# Slot values


def digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def order_number(rng: random.Random) -> str:
    return f"BN-{digits(rng, 6)}" if rng.random() < 0.82 else f"W{digits(rng, 7)}"


def tracking_number(rng: random.Random) -> str:
    return rng.choice(
        [
            "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXY") for _ in range(16)),
            digits(rng, 12),
            "JD0146" + digits(rng, 10),
            "RM" + digits(rng, 9) + "GB",
        ]
    )


def money(rng: random.Random, value: float) -> str:
    """How a customer writes an amount: $49.99, 49.99 USD, €39, £24.50, $1,188.00, ..."""
    whole = float(value).is_integer()
    r = rng.random()
    if value >= 1000:
        body = f"{value:,.2f}" if rng.random() < 0.6 else f"{int(value):,}"
    elif whole:
        body = str(int(value)) if r < 0.6 else f"{value:.2f}"
    else:
        body = f"{value:.2f}"
    c = rng.random()
    if c < 0.62:
        return "$" + body
    if c < 0.74:
        return "€" + body
    if c < 0.86:
        return "£" + body
    return body + rng.choice([" USD", " EUR", " dollars"])


def date(rng: random.Random) -> str:
    d = rng.randint(1, 28)
    return rng.choice(
        [
            f"{rng.choice(MONTHS)} {d}",
            f"the {d}{'th' if 10 <= d <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th')}",
            rng.choice(DAYS),
            "last week",
            f"{d:02d}/{rng.randint(1, 12):02d}",
            "two weeks ago",
        ]
    )


def mention(rng: random.Random, product: str) -> str:
    specific, generic = MENTIONS[product]
    if rng.random() < 0.72:
        return rng.choice(["the ", "my ", "the ", "a ", ""]) + rng.choice(specific)
    return rng.choice(["the ", "my ", "the "]) + rng.choice(generic)


# --------------------------------------------------------------------------------------------
# Phrasings. {P}: the product as mentioned ("the item" when none is named); {O}: the order
# ("order BN-123456" or "my order"); {A}: the amount; {D}: a date; {T}: a tracking number.

CORES = {
    "refund_request": [
        "I'd like a refund for {P} from {O}.",
        "Please refund {O}, {P} stopped working after two days.",
        "I want my money back for {P}. It's nothing like the photos.",
        "Can I get a refund on {P}? I changed my mind and it's still sealed.",
        "{P} arrived damaged and I'd rather have a refund than a replacement. It was {O}.",
        "Requesting a full refund for {O}. {P} never worked properly.",
        "i sent {P} back {D} and still havent got my refund for {O}",
        "How long does a refund take? I returned {P} from {O} {D}.",
        "Please just refund me for {P}, I don't want another one.",
        "I returned {P} under your 30-day policy. Where is my refund for {O}?",
    ],
    "order_status": [
        "Where is {O}? I ordered {P} {D} and it still hasn't arrived.",
        "Can you tell me the status of {O}? The tracking page hasn't updated since {D}.",
        "{O} was supposed to be delivered {D} but nothing showed up.",
        "I'm still waiting on {P} from {O}. Any update on when it ships?",
        "my package with {P} hasnt moved in days. is {O} lost?",
        "Has {O} shipped yet? I'd like to know when {P} will get here.",
        "Tracking for {O} says delivered but there's nothing at my door.",
        "It's been two weeks since I placed {O} for {P}. When will it arrive?",
        "Any news on {O}? {P} is showing as 'processing' since {D}.",
    ],
    "cancel_order": [
        "Please cancel {O}. I ordered {P} by mistake.",
        "I need to cancel {O} before it ships.",
        "Can you cancel {P} from {O}? I found it cheaper elsewhere.",
        "cancel {O} pls, dont need {P} anymore",
        "I placed {O} {D} and would like to cancel it, it hasn't shipped yet.",
        "Is it too late to cancel {O}? I changed my mind about {P}.",
        "Please stop {O} from shipping, I ordered {P} twice by accident.",
    ],
    "damaged_item": [
        "{P} from {O} arrived with a cracked case. Can you send a replacement?",
        "{P} stopped charging after a week. What can I do?",
        "The box was crushed and {P} inside is broken. It was {O}.",
        "{P} makes a loud rattling noise since day one. I'd like it fixed or replaced.",
        "my {Pbare} wont turn on anymore, {O}. can you help",
        "{P} I got in {O} is faulty, the button doesn't respond. Please send a new one.",
        "One of the parts of {P} was missing and the lid is dented. {O}.",
        "{P} keeps disconnecting every few minutes. Is this a known defect? Bought it in {O}.",
    ],
    "wrong_item": [
        "I received the wrong item in {O}. I ordered {P} but got something else.",
        "{O} came with the wrong colour of {P}. I ordered black, got white.",
        "You sent me {P} instead of what I ordered. Order reference: {O}.",
        "The package for {O} had someone else's items in it, not {P}.",
        "wrong item!! ordered {P} and received a phone case. {O}",
        "I got two of the same thing and no {Pbare}. {O}.",
    ],
    "billing_issue": [
        "I was charged twice for {O}.",
        "There's a charge on my card from Brightnest that I don't recognise.",
        "My card was declined but the money still left my account. {O}.",
        "Can you send me a proper invoice for {O}? I need it for my expenses.",
        "The price at checkout for {P} was lower than what I was billed.",
        "Why did my statement show two payments for {O}?",
        "The discount code wasn't applied to {O} even though it showed at checkout.",
        "I think the VAT on {O} is wrong.",
    ],
    "change_address": [
        "I need to change the delivery address for {O}. I've moved to {ADDR}.",
        "Can you update the shipping address on {O}? The new one is {ADDR}.",
        "I typed the wrong street for {O}. It should be {ADDR}.",
        "Please send {O} to my office instead: {ADDR}.",
        "moving house {D}, can {O} go to {ADDR} instead?",
        "Is it possible to redirect {O} to {ADDR}? I won't be home.",
    ],
    "product_question": [
        "Does {P} work with an iPhone?",
        "Is {P} back in stock? I'd like to buy one for my mum.",
        "How do I reset {P} to factory settings?",
        "What's the warranty on {P}?",
        "Can {P} be used in the UK with the plug it comes with?",
        "Does {P} come with a charger or do I need to buy one?",
        "quick question, is {P} dishwasher safe?",
        "Do you sell replacement filters or parts for {P}?",
        "Is there an app for {P}, and does it work offline?",
    ],
}

AMOUNT_LINES = {
    "refund_request": [
        "I paid {A} for it.",
        "The refund should be {A}.",
        "That's {A} I'd like back.",
        "Please put the {A} back on my card.",
        "It cost me {A}.",
    ],
    "order_status": ["I even paid {A} for express shipping.", "I paid {A} and have nothing to show for it."],
    "cancel_order": ["The total was {A}.", "I don't want to be charged the {A}."],
    "damaged_item": ["For {A} I expected better.", "I paid {A} for this."],
    "wrong_item": ["I paid {A} for the right one.", "It was {A}, not cheap."],
    "billing_issue": [
        "The charge is {A}.",
        "I was billed {A}.",
        "It's {A}, taken on {D}.",
        "{A} came out of my account.",
        "The amount is {A}.",
    ],
    "change_address": ["I already paid {A} for delivery."],
    "product_question": ["Your site says {A}, is that right?", "Is it still {A}?", "I saw it listed at {A}."],
}

# Intents whose core sentences mention the product ({P} / {Pbare}) every time.
P_RATE = {
    "refund_request": 0.85,
    "order_status": 0.7,
    "cancel_order": 0.6,
    "damaged_item": 1.0,
    "wrong_item": 1.0,
    "billing_issue": 0.35,
    "change_address": 0.25,
    "product_question": 1.0,
}
O_RATE = {
    "refund_request": 0.7,
    "order_status": 0.9,
    "cancel_order": 0.85,
    "damaged_item": 0.7,
    "wrong_item": 0.85,
    "billing_issue": 0.6,
    "change_address": 0.9,
    "product_question": 0.1,
}
A_RATE = {
    "refund_request": 0.65,
    "order_status": 0.08,
    "cancel_order": 0.2,
    "damaged_item": 0.2,
    "wrong_item": 0.15,
    "billing_issue": 0.9,
    "change_address": 0.05,
    "product_question": 0.25,
}

GREETINGS = [
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hello Brightnest team,",
    "Dear Customer Service,",
    "Hey,",
    "Good morning,",
    "To whom it may concern,",
    "Hi support,",
    "hi",
]
CLOSERS = [
    "Thanks in advance.",
    "Appreciate your help.",
    "Looking forward to hearing from you.",
    "Thank you.",
    "Thanks!",
    "Let me know.",
    "Kind regards.",
]
HIGH = [
    "I need this sorted today.",
    "This is urgent!",
    "Please respond ASAP.",
    "It's a birthday present for {D} so I really need this quickly.",
    "This is the third time I'm writing about this.",
    "URGENT, please help.",
    "If I don't hear back by tomorrow I'll dispute the charge with my bank.",
    "I need an answer before Friday.",
    "PLEASE SORT THIS OUT IMMEDIATELY.",
]
LOW = [
    "No rush on this.",
    "Whenever you get a chance.",
    "Not urgent at all, just wondering.",
    "No hurry, take your time.",
    "Just curious, it's not urgent.",
    "No rush, whenever suits you.",
]
DISTRACTORS = [
    "I've been a customer since 2019.",
    "I bought 2 of them in total.",
    "My phone number is 555-{n4} if you need to call.",
    "The tracking number is {T}.",
    "Your agent {AGENT} said it would be sorted in 3-5 business days.",
    "I already tried resetting it 3 times.",
    "My case number from last time is {CASE}.",
    "It was for my {REL} {FIRST2}'s birthday.",
    "I live in {CITY}, so the {CARRIER} depot is near me.",
    "I left a 5-star review before this happened.",
    "The invoice number is INV-{n5}.",
    "{FIRST2} from your team was lovely on the phone.",
    "I've attached 3 photos.",
]
TYPOS = {
    "receive": "recieve",
    "received": "recieved",
    "definitely": "definately",
    "address": "adress",
    "package": "pakage",
    "please": "pls",
    "Please": "Pls",
    "because": "becuase",
    "thanks": "thx",
    "Thanks": "Thx",
    "weeks": "wks",
    "already": "allready",
    "anymore": "any more",
    "until": "untill",
}


def signature(rng: random.Random, full: str, first: str, style: float) -> tuple[str, str]:
    """(closing text, the name as the sender gives it)."""
    if style < 0.5:
        name = full
    else:
        name = first
    form = rng.choice(
        [
            "Thanks,\n{n}",
            "Best regards,\n{n}",
            "Cheers, {n}",
            "- {n}",
            "Kind regards,\n{n}",
            "Thank you,\n{n}",
            "{n}",
            "Regards, {n}",
            "Many thanks\n{n}",
        ]
    )
    return form.format(n=name), name


def compose(rng: random.Random, intent: str, ambiguous: str | None = None) -> dict:
    """One e-mail and its gold answer; `alternatives` hold a plausible mistake (or the other
    reading of an ambiguous e-mail)."""
    product = (
        rng.choice(PRODUCTS[:-1] if intent in ("damaged_item", "wrong_item") else PRODUCTS)
        if rng.random() < P_RATE[intent]
        else None
    )
    order = order_number(rng) if rng.random() < O_RATE[intent] else None
    value = rng.choice(PRICES) if rng.random() < A_RATE[intent] else None
    roll = rng.random()
    urgency = "high" if roll < 0.28 else "low" if roll < 0.42 else "normal"
    first, last = rng.choice(FIRST), rng.choice(LAST)
    full = f"{first} {last}"
    named = rng.random() < 0.8
    intro_named = named and rng.random() < 0.2

    slots = {
        "P": mention(rng, product) if product else rng.choice(["the item", "my order", "it", "the product"]),
        "Pbare": rng.choice(MENTIONS[product][0] + MENTIONS[product][1]) if product else "item",
        "O": ("order " + rng.choice(["", "", "#", "number "]) + order)
        if order
        else rng.choice(["my order", "my last order", "the order"]),
        "ON": (rng.choice(["", "#"]) + order) if order else "",
        "A": money(rng, value) if value is not None else "",
        "D": date(rng),
        "T": tracking_number(rng),
        "ADDR": f"{rng.randint(2, 480)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
        "AGENT": rng.choice(AGENTS),
        "CASE": "#" + digits(rng, 6),
        "REL": rng.choice(RELATIVES),
        "FIRST2": rng.choice([f for f in FIRST if f != first]),
        "CITY": rng.choice(CITIES),
        "CARRIER": rng.choice(CARRIERS),
        "n4": digits(rng, 4),
        "n5": digits(rng, 5),
    }
    if order and "#" in slots["O"]:
        slots["O"] = slots["O"].replace("order # ", "order #")
    gold = {
        "intent": intent,
        "order_id": order,
        "product": product,
        "urgency": urgency,
        "customer_name": None,
        "amount": float(value) if value is not None else None,
    }
    alternative: dict | None = None

    core = rng.choice(CORES[intent])
    if intent == "product_question" and order is not None:
        core += " I bought it in {O}."
    body = [core]
    if value is not None:
        body.append(rng.choice(AMOUNT_LINES[intent]))

    if ambiguous == "intent":
        pairs = {
            "damaged_item": (
                "{P} arrived with the handle snapped off. Honestly I'm not sure if I want a new one or my money back, what are my options?",
                "refund_request",
            ),
            "refund_request": (
                "I was charged for {O} even though I cancelled it the same day. I want that money back.",
                "billing_issue",
            ),
            "change_address": (
                "I moved last week and {O} is going to my old flat. If you can't change the address, just cancel it.",
                "cancel_order",
            ),
            "wrong_item": (
                "Tracking says {O} was delivered, but the box had someone else's order in it.",
                "order_status",
            ),
            "product_question": (
                "Is it normal that {P} gets really hot after an hour? Not sure if mine is faulty.",
                "damaged_item",
            ),
            "cancel_order": (
                "{O} still hasn't shipped after ten days. At this point please just cancel it.",
                "order_status",
            ),
            "billing_issue": (
                "I was charged the full price for {P} but the sale price was on the page. Can you look into it?",
                "refund_request",
            ),
            "order_status": ("Where is {O}? If it's lost I suppose I'll need a refund.", "refund_request"),
        }
        text, other = pairs[intent]
        body = [text] + body[1:]
        alternative = dict(gold, intent=other)
    elif ambiguous == "product" and product and product != "gift_card":
        second = rng.choice([p for p in PRODUCTS[:-1] if p != product])
        body.insert(
            0,
            f"I ordered {mention(rng, second)} and {mention(rng, product)} together. The {MENTIONS[second][1][0]} arrived fine.",
        )
        alternative = dict(gold, product=second)
    elif ambiguous == "amount":
        paid = rng.choice([p for p in PRICES if p > 40])
        diff = round(paid * rng.choice([0.1, 0.2, 0.25]), 2)
        gold["amount"], gold["intent"] = diff, "refund_request"
        body = [
            f"I paid {money(rng, paid)} for {slots['P']} and a week later it dropped in price. "
            f"Can I get the {money(rng, diff)} difference refunded?"
        ]
        intent = "refund_request"
        alternative = dict(gold, amount=float(paid))
    elif ambiguous == "urgency":
        gold["urgency"] = "normal"
        body.append(
            rng.choice(
                [
                    "No rush really, but I do need it before my trip on {D}.",
                    "Not urgent, but could you reply today if possible?",
                    "No hurry, though it is a gift for next week.",
                ]
            )
        )
        alternative = dict(gold, urgency=rng.choice(["high", "low"]))
        urgency = None
    elif ambiguous == "name":
        named, intro_named = True, False
        other = f"{slots['FIRST2']} {rng.choice(LAST)}"
        body.insert(0, f"My {rng.choice(RELATIVES)} {other} placed this order on my behalf.")
        alternative = dict(gold, customer_name=other)
    elif ambiguous == "order":
        gold["order_id"] = None
        slots["O"] = "my order"
        body.append(f"The only number I have on the receipt is {slots['T']}.")
        alternative = dict(gold, order_id=slots["T"])
    if ambiguous and alternative is None:  # the requested kind did not apply: a clear row instead
        ambiguous = None

    # Every gold value must be in the text: name the order and the product where the
    # phrasing did not.
    joined = " ".join(body)
    if gold["order_id"] and "{O}" not in joined:
        body.insert(
            1,
            rng.choice(
                [
                    "It was {O}.",
                    "Order number: {ON}.",
                    "(order {ON})",
                    "My order number is {ON}.",
                    "Ref: {ON}.",
                    "This is about {O}.",
                ]
            ),
        )
    if gold["product"] and "{P}" not in joined and "{Pbare}" not in joined:
        body.insert(1, rng.choice(["It was for {P}.", "The item was {P}.", "This is about {P}.", "Product: {Pbare}."]))
    if urgency == "high":
        body.append(rng.choice(HIGH))
    elif urgency == "low":
        body.append(rng.choice(LOW))
    if rng.random() < 0.45:
        body.insert(rng.randint(1, len(body)), rng.choice(DISTRACTORS))

    parts: list[str] = []
    if rng.random() < 0.7:
        parts.append(rng.choice(GREETINGS))
    if intro_named:
        name = full if rng.random() < 0.6 else first
        parts.append(
            rng.choice(
                ["My name is {n} and I'm writing about my order.", "This is {n} here.", "I'm {n}, a customer of yours."]
            ).format(n=name)
        )
        gold["customer_name"] = name
    parts.append(" ".join(body))
    if rng.random() < 0.5:
        parts.append(rng.choice(CLOSERS))
    if named and not intro_named:
        sign, name = signature(rng, full, first, rng.random())
        parts.append(sign)
        gold["customer_name"] = name
    elif rng.random() < 0.3:
        parts.append(rng.choice(["Sent from my iPhone", "Sent from my phone", "Thanks", "Cheers"]))

    sep = rng.choice(["\n\n", "\n\n", "\n", " "])
    text = sep.join(parts)
    text = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], text)
    text = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], text)  # slots inside inserted phrasings
    text = text[0].upper() + text[1:]

    # Tone: lowercase, typos, shorthand. Gold values keep the text's spelling.
    tone = rng.random()
    if tone < 0.1:
        text = text.lower()
        for key in ("order_id", "customer_name"):
            if gold[key]:
                gold[key] = gold[key].lower()
        if alternative:
            for key in ("order_id", "customer_name"):
                if alternative.get(key):
                    alternative[key] = alternative[key].lower()
    elif tone < 0.22:
        for right, wrong in TYPOS.items():
            if rng.random() < 0.6:
                text = re.sub(rf"\b{right}\b", wrong, text)
    if alternative is not None:  # the other reading differs from the gold in its one field only
        alternative = {k: (alternative[k] if k in _CHANGED[ambiguous] else gold[k]) for k in gold}
    else:
        alternative = plausible_mistake(rng, gold, slots, first)
    return {
        "text": text,
        "label": gold,
        "alternatives": [alternative] if alternative else [],
        "ambiguous": ambiguous is not None,
    }


_CHANGED = {
    "intent": {"intent"},
    "product": {"product"},
    "amount": {"amount"},
    "urgency": {"urgency"},
    "name": {"customer_name"},
    "order": {"order_id"},
}

CONFUSABLE = {
    "refund_request": "damaged_item",
    "damaged_item": "refund_request",
    "wrong_item": "damaged_item",
    "order_status": "cancel_order",
    "cancel_order": "refund_request",
    "billing_issue": "refund_request",
    "change_address": "order_status",
    "product_question": "damaged_item",
}


def plausible_mistake(rng: random.Random, gold: dict, slots: dict, first: str) -> dict | None:
    """What a good model gets wrong on a clear e-mail; None a quarter of the time (an erring
    simulated teacher then drops a field, which the filter catches as a schema mismatch)."""
    if rng.random() < 0.25:
        return None
    kinds = ["urgency", "intent", "intent"]
    if gold["customer_name"] and " " in gold["customer_name"]:
        kinds.append("name")
    if gold["order_id"]:
        kinds.append("order")
    if gold["amount"] is not None:
        kinds.append("amount")
    if gold["product"]:
        kinds.append("product")
    kind = rng.choice(kinds)
    alt = dict(gold)
    if kind == "urgency":
        alt["urgency"] = {"high": "normal", "low": "normal", "normal": rng.choice(["high", "low"])}[gold["urgency"]]
    elif kind == "intent":
        alt["intent"] = CONFUSABLE[gold["intent"]]
    elif kind == "name":
        alt["customer_name"] = gold["customer_name"].split(" ")[0]
    elif kind == "order":
        alt["order_id"] = slots["T"] if rng.random() < 0.5 else None
    elif kind == "amount":
        alt["amount"] = None
    else:
        alt["product"] = None
    return alt


# --------------------------------------------------------------------------------------------


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def near_duplicate(text: str, rng: random.Random) -> str:
    """The same e-mail sent twice: whitespace or case changed (equal after normalisation)."""
    kind = rng.choice(["case", "space", "both"])
    if kind in ("case", "both"):
        text = text.lower()
    if kind in ("space", "both"):
        text = "  " + text.replace(" ", "  ", 3) + " "
    return text.strip(" ") if kind == "case" else text


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()

    def make(n: int) -> list[dict]:
        rows: list[dict] = []
        n_ambig = round(n * AMBIGUOUS_RATE)
        kinds = ["intent", "product", "amount", "urgency", "name", "order"]
        plan = [kinds[i % len(kinds)] for i in range(n_ambig)] + [None] * (n - n_ambig)
        rng.shuffle(plan)
        for i, kind in enumerate(plan):
            while True:
                intent = INTENTS[(i + rng.randint(0, 1)) % len(INTENTS)] if rng.random() < 0.7 else rng.choice(INTENTS)
                row = compose(rng, intent, kind)
                if kind is not None and not row["ambiguous"]:
                    continue  # that kind did not apply to this draw: draw again
                key = norm(row["text"])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
                    break
        return rows

    inputs = make(N_INPUT_UNIQUE)
    heldout = make(N_HELDOUT)
    for _ in range(N_DUPLICATES):
        i = rng.randrange(len(inputs))
        while inputs[i].get("duplicate"):
            i = rng.randrange(len(inputs))
        dup = dict(inputs[i], text=near_duplicate(inputs[i]["text"], rng), duplicate=True)
        if dup["text"] == dup["text"].lower():  # lowercased: gold spellings follow the text
            dup["label"] = {
                k: (v.lower() if k in ("order_id", "customer_name") and isinstance(v, str) else v)
                for k, v in dup["label"].items()
            }
            dup["alternatives"] = [
                {
                    k: (v.lower() if k in ("order_id", "customer_name") and isinstance(v, str) else v)
                    for k, v in a.items()
                }
                for a in dup["alternatives"]
            ]
        inputs.insert(rng.randint(i + 1, len(inputs)), dup)

    OUT.mkdir(parents=True, exist_ok=True)

    def dump(path: Path, rows: list[dict]) -> None:
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    dump(OUT / "inputs.jsonl", [{"id": f"e{i:04d}", "text": r["text"]} for i, r in enumerate(inputs, 1)])
    dump(
        OUT / "heldout.jsonl",
        [{"id": f"h{i:04d}", "text": r["text"], "label": r["label"]} for i, r in enumerate(heldout, 1)],
    )
    dump(
        OUT / "teacher_key.jsonl",
        [{"text": r["text"], "label": r["label"], "alternatives": r["alternatives"]} for r in inputs + heldout],
    )

    # ---------------------------------------------------------------- constraints
    from_text = lambda v, t: v is None or v.casefold() in " ".join(t.split()).casefold()  # noqa: E731
    for r in inputs + heldout:
        g, t = r["label"], r["text"]
        assert list(g) == SCHEMA["required"], g
        assert g["intent"] in INTENTS and g["urgency"] in URGENCY and g["product"] in PRODUCTS + [None], g
        assert from_text(g["order_id"], t) and from_text(g["customer_name"], t), (g, t)
        assert "{" not in t and "}" not in t, t
        numbers = {float(m.replace(",", "")) for m in re.findall(r"\d[\d,]*(?:\.\d+)?", t)}
        assert g["amount"] is None or g["amount"] in numbers, (g, t)
        for a in r["alternatives"]:
            assert list(a) == list(g) and a != g, (a, g)
    assert len(inputs) == N_INPUT_UNIQUE + N_DUPLICATES and len(heldout) == N_HELDOUT
    assert not {norm(r["text"]) for r in heldout} & {norm(r["text"]) for r in inputs}
    keys: dict[str, dict] = {}
    for r in inputs + heldout:  # the simulated teacher keys by whitespace-collapsed text: equal keys agree
        assert keys.setdefault(" ".join(r["text"].split()), r["label"]) == r["label"]
    size = sum((OUT / f).stat().st_size for f in ("inputs.jsonl", "heldout.jsonl", "teacher_key.jsonl"))
    assert size < 1_000_000, size
    n_amb_in, n_amb_ho = sum(r["ambiguous"] for r in inputs), sum(r["ambiguous"] for r in heldout)
    print(
        f"inputs: {len(inputs)} ({n_amb_in} ambiguous, {N_DUPLICATES} duplicates); heldout: {len(heldout)} "
        f"({n_amb_ho} ambiguous); teacher_key: {len(inputs) + len(heldout)} lines; {size / 1e3:.0f} kB"
    )
    for field in ("intent", "product", "urgency"):
        print(
            f"  {field}: " + ", ".join(f"{k} {v}" for k, v in Counter(r["label"][field] for r in heldout).most_common())
        )
    for field in ("order_id", "customer_name", "amount"):
        present = sum(r["label"][field] is not None for r in heldout)
        print(f"  {field}: present in {present} of {len(heldout)} held-out rows")


if __name__ == "__main__":
    main()
