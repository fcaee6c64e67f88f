"""The peer side of bench/teacher_throughput.py: Bespoke Curator against the parent's simulated server.

Runs with the Curator virtualenv's python, never the project's (Curator is not a dependency):

    /tmp/curator-venv/bin/python bench/_curator_child.py --base-url URL --prompts FILE \
        --concurrency 16 --workdir DIR

FILE is a JSON list of chat message lists (the parent builds them with distillbuild's
`messages_for`, so both clients send identical requests). Prints one JSON line on stdout:
{"version", "n", "ok", "failed", "wall_s", "cpu_s"}; wall_s and cpu_s cover the `llm(rows)` call
only (Curator's import and set-up are excluded, as distillbuild's are).

Offline and private: telemetry off, HOME, Curator's cache and Hugging Face's caches inside DIR,
litellm's bundled cost map, and tiktoken's encodings served by bpe-openai (tiktoken would
download them at first use).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

GENERATION = {"temperature": 0, "max_tokens": 8, "logprobs": True, "top_logprobs": 5}  # as distill.yaml


def offline_environment(workdir: str) -> None:
    """Must run before anything from Curator, litellm or datasets is imported."""
    os.environ.update(
        {
            "HOME": workdir,  # Curator writes its telemetry id to ~/.cache/.curator_config at import
            "TELEMETRY_ENABLED": "false",  # bespokelabs.curator.telemetry.client (PostHog)
            "CURATOR_CACHE_DIR": os.path.join(workdir, "curator-cache"),
            "CURATOR_DISABLE_RICH_DISPLAY": "1",  # plain logging instead of a live progress display
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else litellm fetches its cost map at import
            "HF_HOME": os.path.join(workdir, "hf"),
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "OPENAI_API_KEY": "sk-bench-unused",
        }
    )
    for name in ("CURATOR_VIEWER", "BESPOKE_API_KEY", "OPENAI_BASE_URL", "CURATOR_DISABLE_CACHE"):
        os.environ.pop(name, None)


def patch_tiktoken() -> None:
    import bpe_openai
    import tiktoken

    tiktoken.get_encoding = bpe_openai.get_encoding
    tiktoken.encoding_for_model = bpe_openai.encoding_for_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()

    offline_environment(args.workdir)
    patch_tiktoken()
    import posthog

    posthog.disabled = True  # second lock on the telemetry door
    from importlib.metadata import version

    from bespokelabs import curator

    with open(args.prompts, encoding="utf-8") as fh:
        prompts = json.load(fh)
    rows = [{"messages": m} for m in prompts]

    class Labeller(curator.LLM):
        def prompt(self, row):
            return row["messages"]

        def parse(self, row, response):
            return {"label": response}

    llm = Labeller(
        model_name="gpt-4o-mini",  # a name litellm knows, so its cost lookup works offline
        backend="openai",
        generation_params=dict(GENERATION),
        backend_params={
            "base_url": args.base_url,
            "api_key": "sk-bench-unused",
            "max_concurrent_requests": args.concurrency,  # Curator's in-flight semaphore
            "max_requests_per_minute": 100_000_000,  # never binds
            "max_tokens_per_minute": 10_000_000_000,  # never binds
            "max_retries": 2,
            "request_timeout": 60,
            "require_all_responses": False,
        },
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = llm(rows)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    dataset = result.dataset
    ok = sum(1 for row in dataset if row.get("label"))
    print(
        json.dumps(
            {
                "version": version("bespokelabs-curator"),
                "n": len(rows),
                "ok": ok,
                "failed": len(rows) - ok,
                "wall_s": wall,
                "cpu_s": cpu,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
