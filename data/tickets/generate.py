#!/usr/bin/env python3
"""Generate the distillbuild quickstart dataset: synthetic SaaS customer-support tickets.

Run from the repository root:

    .venv/bin/python data/tickets/generate.py

It rewrites, byte-identically on every run (fixed seed; the standard library, then the
project's own scrubber):

    data/tickets/inputs.jsonl       900 unlabelled tickets        {"id", "text"}
    data/tickets/teacher_key.jsonl  answer key for the simulated teacher, one line per
                                    input and per held-out ticket {"text", "label", "alternatives"}
    data/tickets/heldout.jsonl      240 gold-labelled tickets     {"id", "text", "label"}
    data/tickets/README.md          description, per-category counts, provenance, licence

Every phrasing below was written by hand for this project; no existing dataset was copied.
Tickets are assembled from per-category core phrasings with slots (amounts, plans, order
numbers, browsers, integrations, ...) plus shared greetings, context sentences, closers and
sign-offs, then varied in tone (lowercase, dropped apostrophes, typos, ALL-CAPS fragments,
rare emoji). About 8% are deliberately ambiguous, and 12 inputs are deliberate duplicates of
other inputs (exact, or differing only in case / whitespace / punctuation).
The assertion block at the end of main() enforces the dataset's constraints.

Tickets carry names, e-mail addresses, street addresses and account numbers, as real ones do;
the files are written with them masked by the quickstart's `data.scrub` (distill.yaml), as
`distill scrub` masks a file, so `distill scan data/tickets/*.jsonl` finds nothing.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

SEED = 20240611
OUT_DIR = Path(__file__).resolve().parent

LABELS = [
    "billing",
    "refund",
    "login",
    "bug",
    "feature_request",
    "shipping",
    "cancellation",
    "account_update",
    "security",
    "performance",
    "integration",
    "how_to",
]

DEFINITIONS = {
    "billing": "charges, invoices, prices, taxes, payment methods and failed payments (no request for money back)",
    "refund": "the customer wants money returned, or asks about a refund already requested",
    "login": "cannot sign in: passwords, resets, 2FA codes, SSO, lockouts, sessions",
    "bug": "something in the product behaves wrongly: errors, crashes, wrong data, broken buttons",
    "feature_request": "asks for a capability the product does not have yet",
    "shipping": "physical add-ons (card readers, printers, security keys, kits): delivery, tracking, addresses, customs",
    "cancellation": "wants to end, not renew, pause or close a subscription, workspace or account",
    "account_update": "change account or profile details: email, names, owner, roles, plan, address, time zone",
    "security": "suspicious access, breaches, leaked keys, compliance documents, security settings",
    "performance": "the product works but is slow, laggy, freezing or timing out",
    "integration": "connections to other tools and the API: Slack, Salesforce, Zapier, Shopify, webhooks, ...",
    "how_to": "asks how to do something the product already supports",
}

N_INPUT_UNIQUE = 888
N_DUPLICATES = 12
N_INPUTS = N_INPUT_UNIQUE + N_DUPLICATES  # 900
N_HELDOUT = 240
N_AMBIG_INPUTS = 72  # ~8% of the unique inputs
N_AMBIG_HELDOUT = 20  # ~8% of held-out

# --------------------------------------------------------------------------------------
# Slot values
# --------------------------------------------------------------------------------------

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
]
AGENTS = ["Sam", "Priya", "Jordan", "Alex", "Mia", "Chris"]
COMPANIES = [
    "Northwind Logistics",
    "Bluefin Dental",
    "Harbor & Pine Studio",
    "Kestrel Analytics",
    "Maple Street Bakery",
    "Orbit Fitness",
    "Greenleaf Law",
    "Alder Construction",
    "Tidewater Realty",
    "Lumen Education",
    "Copperline Media",
    "Summit Physio",
    "Redwood Accounting",
    "Fieldstone Farms",
    "Nimbus Travel",
    "Quarry Lane Architects",
]
PLANS = ["Starter", "Pro", "Business", "Team", "Enterprise", "Basic", "Growth", "Plus"]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge", "Brave", "Opera"]
OSES = ["Windows 11", "Windows 10", "macOS Sonoma", "macOS Ventura", "Ubuntu 22.04", "ChromeOS", "iOS 17", "Android 14"]
DEVICES = [
    "iPhone 13",
    "iPhone 15",
    "Pixel 7",
    "Samsung Galaxy S22",
    "iPad Air",
    "Galaxy Tab",
    "an older Android phone",
    "my work iPhone",
]
INTEGRATIONS = [
    "Slack",
    "Salesforce",
    "Zapier",
    "Shopify",
    "HubSpot",
    "Google Sheets",
    "Microsoft Teams",
    "Jira",
    "QuickBooks",
    "Zendesk",
    "Stripe",
    "Mailchimp",
    "Google Calendar",
    "Outlook",
    "Xero",
    "Pipedrive",
]
NEW_INTEGRATIONS = [
    "Notion",
    "Asana",
    "Monday.com",
    "Airtable",
    "Trello",
    "Linear",
    "ClickUp",
    "Freshdesk",
    "Intercom",
    "Odoo",
]
IDPS = ["Okta", "Azure AD", "Google Workspace", "OneLogin", "JumpCloud"]
AREAS = [
    "dashboard",
    "reports page",
    "calendar",
    "contacts list",
    "projects view",
    "task board",
    "analytics tab",
    "inbox",
    "timesheets page",
    "forms builder",
    "activity feed",
    "admin console",
    "invoices page",
    "client portal",
]
HARDWARE = [
    "card reader",
    "receipt printer",
    "barcode scanner",
    "security key",
    "label printer",
    "cash drawer",
    "desk phone",
    "starter kit",
]
CARRIERS = ["UPS", "FedEx", "DHL", "USPS", "Royal Mail", "Canada Post", "DPD", "Australia Post"]
COUNTRIES = [
    "Brazil",
    "India",
    "Germany",
    "Nigeria",
    "Canada",
    "Australia",
    "Poland",
    "Mexico",
    "Japan",
    "Kenya",
    "the Philippines",
    "Norway",
    "Portugal",
    "Vietnam",
]
CITIES = [
    "Austin",
    "Leeds",
    "Toronto",
    "Lyon",
    "Melbourne",
    "Denver",
    "Manchester",
    "Rotterdam",
    "Porto",
    "Nairobi",
    "Calgary",
    "Cork",
]
STREETS = [
    "Elm Street",
    "King St",
    "Harbour Road",
    "Rua Augusta",
    "Main St",
    "Station Road",
    "Oak Avenue",
    "Queen St W",
]
REGIONS = [
    "Singapore",
    "Brazil",
    "South Africa",
    "our Sydney office",
    "India",
    "Eastern Europe",
    "our Manila team",
    "New Zealand",
]
TZS = ["Sydney", "UTC+5:30", "Pacific time", "Tokyo", "Auckland", "Central European time"]
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
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
ERRORS = [
    "Error 500",
    "error 403",
    "ERR_CONNECTION_RESET",
    "'Something went wrong, please try again'",
    "code E1042",
    "'Unexpected token < in JSON'",
    "'Request failed with status code 502'",
    "'null is not an object'",
    "error 0x8004",
    "'Invalid request (422)'",
]
PROMOS = ["SPRING20", "WELCOME15", "BF2024", "PARTNER10", "SAVE25", "NONPROFIT30"]
USERNAMES = ["jsmith88", "coolcat_22", "mark.t", "dev_ops_1", "bakerybob", "xx_lena_xx"]
TIMES = ["3am", "11:40pm", "6:15 this morning", "2pm", "just after midnight", "4:30am"]
EMAIL_DOMAINS = ["example.com", "example.org", "mail.example", "example.net"]


_AMOUNTS = [9, 12, 19, 24, 29, 39, 49, 59, 79, 99, 129, 149, 199, 249, 299, 499, 588, 948, 1188, 2400]


def _money(rng: random.Random, above: str | None = None) -> str:
    """A price like "$49.00"; with `above`, a larger one in the same currency."""
    if above is None:
        value = rng.choice(_AMOUNTS)
        r = rng.random()
        currency = "$" if r < 0.70 else "€" if r < 0.82 else "£" if r < 0.94 else rng.choice([" USD", " EUR"])
    else:
        currency = re.sub(r"[\d.,]", "", above)
        base = float(re.sub(r"[^\d.]", "", above))
        value = rng.choice([a for a in _AMOUNTS if a > base] or [int(base * 2)])
    cents = rng.choice([".00", ".00", ".99", ""]) if value < 1000 else rng.choice([".00", ""])
    body = f"{value:,}{cents}"
    return body + currency if currency.startswith(" ") else currency + body


def _date(rng: random.Random) -> str:
    m, d = rng.choice(MONTHS), rng.randint(1, 28)
    suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return rng.choice(
        [
            f"{m} {d}",
            f"{d} {m}",
            f"the {d}{suffix}",
            rng.choice(WEEKDAYS),
            f"{d:02d}/{rng.randint(1, 12):02d}",
            f"2024-{rng.randint(1, 12):02d}-{d:02d}",
            f"{m} {d}{suffix}",
        ]
    )


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(n))


def _slug(company: str) -> str:
    return re.sub(r"[^a-z]+", "-", company.lower().replace("&", "and")).strip("-")


SLOTS = {
    "amount": _money,
    "date": _date,
    "month": lambda r: r.choice(MONTHS),
    "year": lambda r: r.choice(["2022", "2023", "2024"]),
    "days": lambda r: r.choice(["3", "4", "5", "6", "8", "10", "12", "14", "three", "five", "ten"]),
    "nbig": lambda r: str(r.choice([12, 15, 18, 20, 25, 30, 40, 45, 60, 80, 120, 250])),
    "nsmall": lambda r: str(r.randint(2, 9)),
    "months": lambda r: r.choice(["2", "3", "4", "6", "8", "10", "18"]),
    "teamsize": lambda r: r.choice(["3", "4", "5", "6", "8", "10", "12"]),
    "plan": lambda r: r.choice(PLANS),
    "order": lambda r: r.choice(["#", "#", "SO-", "ORD-", ""]) + _digits(r, r.choice([5, 6, 8])),
    "tracking": lambda r: r.choice(
        ["1Z" + _alnum(r, 16), _digits(r, 12), "JD0146" + _digits(r, 12), "LX" + _digits(r, 9) + "GB"]
    ),
    "invoice": lambda r: r.choice([f"INV-{r.choice(['2023', '2024'])}-{_digits(r, 4)}", "#" + _digits(r, 6)]),
    "case": lambda r: "#" + _digits(r, 6),
    "card4": lambda r: _digits(r, 4),
    "promo": lambda r: r.choice(PROMOS),
    "po": lambda r: "PO-" + _digits(r, 5),
    "acct": lambda r: r.choice(["ACC-" + _digits(r, 6), _digits(r, 8)]),
    "company": lambda r: r.choice(COMPANIES),
    "workspace": lambda r: _slug(r.choice(COMPANIES)) + r.choice(["", "-ops", "-team", "-hq"]),
    "email": lambda r: f"{r.choice(FIRST).lower()}.{r.choice(LAST).lower()}@{r.choice(EMAIL_DOMAINS)}",
    "colleague": lambda r: r.choice(FIRST),
    "user": lambda r: r.choice(USERNAMES),
    "browser": lambda r: r.choice(BROWSERS),
    "os": lambda r: r.choice(OSES),
    "device": lambda r: r.choice(DEVICES),
    "integration": lambda r: r.choice(INTEGRATIONS),
    "newintegration": lambda r: r.choice(NEW_INTEGRATIONS),
    "idp": lambda r: r.choice(IDPS),
    "area": lambda r: r.choice(AREAS),
    "hardware": lambda r: r.choice(HARDWARE),
    "carrier": lambda r: r.choice(CARRIERS),
    "country": lambda r: r.choice(COUNTRIES),
    "city": lambda r: r.choice(CITIES),
    "address": lambda r: f"{r.randint(2, 480)} {r.choice(STREETS)}, {r.choice(CITIES)}",
    "region": lambda r: r.choice(REGIONS),
    "tz": lambda r: r.choice(TZS),
    "error": lambda r: r.choice(ERRORS),
    "size": lambda r: str(r.choice([20, 25, 50, 100, 250])),
    "ram": lambda r: str(r.choice([2, 3, 4, 6])),
    "seconds": lambda r: str(r.choice([20, 30, 40, 45, 60, 90])),
    "minutes": lambda r: str(r.choice([15, 20, 30, 40])),
    "time": lambda r: r.choice(TIMES),
    "agent": lambda r: r.choice(AGENTS),
    "first": lambda r: r.choice(FIRST),
    "full": lambda r: f"{r.choice(FIRST)} {r.choice(LAST)}",
}

_SLOT_RE = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: random.Random, values: dict[str, str] | None = None) -> str:
    """Fill {slot} placeholders; {x2} is drawn like {x} but differs from it.

    Pass one `values` dict for every sentence of a ticket so that a slot keeps its value
    (the order number in the request matches the one in "The order number is ...").
    """
    values = {} if values is None else values

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            base = key[:-1] if key.endswith("2") else key
            value = SLOTS[base](rng)
            if base != key and base in values:
                if base == "amount":  # same currency, larger amount ("went up from X to Y")
                    value = _money(rng, above=values[base])
                while value == values[base]:
                    value = SLOTS[base](rng)
            values[key] = value
        return values[key]

    return _SLOT_RE.sub(sub, template)


# --------------------------------------------------------------------------------------
# Hand-written phrasings. A core entry is either "template" or ("template", [alternatives]),
# the latter overriding the category's default confusable labels for that phrasing.
# --------------------------------------------------------------------------------------

CORE: dict[str, list] = {
    "billing": [
        "I was charged {amount} twice on {date} for the same {plan} subscription.",
        "Why did our invoice go up from {amount} to {amount2} this month? Nobody told us about a price change.",
        "Can you send me an invoice with our company VAT number on it? Accounts payable won't process it otherwise.",
        "My card ending in {card4} was declined but my bank says there's no problem on their side.",
        (
            "We want to switch from monthly to annual payment on the {plan} plan. How does the proration work?",
            ["account_update", "how_to"],
        ),
        "There's a charge for {nbig} seats but we only have {nsmall} active users.",
        "Invoice {invoice} includes sales tax but we're tax exempt. I sent the certificate back in {month}.",
        ("How do I change the credit card that gets charged each month?", ["account_update", "how_to"]),
        "I got an email saying the payment failed and the account will be suspended in 3 days. The card is valid!",
        ("Where can I download past invoices? I need everything from {year} for our accountant.", ["how_to"]),
        "Is there a discount for nonprofits? We're a registered charity and {amount} a month is a lot for us.",
        "we were charged in USD but our contract says EUR, please correct the invoice",
        "The receipt doesn't show our company address, can it be reissued?",
        "I upgraded to {plan} mid-cycle and was billed for the full month instead of the prorated amount.",
        "Your pricing page says {amount} per user but I'm paying more than that per user. Can someone explain the math?",
        "Hello, we would like to pay by bank transfer instead of card, is this possible for annual plan?",
        "There is a pending authorization of {amount} on my card from you, but I didn't buy anything today.",
        "The promo code {promo} was accepted at checkout but the discount isn't on the invoice.",
        (
            "Our trial ended and it charged me straight away, I thought I'd get a reminder first.",
            ["refund", "cancellation"],
        ),
        "Please add our PO number {po} to future invoices, finance rejects them without it.",
        "what is this charge for {amount} labelled 'add-on usage'?",
        "We got two separate invoices for the same period, {invoice} and {invoice2}. Which one do we pay?",
        "Can we be invoiced quarterly instead of monthly?",
        "My bank statement shows a foreign transaction fee on your charge. Can you bill us in local currency?",
        ("I'm paying for the {plan} plan but the account still says Starter.", ["account_update", "bug"]),
        "Who do I talk to about a custom quote for {nbig} seats? The per-seat price doesn't work for us at that size.",
        "The auto-renewal charged the new price. I thought we'd locked in {amount} for two years.",
        (
            "Our card on file expired and the form keeps rejecting the new one, so this month's payment bounced.",
            ["account_update", "bug"],
        ),
        "Dear team, the amount taken from my account is different than the amount in the invoice. Please explain me.",
    ],
    "refund": [
        "I'd like my money back for the last charge of {amount}, we haven't used the account at all this month.",
        (
            "You charged me {amount} after the trial and I never meant to continue. Can you reverse it?",
            ["billing", "cancellation"],
        ),
        "Please reimburse the duplicate payment from {date}.",
        "How long does it take for the money to show up on my card? Your team approved the refund {days} days ago.",
        "I asked for a refund on {date} (case {case}) and haven't heard anything since.",
        (
            "The annual plan renewed automatically for {amount}. We don't need it anymore, please credit it back.",
            ["cancellation", "billing"],
        ),
        "I bought the wrong plan by mistake, {plan} instead of {plan2}. Can I get the difference back?",
        "Is the 30-day money-back guarantee still a thing? I signed up {days} days ago and it's not what we need.",
        ("The {hardware} arrived broken. I don't want a replacement, I want my money back.", ["shipping"]),
        "Can the unused months on our annual subscription be paid back pro rata?",
        "I was promised a credit of {amount} by your sales rep because of last month's outage. Where is it?",
        "The reimbursement went to a card I cancelled. Can you send it another way?",
        "An employee signed up with the company card without permission. We want the {amount} returned.",
        (
            "Your service was down most of {date} and we lost a day of work. We expect compensation for that month.",
            ["billing", "performance"],
        ),
        "I got an email saying my money was returned but my bank says nothing came in.",
        "Hello, I want to ask for return of my payment, the app is not working for my needs.",
        (
            "We paid for {nbig} seats and removed {nsmall} of them the next day. Can the unused seats be credited?",
            ["billing"],
        ),
        "Could you put the amount back as account credit instead? We plan to come back next quarter.",
        "I was told it would take 5-10 business days to get the money back and it's been three weeks.",
        "Charged {amount} for an add-on I never switched on. I want that returned.",
        ("Please reverse the charge from {date} and send the money back to the original payment method.", ["billing"]),
        "Our company policy needs written confirmation when money is returned. Could you send that once it's done?",
        "The amount you sent back is wrong: I got {amount} back but was charged {amount2}.",
        "my kid bought the upgrade on my phone, can i get that reversed",
        "Is it possible to be reimbursed for the month we couldn't use because of the migration problems?",
        "If I don't get the {amount} back by Friday I'm filing a chargeback with my bank.",
        "We prepaid for a year and your company changed the product completely. I think a partial refund is fair.",
        "Please return the {amount} you took on {date}, I never authorised that payment.",
    ],
    "login": [
        "I can't sign in, it says my password is incorrect but I just reset it.",
        "The password reset email never arrives. I checked spam too.",
        ("Every time I enter my password it sends me back to the sign-in page.", ["bug"]),
        ("My 2FA codes stopped working after I got a new phone.", ["security"]),
        ("Signing in through {idp} gives an error: {error}.", ["integration", "bug"]),
        ("I'm locked out after too many attempts. How long until I can try again?", ["security"]),
        "The magic link in the email says it has expired as soon as I click it.",
        ("Can't get into my account on {browser}, it works on my phone though.", ["bug"]),
        ("I don't remember which email I used to sign up, how can I get back in?", ["account_update"]),
        "Sign in with Google just spins forever.",
        "it keeps saying 'session expired' every 5 minutes and kicking me out",
        "My colleague invited me but the invite link says invalid when I try to set my password.",
        "The verification code SMS never comes to my number in {country}.",
        ("I lost access to my authenticator app, how do I recover the account?", ["security"]),
        "After changing my password yesterday, the mobile app won't accept my credentials.",
        "Hello, I am not able to enter in my account since this morning, it shows {error}.",
        ("Your sign-in page won't load at all on our office network.", ["bug", "performance"]),
        ("I left my old job and the account was tied to that email. How do I get into it now?", ["account_update"]),
        "It says 'user not found' but I've been using this email for two years.",
        "The captcha on the sign-in page keeps failing, I've done it ten times.",
        ("The remember-me checkbox does nothing, I have to enter my password every single time.", ["bug"]),
        "Our whole team got signed out at once and now nobody can get back in.",
        "I reset my password three times and still get 'invalid credentials'.",
        ("The backup codes you gave me when I set up two-factor don't work.", ["security"]),
        ("How do I log in to the desktop app if our company uses SSO?", ["how_to"]),
        "Logging in with my username fails, only my email address works. Is that intended?",
        "I'm the admin and I'm locked out, which means nobody can manage our team right now.",
        ("I get 'account disabled' when I try to sign in. Was it deactivated by mistake?", ["account_update"]),
        "i type the code from the sms and it says wrong code, tried 4 times",
    ],
    "bug": [
        "When I click Export on the {area}, nothing happens. No file, no error.",
        "The {area} lists {nbig} items but the total at the bottom says {nsmall}.",
        "Dates on the {area} are off by one day for us in {tz}.",
        "Uploading a PDF over {size} MB fails with {error}.",
        "The save button on the {area} stays greyed out even after I fill in every field.",
        ("Since yesterday's update the {area} is completely blank in {browser}.", ["performance"]),
        "Drag and drop stopped working on the {area} on {os}.",
        "Names with accents (like ü and ñ) come out as question marks in the exported CSV.",
        "Notifications are sent twice for every new comment.",
        ("The app crashes on launch on my {device}.", ["performance"]),
        "Filters on the {area} reset every time I go back to the page.",
        "I get {error} when I try to delete an archived project.",
        "Charts on the {area} show data for the wrong month.",
        "Typing in the search box and pressing enter clears the box instead of searching.",
        "Recurring events created on the 31st skip every month that has fewer days.",
        "Hi, on the {area} the text is overlapping and the buttons can't be clicked on small screens.",
        "In dark theme some labels are unreadable, black text on dark grey.",
        "Pasting a table from Excel into a note breaks the formatting completely.",
        "Sorting by date on the {area} puts the 10th before the 2nd, looks like it sorts as text.",
        "The link in the notification emails goes to a 404 page.",
        "when i edit a comment it posts a copy instead of updating the original",
        ("The mobile app shows last week's numbers until I force close it.", ["performance"]),
        "The time zone setting is ignored for scheduled reports, they arrive at 3am.",
        "Pressing undo deleted the whole paragraph instead of the last word.",
        "The import progress bar sticks at 99% forever, but the data is actually imported.",
        "Clicking a notification opens the wrong project.",
        "The print view cuts off the last column of the {area} table.",
        "The 'Mark all as read' button marks everything as unread instead. Kind of the opposite of what it says.",
        "Something is wrong with the {area}: I add an entry, refresh, and it's gone.",
        "Hello, when I attach image from phone it appears rotated sideways. Every time.",
    ],
    "feature_request": [
        "It would be great if we could set up tasks that repeat every other week.",
        "Any plans for a dark mode? My eyes hurt after a full day in the app.",
        "Please add bulk editing to the {area}, changing 200 rows one at a time is painful.",
        ("Could you let admins create custom roles with more granular permissions?", ["account_update", "security"]),
        ("We'd love a native {newintegration} integration.", ["integration"]),
        "Suggestion: let us export the {area} straight to PDF with our logo on it.",
        ("Any chance of an offline mode for the mobile app? Our field staff lose signal a lot.", ["how_to"]),
        ("It would be nice to have keyboard shortcuts for switching between tabs.", ["how_to"]),
        "We need custom fields on contacts, like contract end date and account manager.",
        "Can you add an option to schedule reports for a specific weekday?",
        "It'd help a lot if the calendar had a week view that starts on Monday.",
        "Idea: a read-only share link for clients, without making them create an account.",
        ("Please support more than one currency per workspace, we sell in EUR and GBP.", ["billing", "how_to"]),
        "I wish search could find text inside attached files.",
        "Please add a way to pin important projects to the top of the list.",
        ("Our team really wants a history of who changed what and when.", ["security", "how_to"]),
        "would love gantt charts",
        ("Could the API send a webhook when an invoice is paid?", ["integration"]),
        "Please let us pick our own colours for labels, the 8 defaults are not enough.",
        "It would be very useful if the interface can be in Portuguese, many in my team don't read English well.",
        "Can you make the mobile app work on tablets in landscape?",
        "We'd pay extra for a sandbox workspace to test changes before rolling them out.",
        "Idea: warn people before they delete a project that still has open tasks.",
        ("Is SAML single sign-on coming to the {plan} plan? Right now it's Enterprise only.", ["login", "billing"]),
        "A trash bin with a 30-day restore would save us from a lot of accidents.",
        "Would be amazing if comments supported @mentioning whole teams, not just people.",
        "Let each user set their own default view. Half my team wants the board, half wants the list.",
        "Adding my vote for the template library idea from your community forum, we'd use it daily.",
        "Please bring back the compact list layout as an option, the new one shows half as many rows.",
    ],
    "shipping": [
        "My {hardware} order {order} still says 'processing' after {days} days.",
        "Tracking number {tracking} hasn't updated since {date}.",
        "The {carrier} tracking says delivered but nothing arrived at our office.",
        "Can you send the {hardware} to a different address? We moved offices.",
        "Do you deliver to {country}? Checkout won't let me select it.",
        "We ordered {nbig} {hardware}s and only {nsmall} arrived.",
        ("The box was crushed and the {hardware} inside won't turn on.", ["refund", "bug"]),
        "How much is express delivery? We need the {hardware} before {date}.",
        (
            "We were asked to pay {amount} in customs fees on delivery. Wasn't that supposed to be included?",
            ["billing", "refund"],
        ),
        "where is my order {order}",
        "The parcel went back to the sender because the driver couldn't find our building.",
        "I received someone else's order, there's a different name on the label.",
        "Please change the delivery address on order {order} to {address} before it goes out.",
        "Your website says 2-3 business days but it's been two weeks.",
        "Can I pick up the {hardware} from you instead of waiting for the courier?",
        "The welcome kits for our new hires never showed up.",
        "Hello, I did not receive the tracking code in email for my purchase, can you send it?",
        "Is it possible to combine our two orders into one package to save on postage?",
        "The {carrier} driver left the parcel with a neighbour we don't know.",
        ("We need to send the {hardware} back for a different model, how do we get a return label?", ["refund"]),
        "Which courier do you use for {country}? The local post here is unreliable.",
        "Order {order} shows as dispatched but the tracking link says 'no information available'.",
        "The {hardware} came without the charging cable.",
        "Delivery was attempted on {date} while we were closed. How do I rebook it?",
        "Can you confirm the delivery address for order {order}? I think there's a typo in the postcode.",
        "Can you split the order so half the {hardware}s go to our {city} office?",
        "It's been stuck in customs in {country} for a week. Do you have paperwork you can send the carrier?",
        "Ordered a {hardware} on {date}, no email, no tracking, nothing. Did it even go through?",
    ],
    "cancellation": [
        "Please end our subscription at the close of the current period.",
        ("How do I close my account? I can't find the option anywhere.", ["how_to", "account_update"]),
        "We're moving to another tool, please don't renew us in {month}.",
        "I want to turn off auto-renewal on the {plan} plan.",
        "Close my account. Today.",
        "If I cancel now, do I keep access until {date}?",
        "Our company is shutting down so we need to end the contract.",
        ("I clicked cancel in settings but it still shows active. Did it work?", ["bug"]),
        ("Please delete my account and all my data, I don't want to use this anymore.", ["account_update", "security"]),
        "Can I pause the subscription for three months instead of stopping it?",
        "We only need the tool during the summer season. Can I cancel and come back in spring without losing data?",
        "We are giving 30 days notice to terminate our agreement under clause 7. Please confirm receipt.",
        ("Downgrading isn't enough for us, we want to stop paying altogether.", ["billing"]),
        "How much notice do you need to end the annual contract?",
        "not renewing. please confirm",
        "Hello, I want to finish my subscription, I don't use the app anymore.",
        "The cancel button says 'contact support', so here I am. Please end my plan.",
        "My father passed away and I need to close his account.",
        "After the merger we're consolidating tools. Please shut down the workspace {workspace} at the end of the month.",
        ("Will I be charged anything else once I've cancelled?", ["billing"]),
        (
            "Please remove the {plan} subscription, I only want the free version from now on.",
            ["account_update", "billing"],
        ),
        (
            "Do I need to export my data before the account is closed, or will it stay available for a while?",
            ["how_to"],
        ),
        "Get rid of the extra workspace we made for testing, we only need the main one.",
        "Our budget got cut and we have to let the subscription go. Shame, it was a great tool.",
        (
            "I started the trial and want to make sure it doesn't turn into a paid plan. How do I stop it?",
            ["billing", "how_to"],
        ),
        "Please stop the renewal. I'm not happy with the recent changes.",
        "Can you confirm that {workspace} is closed and no more invoices will be sent?",
        "we dont need the service after this month, stop it please",
    ],
    "account_update": [
        ("How do I change the email address on my account to {email}?", ["login", "how_to"]),
        "Please update our company name on the account to {company}.",
        "I need to hand over ownership of the workspace to a colleague, I'm leaving the company.",
        "Can you fix my display name? It's spelled wrong.",
        ("We need to change our billing address to {address}.", ["billing"]),
        "Please add {email} as an admin.",
        "I'd like to change my username from {user} to something more professional.",
        ("Please update my phone number, the old one is disconnected.", ["security", "login"]),
        ("How do I change the time zone on my profile? Everything shows in UTC.", ["how_to"]),
        "Our company rebranded. Can the workspace URL change too?",
        "Please merge my two accounts, I accidentally made one with my personal email.",
        "I'd like the language of my account switched to German.",
        ("Remove {colleague} from our team please, they no longer work here.", ["security"]),
        "Could you make our new office manager the contact person on the account?",
        ("I want to move from {plan} to {plan2} starting next month.", ["billing"]),
        ("my profile picture wont change, how do i update it", ["bug", "how_to"]),
        ("Change the contact email for invoices to {email}.", ["billing"]),
        "Hi, I got married and need to update my last name on the account.",
        ("Can my projects be moved from my personal account into the company workspace?", ["how_to"]),
        "Please change {colleague}'s role from viewer to editor.",
        ("Our VAT number changed after the restructure. Where do I put the new one?", ["billing"]),
        ("Need the default currency on the account changed to CAD.", ["billing"]),
        "Please switch off the marketing emails for my account, just keep the notifications.",
        "I'd like to add a second email address to my profile as a backup.",
        "Update the country on our account to {country}, we relocated.",
        "Is it possible to rename the workspace? It still has the old team name.",
        "The account is in my old manager's name. Please put it under mine ({email}).",
        "Good day, please correct the spelling of our company on the account, it should be {company}.",
    ],
    "security": [
        ("I got an email about a sign-in from {country} that wasn't me.", ["login"]),
        "I think someone has access to my account, there are projects in it I didn't create.",
        "We got a phishing email pretending to be from you, asking for card details. Forwarding it so you know.",
        ("Is our data encrypted at rest? Our compliance team needs to know.", ["how_to"]),
        "Can you send us your SOC 2 report? Our vendor review is blocked on it.",
        (
            "An ex-employee still seems to be getting in. How do I make sure all their sessions are killed?",
            ["account_update", "login"],
        ),
        "My password showed up in a data breach. What should I do besides changing it?",
        ("We're seeing API calls from an IP address we don't recognise.", ["integration"]),
        ("How do I enforce two-factor authentication for everyone in our workspace?", ["how_to"]),
        ("Someone changed the email on my account without my permission.", ["account_update", "login"]),
        ("I accidentally pushed our API key to a public GitHub repo. How do I revoke it?", ["integration"]),
        "Do you have a bug bounty, or some way to report a vulnerability responsibly?",
        "Where are your servers? We need EU data residency for GDPR.",
        ("Got a 'new device' alert at {time}. I was asleep.", ["login"]),
        "Is there a log showing who exported our customer list last week?",
        "We suspect an account takeover: the recovery phone number was changed to one we don't know.",
        ("Can we restrict access to our workspace to our office IP range?", ["feature_request", "how_to"]),
        (
            "The share link to our client files is public, anyone who has it can see everything. Is that intended?",
            ["bug"],
        ),
        "Your site's SSL certificate shows a warning in {browser} today.",
        ("Hello, I receive many password reset emails I did not ask for. Is someone trying to hack me?", ["login"]),
        "Legal needs a signed DPA from you before they approve the purchase.",
        "Please lock my account right away, my laptop was stolen.",
        "How long do you keep logs with our users' IP addresses?",
        "someone is using my account!!!",
        ("Is there a way to see all active sessions and sign them out remotely?", ["how_to", "login"]),
        (
            "The invoice PDF link in your emails opens without signing in. That looks like a data exposure.",
            ["bug", "billing"],
        ),
        ("Do you support hardware keys like YubiKey for two-factor?", ["feature_request"]),
        "One of our users clicked a link in a fake 'shared document' email and typed her password. What now?",
    ],
    "performance": [
        "The {area} takes over {seconds} seconds to load every time.",
        "Everything is really slow today, even switching tabs.",
        "Search takes forever once a project has more than {nbig}00 items.",
        "Typing in the editor lags, the letters show up a second after I type them.",
        "The mobile app is sluggish on my {device}, scrolling stutters.",
        ("Large report exports time out after a few minutes.", ["bug"]),
        "Our team in {region} says the app is unusable in the mornings, pages hang for ages.",
        ("Syncing between desktop and web takes 10+ minutes now, it used to be instant.", ["integration", "bug"]),
        "Uploads crawl: {size} MB took almost half an hour on a fast connection.",
        "The browser tab uses {ram} GB of RAM after an hour and my laptop fans go crazy.",
        "Is there a slowdown going on? Our dashboards haven't refreshed in {minutes} minutes.",
        ("API response times jumped from about 200ms to 4 seconds since {date}.", ["integration"]),
        "Opening a big spreadsheet attachment freezes the page for 20 seconds.",
        "Hi, the program works very slow in last days, each click I wait many seconds.",
        "Loading the calendar for the whole team is painfully slow, single calendars are fine.",
        ("The {area} stutters whenever a new notification comes in.", ["bug"]),
        "Why does the app take so long to start on {os}? Almost a minute before I see anything.",
        "Report generation used to take seconds and now it takes five minutes.",
        (
            "We're getting throttled by the API even though we're way under the documented rate limit.",
            ["integration", "bug"],
        ),
        "The screen freezes for a few seconds every time the auto-refresh kicks in.",
        "Importing {nbig}00 contacts takes hours. Is that normal?",
        "Pages load fine on wifi but on 4G it's unbearable, 30 seconds a page.",
        "Scrolling through long comment threads is super janky.",
        "The admin console got slower as we added people. We're at {nbig} users and it's barely usable.",
        "The autosave spinner runs constantly and the editor is unresponsive while it does.",
        "Since the last release the {area} is noticeably slower for everyone in our office.",
        "Latency from {region} is terrible. Is there a server closer to us?",
        "It's like the whole app is running through mud this week. Every page takes 10-15 seconds.",
    ],
    "integration": [
        "The {integration} integration stopped syncing on {date}.",
        "We connected {integration} but none of the historical records came over.",
        "Our Zapier zap for new contacts fires twice for every contact.",
        ("How do I connect {integration} to our workspace? I don't see it in the apps list.", ["how_to"]),
        "The Slack notifications go to the wrong channel since we renamed it.",
        ("Salesforce sync fails with FIELD_CUSTOM_VALIDATION_EXCEPTION on about half the records.", ["bug"]),
        "Shopify orders stopped showing up after we changed our store domain.",
        ("The OAuth token for {integration} expires every day and we have to reconnect.", ["login"]),
        "Our webhook endpoint gets a 401 from your side now. Did the signing secret change?",
        ("Does the {integration} connector support mapping custom fields?", ["feature_request", "how_to"]),
        "We get 'insufficient permissions' when authorising the {integration} app, even as admin.",
        ("Events created in your app show up an hour off in Google Calendar.", ["bug"]),
        "Our API key works in Postman but the same request from our server returns 403.",
        "The QuickBooks export creates duplicate customers every time it runs.",
        "HubSpot deals and your pipeline stages are out of sync.",
        "The Microsoft Teams bot stopped responding to commands.",
        "{integration} says 'connection lost' every few hours.",
        ("Is there an official Python SDK for your API, or only REST?", ["how_to"]),
        "After disconnecting and reconnecting {integration}, all the old links are broken.",
        "we use jira and the tickets dont link back anymore",
        "When importing from {integration} the fields don't map right, phone numbers end up in the notes.",
        "Hi, I try to connect with Shopify but it gives error 'invalid shop domain'.",
        ("Stripe payments aren't being matched to invoices in your app anymore.", ["billing"]),
        "The Outlook add-in disappeared from the ribbon after the Office update.",
        ("Webhooks arrive out of order, so updates land before the create event.", ["bug"]),
        "Zendesk comments sync over without their attachments.",
        "The Mailchimp audience sync only brings over the first 1000 subscribers.",
        "The Google Sheets connector stopped writing new rows after we shared the sheet with another team.",
        "Our {integration} connection shows green but nothing has come through since {date}.",
    ],
    "how_to": [
        "How do I set up a recurring report that goes out every Monday?",
        "Where is the setting to switch notification emails to a daily digest?",
        "Is it possible to duplicate a project together with all its tasks?",
        "What's the best way to bring in our contacts from a spreadsheet?",
        "Can someone walk me through adding a new team member?",
        "How do I make a field required on the intake form?",
        "Quick question: can guests see private comments?",
        ("Where is the export button? I need all our data as CSV.", ["feature_request"]),
        "How do I share a dashboard with someone outside the company?",
        ("Is there a keyboard shortcut for creating a new task?", ["feature_request"]),
        "how to archive old projects",
        "What's the difference between a viewer and a commenter?",
        "I'm new here. How do I create my first workflow?",
        "Can I use the same template in several workspaces?",
        "Hello, please explain how to make the report show only the numbers of my team.",
        "Is there a way to move tasks between boards without copying them?",
        "How do I set working hours so the calendar doesn't book meetings at night?",
        ("Where can I find the API documentation?", ["integration"]),
        "How can I print the {area}?",
        "Is there a tutorial for setting up approval steps?",
        ("How do I get back something I deleted yesterday?", ["bug"]),
        "Can I change the order of the columns on the {area}?",
        "What file types can I attach to a task?",
        "how do i tag someone in a comment",
        ("Does the mobile app let me edit forms or only view them?", ["feature_request"]),
        ("How do I set up automatic reminders to our clients about overdue invoices?", ["billing"]),
        "My manager wants weekly summaries. What's the easiest way to set that up?",
        ("Is there a limit on how many custom fields a project can have?", ["feature_request"]),
        "Sorry if this is a dumb question, but how do I assign one task to two people?",
    ],
}

TERSE: dict[str, list[str]] = {
    "billing": [
        "charged twice??",
        "double charge on my card",
        "wrong invoice amount",
        "need a copy of invoice {invoice}",
        "why did the price go up",
        "card declined again",
        "invoice is missing our VAT number",
        "payment failed but card is fine",
        "what is this {amount} charge",
        "need receipt for {month}",
        "billed for too many seats",
        "charged in wrong currency",
        "promo code not applied",
    ],
    "refund": [
        "want my money back",
        "refund please",
        "still waiting on my refund",
        "where is my refund??",
        "pls reverse the charge",
        "money never came back",
        "need {amount} back",
        "money back pls",
        "status of my refund?",
        "charged by mistake, return it",
        "give me back the {amount}",
        "refund went to old card",
        "reimburse duplicate payment",
    ],
    "login": [
        "cant log in again",
        "password reset not working",
        "locked out",
        "2fa code not accepted",
        "cant sign in",
        "stuck in a login loop",
        "reset email never came",
        "sso not working",
        "cant get into my account",
        "invalid credentials again??",
        "magic link expired",
        "logged out every 5 min",
        "sms code never arrives",
    ],
    "bug": [
        "export button broken",
        "app crashes on open",
        "{area} is blank",
        "numbers dont add up on {area}",
        "save button does nothing",
        "{error} again",
        "filters keep resetting",
        "getting every notification twice",
        "pdf upload fails",
        "search box clears itself",
        "charts show wrong month",
        "broken link in email",
        "undo deletes everything",
    ],
    "feature_request": [
        "dark mode pls",
        "please add bulk edit",
        "need a gantt view",
        "would love an offline mode",
        "custom fields on contacts?",
        "more label colours please",
        "suggestion: repeating tasks",
        "any plans for a trash bin",
        "want a week view starting monday",
        "webhooks for paid invoices please",
        "please add keyboard shortcuts",
        "need custom roles",
        "{newintegration} integration when?",
    ],
    "shipping": [
        "where is my order",
        "package not arrived",
        "tracking not updating",
        "order {order} status?",
        "{hardware} never arrived",
        "wrong item delivered",
        "missing items in delivery",
        "need to change delivery address",
        "stuck in customs",
        "no tracking number",
        "parcel returned to sender",
        "still waiting for my {hardware}",
        "{carrier} says delivered, its not",
    ],
    "cancellation": [
        "cancel my subscription",
        "please cancel",
        "stop auto renew",
        "close my account",
        "cancel plan asap",
        "dont renew us",
        "how to cancel??",
        "end subscription",
        "cancel at end of month",
        "want to quit",
        "terminate contract",
        "pause subscription?",
        "cancel the {plan} plan",
    ],
    "account_update": [
        "change my email",
        "update company name",
        "change account owner",
        "rename workspace",
        "update phone number",
        "change display name",
        "add new admin {email}",
        "change time zone to {tz}",
        "merge my accounts",
        "update my last name",
        "change username",
        "switch account language",
        "new billing address: {address}",
    ],
    "security": [
        "suspicious login alert",
        "someone is in my account",
        "got a phishing email",
        "need soc2 report",
        "api key leaked",
        "revoke all sessions",
        "laptop stolen, lock account",
        "weird login from {country}",
        "is data encrypted?",
        "force 2fa for whole team?",
        "need a DPA signed",
        "vulnerability to report",
        "strange reset emails",
    ],
    "performance": [
        "so slow today",
        "app lagging",
        "{area} takes forever",
        "everything is slow",
        "pages take ages to load",
        "search is very slow",
        "typing lag",
        "exports timing out",
        "super slow on mobile",
        "screen keeps freezing",
        "api latency high",
        "sync is so slow",
        "slow slow slow",
    ],
    "integration": [
        "{integration} not syncing",
        "{integration} disconnected again",
        "zapier firing twice",
        "webhooks failing",
        "slack notifications stopped",
        "salesforce sync errors",
        "shopify orders missing",
        "cant connect {integration}",
        "api returns 403",
        "oauth keeps expiring",
        "jira links broken",
        "teams bot dead",
        "{integration} connector down?",
    ],
    "how_to": [
        "how to export data",
        "how do i add users",
        "how to archive a project",
        "where are the settings",
        "how to share a dashboard",
        "how to duplicate a project",
        "how to set reminders",
        "how to tag someone",
        "where are the api docs",
        "how to restore a deleted item",
        "how to change column order",
        "how do templates work",
        "how to print the {area}",
    ],
}

DETAILS: dict[str, list[str]] = {
    "billing": [
        "The charge showed up on {date}.",
        "Our account ID is {acct}.",
        "I've attached a screenshot of the bank statement.",
        "Finance needs this sorted before month end.",
        "The card on file ends in {card4}.",
        "We're on the {plan} plan with {nbig} seats.",
        "The invoice number is {invoice}.",
        "Nothing changed on our side as far as I know.",
    ],
    "refund": [
        "The original payment was {amount} on {date}.",
        "The invoice number is {invoice}.",
        "I paid through PayPal.",
        "Back to the original card is fine.",
        "Nobody on our team has logged in since {date}.",
        "Our account ID is {acct}.",
        "I've already contacted my bank, they told me to ask you first.",
        "I'm happy to send proof of payment if needed.",
    ],
    "login": [
        "I'm using {browser} on {os}.",
        "I already cleared cookies and cache.",
        "Tried incognito too, same thing.",
        "My login email is {email}.",
        "It worked fine until {date}.",
        "I need to get in before a client meeting at 2pm.",
        "My colleagues can get in without problems.",
        "I've tried on my phone and laptop.",
    ],
    "bug": [
        "Steps: open the {area}, click the button, nothing.",
        "It happens in {browser} and {browser2}.",
        "I'm on {os}.",
        "Screenshot attached.",
        "It started after the last update.",
        "Other people on my team see it too.",
        "The browser console shows {error}.",
        "I can reproduce it every time.",
    ],
    "feature_request": [
        "This would save our team hours every week.",
        "Other tools we've used have this.",
        "Happy to jump on a call and explain our use case.",
        "I saw this asked on the forum a while ago too.",
        "Right now we use a spreadsheet as a workaround.",
        "It's the one thing my team keeps asking me about.",
        "Even a basic version would help.",
    ],
    "shipping": [
        "The order number is {order}.",
        "Tracking: {tracking}.",
        "We ordered on {date}.",
        "It's going to our {city} office.",
        "We need it for a store opening on {date}.",
        "The carrier is {carrier}.",
        "Our address is {address}.",
    ],
    "cancellation": [
        "Our workspace is {workspace}.",
        "Please confirm by email.",
        "We've been customers since {year}.",
        "The main reason is price.",
        "We found a tool that fits our workflow better.",
        "No need to call me, just process it.",
        "The account owner is {email}.",
    ],
    "account_update": [
        "Account ID {acct}.",
        "I'm the account owner.",
        "I tried Settings > Profile but the field is locked.",
        "The new email is {email}.",
        "Please make the change right away.",
        "Our admin who usually does this has left.",
        "I can verify my identity if needed.",
    ],
    "security": [
        "This is urgent.",
        "I've already changed my password.",
        "I'm the workspace owner.",
        "The alert came in at {time}.",
        "Our IT team needs an answer today.",
        "My login email is {email}.",
        "Please treat this as a priority.",
    ],
    "performance": [
        "Our internet is fine, other sites load quickly.",
        "Using {browser} on {os}.",
        "It's worst between 9 and 11am.",
        "We have about {nbig}00 records.",
        "Tested on two different networks.",
        "It was fine until {date}.",
        "Restarting doesn't help.",
    ],
    "integration": [
        "We're on the {plan} plan.",
        "I already tried disconnecting and reconnecting.",
        "The error log says {error}.",
        "The last successful sync was on {date}.",
        "Our admin set this up and she's away this week.",
        "Nothing changed on our side.",
    ],
    "how_to": [
        "I looked in the help center but couldn't find it.",
        "Sorry if this is obvious.",
        "I'm using the web version.",
        "A link to the docs would be great.",
        "We just started our trial.",
        "I'm not very technical, so step by step would help.",
    ],
}

GREETINGS = [
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hey team,",
    "Dear Support,",
    "Good morning,",
    "Hello support team,",
    "To whom it may concern,",
    "Hi {agent},",
    "Dear Sir/Madam,",
    "Hey,",
    "Greetings,",
    "Hello dear support,",
    "Good day,",
    "Dear team,",
    "Hi support,",
    "Good afternoon,",
]
OPENERS = [
    "I'm the admin for {company}.",
    "I hope you're well.",
    "We've been using your product for about {months} months.",
    "First time contacting support.",
    "Sorry for the long message.",
    "I'm writing from {company}.",
    "Quick one today.",
    "I already tried your chatbot and it didn't help.",
    "This is my second email about this.",
    "We're a small team of {teamsize} people.",
    "I manage the account for our office in {city}.",
    "I am writing to you regarding our account.",
    "Hope this is the right place to ask.",
    "One of my colleagues asked me to get in touch.",
]
CLOSERS = [
    "Thanks in advance.",
    "Thank you!",
    "Any help appreciated.",
    "Please advise.",
    "Looking forward to your reply.",
    "Thanks for your help.",
    "Let me know if you need anything else from me.",
    "Please get back to me asap.",
    "Cheers.",
    "Appreciate it.",
    "Thank you for your time.",
    "Hope you can help.",
    "Thank you in advance for your answer.",
    "Waiting for your answer.",
]
ANGRY = [
    "This is really frustrating.",
    "I've been waiting for days.",
    "THIS IS UNACCEPTABLE.",
    "Second time I'm writing about this!!",
    "We pay good money for this.",
    "FIX IT PLEASE.",
    "Not impressed.",
    "Seriously??",
    "I'm losing patience here.",
    "VERY ANNOYED.",
]
SIGNOFFS = [
    "Best, {first}",
    "Regards, {full}",
    "Thanks, {first}",
    "- {first}",
    "Kind regards, {full}, {company}",
    "Cheers, {first}",
    "{first}",
    "Sent from my iPhone",
    "Best regards, {full}",
    "Thx, {first}",
]
TERSE_PREFIX = ["", "", "", "", "", "", "", "hi ", "hey ", "help: ", "urgent: ", "pls help - ", "hello, ", "again: "]
TERSE_SUFFIX = ["", "", "", "", "", "", " pls", "??", " !!", " asap", " - {first}", " thx", " ...", " help"]
EMOJI = [" 🙏", " 😡", " 🙁", " 😅", " 👍", " 😤"]

# --------------------------------------------------------------------------------------
# Deliberately ambiguous tickets: (template, primary label, alternatives). The first
# alternative is the other plausible reading.
# --------------------------------------------------------------------------------------

AMBIGUOUS: list[tuple[str, str, list[str]]] = [
    ("I was charged {amount} after I cancelled and now I want my money back.", "refund", ["cancellation", "billing"]),
    (
        "I cancelled in {month} but you still took {amount} on {date}. Why am I still being charged?",
        "billing",
        ["cancellation", "refund"],
    ),
    ("Since the update the {area} takes a minute to load and sometimes crashes.", "performance", ["bug"]),
    ("The {area} crashes every time I open it, and when it does load it's painfully slow.", "bug", ["performance"]),
    (
        "I can't log in and I just got an alert about a sign-in from {country}. Has my account been hacked?",
        "security",
        ["login"],
    ),
    (
        "Locked out after someone tried my password a bunch of times, and it wasn't me. How do I get back in?",
        "login",
        ["security"],
    ),
    (
        "I changed my email address in settings and now I can't sign in with either the old or the new one.",
        "login",
        ["account_update"],
    ),
    (
        "I need the email on my account changed because I no longer have access to the old inbox to sign in.",
        "account_update",
        ["login"],
    ),
    (
        "The {integration} sync fails with a 500 error whenever a record has an emoji in its name.",
        "integration",
        ["bug"],
    ),
    ("Since your last release the {integration} connector duplicates every record it imports.", "bug", ["integration"]),
    ("Is there a way to set up automatic reminders? If not, please consider adding it.", "how_to", ["feature_request"]),
    (
        "Can I export the {area} to PDF? I couldn't find it, and if it doesn't exist it really should.",
        "feature_request",
        ["how_to"],
    ),
    ("The {hardware} never arrived so I'd like my money back for it.", "refund", ["shipping"]),
    (
        "My {hardware} order {order} is two weeks late. Where is it? If it's lost, just refund me.",
        "shipping",
        ["refund"],
    ),
    ("Please cancel my plan and pay back the rest of the year.", "cancellation", ["refund"]),
    ("I want this month refunded, and after that I'll be closing the account.", "refund", ["cancellation"]),
    (
        "The invoice says {amount} but I downgraded to {plan} last week. Shouldn't it be lower?",
        "billing",
        ["account_update"],
    ),
    (
        "I switched our plan to {plan} in settings but the account still shows the old plan.",
        "account_update",
        ["billing", "bug"],
    ),
    (
        "Someone on our team changed the admin email without asking and now I can't manage the account.",
        "security",
        ["account_update"],
    ),
    (
        "How do I remove a former employee's access? They might still be signed in somewhere.",
        "account_update",
        ["security"],
    ),
    ("Our webhook calls to your API take 30+ seconds and keep timing out.", "integration", ["performance"]),
    ("The API got so slow that our nightly {integration} import never finishes.", "performance", ["integration"]),
    (
        "Clicking 'update card' gives {error}, so my payment failed and now the account is suspended.",
        "bug",
        ["billing"],
    ),
    (
        "My payment didn't go through because the card form won't accept my postcode, and now you're threatening to suspend us.",
        "billing",
        ["bug"],
    ),
    (
        "You charged me twice, and the second charge came after I'd hit cancel. I want that one back.",
        "refund",
        ["billing", "cancellation"],
    ),
    (
        "Please close our second workspace. And why are we even paying for it when nobody uses it?",
        "cancellation",
        ["billing"],
    ),
    ("The password reset link opens a page that just spins forever.", "login", ["bug", "performance"]),
    ("Is two-factor authentication available on the {plan} plan, and how do I turn it on?", "how_to", ["security"]),
    (
        "Can we get SSO with {idp}? Our security team won't approve the tool without it.",
        "feature_request",
        ["security", "login"],
    ),
    (
        "I'd like to switch to annual payment to save money. How does that work?",
        "billing",
        ["account_update", "how_to"],
    ),
    (
        "Do you ship the {hardware} to {country}? And will I pay import tax on top of the {amount}?",
        "shipping",
        ["billing"],
    ),
    ("Tracking says delivered but I never got the {hardware}. Can you resend it or refund me?", "shipping", ["refund"]),
    ("Since the new version, notifications from {integration} arrive hours late.", "integration", ["performance"]),
    ("Search is broken: it takes 20 seconds and then shows results from a different project.", "bug", ["performance"]),
    (
        "Our account was suspended for non-payment but we paid invoice {invoice} on time. Now nobody can log in.",
        "billing",
        ["login"],
    ),
    (
        "I can't log in because the trial ended, but I already entered a card. Please fix my access.",
        "login",
        ["billing"],
    ),
    ("I want to delete my account because I'm worried about how my data is stored.", "cancellation", ["security"]),
    ("How do I download all my data before I cancel? I need it by Friday.", "how_to", ["cancellation"]),
    (
        "Please stop charging me. I thought I cancelled in {month} and the charges keep coming.",
        "cancellation",
        ["billing", "refund"],
    ),
    (
        "The {area} shows other customers' data when I filter by date. Is this a bug or a privacy leak?",
        "security",
        ["bug"],
    ),
    ("I updated our company address but new invoices still show the old one.", "account_update", ["billing", "bug"]),
    (
        "Is there an API endpoint for bulk updating contacts? If not, can you add one?",
        "integration",
        ["feature_request", "how_to"],
    ),
    (
        "The mobile app signs me out every time I switch apps, and then it takes ages to get back in.",
        "login",
        ["performance", "bug"],
    ),
    ("You refunded the duplicate charge but also the real one. Do I need to pay again?", "billing", ["refund"]),
    (
        "We'd like to go down from {plan} to {plan2}. Will we get credit for the difference?",
        "billing",
        ["refund", "account_update"],
    ),
    (
        "The {integration} app won't authorise, it says my session is invalid and asks me to sign in again, in a loop.",
        "integration",
        ["login"],
    ),
    ("Exporting to CSV is super slow and the file is missing half the rows.", "bug", ["performance"]),
    (
        "Could you make the dashboard faster? Loading 12 widgets shouldn't take 40 seconds.",
        "performance",
        ["feature_request"],
    ),
    (
        "The {hardware} showed up with a cracked screen and I was charged {amount} for express shipping anyway.",
        "shipping",
        ["refund", "billing"],
    ),
    (
        "How do I give my accountant read-only access? Or is that not possible yet?",
        "how_to",
        ["account_update", "feature_request"],
    ),
]

DEFAULT_ALTS = {
    "billing": ["refund", "account_update", "cancellation"],
    "refund": ["billing", "cancellation"],
    "login": ["security", "account_update", "bug"],
    "bug": ["performance", "integration"],
    "feature_request": ["how_to", "integration"],
    "shipping": ["refund", "billing"],
    "cancellation": ["refund", "billing", "account_update"],
    "account_update": ["login", "billing", "how_to"],
    "security": ["login", "account_update"],
    "performance": ["bug", "integration"],
    "integration": ["bug", "how_to"],
    "how_to": ["feature_request", "bug"],
}

# --------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------


def norm_strict(text: str) -> str:
    """Used for uniqueness: lowercase, no apostrophes or punctuation, collapsed whitespace."""
    t = text.lower().replace("'", "").replace("\u2019", "")
    t = re.sub(r"[^\w\s]", " ", t)
    return " ".join(t.split())


def norm_loose(text: str) -> str:
    return " ".join(text.lower().split())


def typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
    if not idx:
        return text
    for i in rng.sample(idx, min(len(idx), rng.choice([1, 1, 2]))):
        w = words[i]
        k = rng.randint(1, len(w) - 3)
        op = rng.random()
        if op < 0.45:
            w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]  # swap
        elif op < 0.8:
            w = w[:k] + w[k + 1 :]  # drop
        else:
            w = w[:k] + w[k] + w[k:]  # double
        words[i] = w
    return " ".join(words)


def pick_core(rng: random.Random, label: str) -> tuple[str, list[str] | None]:
    entry = rng.choice(CORE[label])
    if isinstance(entry, tuple):
        return entry[0], list(entry[1])
    return entry, None


def compose(rng: random.Random, core: str, label: str, style: str) -> str:
    parts: list[str] = []
    angry = rng.random() < 0.13
    v: dict[str, str] = {}
    core_s = fill(core, rng, v)
    if angry and rng.random() < 0.25:
        core_s = core_s.upper()
    if style == "short":
        parts = [core_s]
        if rng.random() < 0.25:
            parts.append(fill(rng.choice(CLOSERS), rng, v))
        if angry:
            parts.append(rng.choice(ANGRY))
    elif style == "medium":
        if rng.random() < 0.35:
            parts.append(fill(rng.choice(GREETINGS), rng, v))
        if rng.random() < 0.22:
            parts.append(fill(rng.choice(OPENERS), rng, v))
        parts.append(core_s)
        if angry:
            parts.append(rng.choice(ANGRY))
        if rng.random() < 0.7:
            parts.append(fill(rng.choice(DETAILS[label]), rng, v))
        if rng.random() < 0.45:
            parts.append(fill(rng.choice(CLOSERS), rng, v))
        if rng.random() < 0.15:
            parts.append(fill(rng.choice(SIGNOFFS), rng, v))
    else:  # email
        if rng.random() < 0.9:
            parts.append(fill(rng.choice(GREETINGS), rng, v))
        for opener in rng.sample(OPENERS, rng.choice([1, 1, 2])):
            parts.append(fill(opener, rng, v))
        parts.append(core_s)
        for detail in rng.sample(DETAILS[label], rng.choice([1, 2, 2])):
            parts.append(fill(detail, rng, v))
        if angry:
            parts.append(rng.choice(ANGRY))
        if rng.random() < 0.9:
            parts.append(fill(rng.choice(CLOSERS), rng, v))
        if rng.random() < 0.85:
            parts.append(fill(rng.choice(SIGNOFFS), rng, v))
    for i in range(len(parts) - 1):  # a sentence typed without a full stop still ends before the next
        if not parts[i].endswith((".", "!", "?", ",", ":", ")")):
            parts[i] += "."
    text = " ".join(parts)
    return tone(text, rng, lowercase_p=0.09)


def compose_terse(rng: random.Random, label: str) -> str:
    v: dict[str, str] = {}
    core = fill(rng.choice(TERSE[label]), rng, v)
    text = fill(rng.choice(TERSE_PREFIX), rng, v) + core + fill(rng.choice(TERSE_SUFFIX), rng, v)
    return tone(text, rng, lowercase_p=0.5)


def tone(text: str, rng: random.Random, lowercase_p: float) -> str:
    if rng.random() < lowercase_p:
        text = text.lower()
    if rng.random() < 0.10:
        text = text.replace("'", "")
    if rng.random() < 0.09:
        text = typo(text, rng)
    if rng.random() < 0.025:
        text += rng.choice(EMOJI)
    return " ".join(text.split())


def make_ticket(rng: random.Random, label: str, ambiguous: tuple | None) -> dict:
    if ambiguous is not None:
        template, label, alts = ambiguous
        style = rng.choices(["short", "medium", "email"], [0.35, 0.4, 0.25])[0]
        text = compose(rng, template, label, style)
        return {"text": text, "label": label, "alternatives": list(alts), "ambiguous": True}
    style = rng.choices(["terse", "short", "medium", "email"], [0.17, 0.25, 0.34, 0.24])[0]
    if style == "terse":
        text, alts = compose_terse(rng, label), None
    else:
        core, alts = pick_core(rng, label)
        text = compose(rng, core, label, style)
    if alts is None:
        defaults = DEFAULT_ALTS[label]
        alts = [defaults[0]] if rng.random() < 0.55 else [defaults[0], rng.choice(defaults[1:])]
    return {"text": text, "label": label, "alternatives": alts, "ambiguous": False}


def target_counts(rng: random.Random, total: int, spread: int) -> dict[str, int]:
    base = total // len(LABELS)
    counts = {l: base for l in LABELS}
    for l in LABELS[: total - base * len(LABELS)]:
        counts[l] += 1
    for _ in range(len(LABELS) * 3):  # move mass around, keeping the total
        a, b = rng.sample(LABELS, 2)
        step = rng.randint(1, 3)
        if counts[a] + step <= base + spread and counts[b] - step >= base - spread:
            counts[a] += step
            counts[b] -= step
    return counts


def build_split(rng: random.Random, total: int, n_ambig: int, spread: int, taken: set[str]) -> list[dict]:
    counts = target_counts(rng, total, spread)
    tickets: list[dict] = []

    def add(label: str, amb: tuple | None) -> None:
        for _ in range(200):
            t = make_ticket(rng, label, amb)
            key = norm_strict(t["text"])
            if key and key not in taken:
                taken.add(key)
                tickets.append(t)
                return
        raise RuntimeError(f"could not make a unique {label} ticket")

    pool = list(AMBIGUOUS)
    rng.shuffle(pool)
    amb_used: Counter = Counter()
    i = 0
    while sum(amb_used.values()) < n_ambig:
        amb = pool[i % len(pool)]
        i += 1
        if amb_used[amb[1]] < counts[amb[1]] // 3:  # never let ambiguity dominate a category
            amb_used[amb[1]] += 1
            add(amb[1], amb)
    for label in LABELS:
        for _ in range(counts[label] - amb_used[label]):
            add(label, None)
    rng.shuffle(tickets)
    return tickets


def near_duplicate(text: str, kind: str, rng: random.Random) -> str:
    if kind == "exact":
        return text
    if kind == "case":
        variant = text.lower() if text != text.lower() else text[:1].upper() + text[1:]
        return variant if variant != text else text.upper()
    if kind == "space":
        words = text.split(" ")
        if len(words) < 2:
            return text + " ?"
        for i in sorted(rng.sample(range(1, len(words)), min(2, len(words) - 1)), reverse=True):
            words.insert(i, "")  # joining gives a double space
        return " ".join(words)
    # punctuation
    if text.endswith((".", "!", "?")):
        return text.rstrip(".!?")
    return text + rng.choice(["!!", "?", "."])


def mask_texts(texts: list[str]) -> dict[str, str]:
    """Each text masked by distill.yaml's data.scrub (the repository's own scrubber)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from distillbuild.privacy.scrubber import Scrubber, ScrubSettings
    from distillbuild.spec import load_spec

    spec_path = Path(__file__).resolve().parents[2] / "distill.yaml"
    scrub = load_spec(spec_path, ("*",)).data_files.scrub
    assert scrub is not None, "distill.yaml needs its data.scrub section"
    unique = list(dict.fromkeys(texts))
    return dict(zip(unique, Scrubber(ScrubSettings.from_spec(scrub)).mask_many(unique)))


def main() -> None:
    rng = random.Random(SEED)
    taken: set[str] = set()
    inputs = build_split(rng, N_INPUT_UNIQUE, N_AMBIG_INPUTS, 8, taken)
    heldout = build_split(rng, N_HELDOUT, N_AMBIG_HELDOUT, 4, taken)

    # Deliberate duplicates: the same ticket sent twice, some with case/space/punctuation changes.
    kinds = ["exact"] * 4 + ["case"] * 3 + ["space"] * 2 + ["punct"] * 3
    originals = rng.sample(range(len(inputs)), N_DUPLICATES)
    dups = []
    for kind, i in zip(kinds, originals):
        t = dict(inputs[i])
        t["text"] = near_duplicate(t["text"], kind, rng)
        t["dup_kind"] = kind
        dups.append((i, t))
    for i, t in sorted(dups, key=lambda x: -x[0]):
        pos = rng.randint(i + 1, len(inputs))
        inputs.insert(pos, t)

    # ---------------------------------------------------------------- write
    masked = mask_texts([t["text"] for t in inputs + heldout])

    def dump(path: Path, rows: list[dict]) -> None:
        rows = [{**row, "text": masked[row["text"]]} for row in rows]
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    dump(OUT_DIR / "inputs.jsonl", [{"id": f"t{i:04d}", "text": t["text"]} for i, t in enumerate(inputs, 1)])
    dump(
        OUT_DIR / "heldout.jsonl",
        [{"id": f"h{i:04d}", "text": t["text"], "label": t["label"]} for i, t in enumerate(heldout, 1)],
    )
    dump(
        OUT_DIR / "teacher_key.jsonl",
        [{"text": t["text"], "label": t["label"], "alternatives": t["alternatives"]} for t in inputs + heldout],
    )

    in_counts = Counter(t["label"] for t in inputs)
    ho_counts = Counter(t["label"] for t in heldout)
    n_amb_in = sum(t["ambiguous"] for t in inputs)
    n_amb_ho = sum(t["ambiguous"] for t in heldout)
    (OUT_DIR / "README.md").write_text(readme(in_counts, ho_counts, n_amb_in, n_amb_ho), encoding="utf-8", newline="\n")

    # ---------------------------------------------------------------- constraints
    assert len(inputs) == N_INPUTS and len(heldout) == N_HELDOUT
    for t in inputs + heldout:
        s = t["text"]
        assert t["label"] in LABELS, t
        assert 1 <= len(t["alternatives"]) <= 2, t
        assert all(a in LABELS and a != t["label"] for a in t["alternatives"]), t
        assert len(set(t["alternatives"])) == len(t["alternatives"]), t
        assert s == s.strip() and "\n" not in s and "\r" not in s and "{" not in s, s
    for label in LABELS:
        assert 0.06 <= in_counts[label] / N_INPUTS <= 0.11, (label, in_counts[label])
        assert ho_counts[label] >= 15, (label, ho_counts[label])
    # Duplicates: exactly the 12 deliberate ones, even under the strict normalisation.
    strict = Counter(norm_strict(t["text"]) for t in inputs)
    assert sum(c - 1 for c in strict.values()) == N_DUPLICATES
    assert all(c <= 2 for c in strict.values())
    loose_in = {norm_loose(t["text"]) for t in inputs}
    assert not any(norm_loose(t["text"]) in loose_in for t in heldout)
    assert not any(norm_strict(t["text"]) in strict for t in heldout)
    assert len({norm_strict(t["text"]) for t in heldout}) == N_HELDOUT
    # The simulated teacher keys by whitespace-collapsed text: equal keys must agree.
    seen: dict[str, str] = {}
    for t in inputs + heldout:
        k = " ".join(t["text"].split())
        assert seen.setdefault(k, t["label"]) == t["label"]
    # ~8% ambiguous in both files.
    assert 0.06 <= n_amb_in / N_INPUT_UNIQUE <= 0.10 and 0.06 <= n_amb_ho / N_HELDOUT <= 0.10
    # Not one-keyword separable: the label's own word appears in a minority of its tickets.
    for label in LABELS:
        word = {"feature_request": "feature", "account_update": "account update", "how_to": "how to"}.get(label, label)
        rows = [t for t in inputs if t["label"] == label]
        frac = sum(word in t["text"].lower() for t in rows) / len(rows)
        assert frac < 0.35, (label, frac)
    # Length variety: terse messages and multi-sentence emails both present.
    words = [len(t["text"].split()) for t in inputs]
    assert sum(w <= 4 for w in words) >= 40 and sum(w >= 45 for w in words) >= 50
    print(
        f"inputs: {len(inputs)} ({n_amb_in} ambiguous, {N_DUPLICATES} deliberate duplicates); "
        f"heldout: {len(heldout)} ({n_amb_ho} ambiguous); teacher_key: {len(inputs) + len(heldout)} lines"
    )


def readme(in_counts: Counter, ho_counts: Counter, n_amb_in: int, n_amb_ho: int) -> str:
    rows = "\n".join(f"| `{l}` | {DEFINITIONS[l]} | {in_counts[l]} | {ho_counts[l]} |" for l in LABELS)
    return f"""# Support tickets: the quickstart dataset

Synthetic customer-support tickets for a SaaS product, to be sorted into 12 categories.
This is the dataset the quickstart distils a classifier from: the inputs are labelled by a
(simulated) teacher, and the student is evaluated on the gold-labelled held-out set.

## Files

| File | Rows | Contents |
|---|---|---|
| `inputs.jsonl` | {N_INPUTS} | unlabelled tickets, `{{"id": "t0001", "text": "..."}}` |
| `heldout.jsonl` | {N_HELDOUT} | gold-labelled tickets for evaluation, `{{"id": "h0001", "text": "...", "label": "..."}}` |
| `teacher_key.jsonl` | {N_INPUTS + N_HELDOUT} | answer key of the *simulated* teacher, one line per input and per held-out ticket: `{{"text", "label", "alternatives"}}` |
| `generate.py` | | the generator; `python data/tickets/generate.py` (from the repository root) rewrites all four files byte-identically |

`alternatives` lists one or two labels a reasonable annotator could confuse the ticket with; the
simulated teacher draws most of its mistakes from the first one. The teacher key is the stand-in
teacher's knowledge, not training data: do not train or evaluate on it directly.

## Categories

| Label | Meaning | Inputs | Held-out |
|---|---|---:|---:|
{rows}
| **total** | | **{N_INPUTS}** | **{N_HELDOUT}** |

## How it was made

Written for this project by a seeded template generator (`generate.py`, Python standard library
only) with hand-written phrasings: 25-30 core phrasings per category with slots (amounts, plans,
order and invoice numbers, dates, browsers, operating systems, integrations such as Slack,
Salesforce, Zapier and Shopify, ...), terse one-liners, category-specific detail sentences, and
shared greetings, context sentences, closers and sign-offs. Tone varies on purpose: polite, angry,
terse, confused, formal, non-native English, lowercase, dropped apostrophes, occasional typos,
ALL-CAPS fragments and rare emoji. Lengths run from two- or three-word messages to six-sentence
emails. No existing dataset was copied. All names, companies, e-mail addresses and numbers are
invented (addresses use `example.*` domains).

- **Ambiguous tickets:** about 8% are deliberately ambiguous ({n_amb_in} inputs, {n_amb_ho} held-out): they
  raise two categories' concerns (e.g. charged after cancelling and wanting the money back;
  a page that is both slow and crashing). The label is the primary intent; the first alternative
  is the other plausible reading.
- **Duplicates:** {N_DUPLICATES} inputs are deliberate duplicates of other inputs (the same ticket sent twice,
  sometimes with different case, whitespace or punctuation), so a dedup filter has something
  to find. Apart from these, no two inputs are the same after lowercasing and removing
  punctuation and extra whitespace.
- **Held-out separation:** no held-out text equals an input text under that normalisation. Held-out
  tickets are drawn from the same generator, so held-out accuracy measures in-distribution
  performance; it is not a test on real customer data.

## Licence

Apache-2.0, the same as the project.
"""


if __name__ == "__main__":
    main()
