"""DeepEval, kept quiet and offline: one place for the settings every DeepEval user here needs.

DeepEval otherwise phones home at exit, writes .deepeval/ into the working directory and
reads .env files (FIELD-NOTES.md). The settings must be in the environment before deepeval is
first imported; a user's own value wins. Importing deepeval costs 1-2 s, so callers import it
lazily, after `quiet_deepeval()`.
"""

from __future__ import annotations

import os

DEEPEVAL_QUIET = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
    "DEEPEVAL_FILE_SYSTEM": "READ_ONLY",
    "DEEPEVAL_DISABLE_DOTENV": "1",
    "DEEPEVAL_NO_INSPECT_PROMPT": "1",
}


def quiet_deepeval() -> None:
    for name, value in DEEPEVAL_QUIET.items():
        os.environ.setdefault(name, value)
