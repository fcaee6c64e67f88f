"""The serving image, without Docker: the Dockerfile's pick stage and its ENTRYPOINT, read from
the Dockerfile and run as they are, in the environment the image installs (.venv-serve: the
serving requirements and this package, no torch, no DVC), with the image's environment
variables. The server answers the `openai` SDK with the image's key, refuses a wrong one, holds
none of the training data, and stops cleanly on SIGTERM, as `docker stop` sends it."""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
import time

import httpx
import pytest
import yaml
from conftest import LABELS, ROOT, base_spec
from openai import AuthenticationError, OpenAI

SERVE_VENV = ROOT / ".venv-serve"
KEY = "sk-image-" + "i" * 24

pytestmark = pytest.mark.skipif(
    not (SERVE_VENV / ".installed").is_file(), reason="the image's environment: `make .venv-serve/.installed`"
)


def _dockerfile() -> dict:
    """The parts of the Dockerfile the test runs: the pick command, ENV, WORKDIR, ENTRYPOINT."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    env = {}
    for line in lines:
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))
    pick = next(line[4:] for line in lines if line.startswith("RUN python -m distillbuild.serve.bundle"))
    return {
        "env": env,
        "pick": shlex.split(pick),
        "workdir": [line[8:] for line in lines if line.startswith("WORKDIR ")][-1],
        "entrypoint": json.loads(next(line[11:] for line in lines if line.startswith("ENTRYPOINT "))),
    }


@pytest.fixture
def pipeline(project, student):
    """A built pipeline as `dvc repro` leaves it: its data, the trained model and the ONNX export."""
    import shutil

    from distillbuild.export.onnx_classifier import export_onnx
    from distillbuild.train.encoder import EncoderClassifier

    spec = base_spec()
    spec["export"] = {"format": "onnx"}
    project(spec)
    shutil.copytree(student, project.root / "build/model")
    export_onnx(EncoderClassifier.load(student), project.root / "build/export/model", opset=17, quantize="none")
    return project.root


def test_the_image_entrypoint_serves_the_sdk_with_no_build_tools(pipeline, tmp_path):
    image = _dockerfile()
    python = SERVE_VENV / "bin/python"
    assert image["entrypoint"][:3] == ["distill", "serve", "distill.yaml"]
    # No build tools in the image's environment.
    for module in ("torch", "dvc", "deepeval", "axolotl", "peft", "datasketch"):
        assert subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0, module

    # The pick stage, as the Dockerfile runs it, with the pipeline where the image copies it.
    srv = tmp_path / image["workdir"].lstrip("/")
    places = {"/pipeline": str(pipeline), image["workdir"]: str(srv)}
    pick = [places.get(arg, arg) for arg in image["pick"]]
    assert pick[0] == "python"
    subprocess.run([python, *pick[1:]], check=True, capture_output=True)
    held = sorted(str(p.relative_to(srv)) for p in srv.rglob("*") if p.is_file())
    assert "distill.yaml" in held and "build/export/model/model.onnx" in held
    assert not [p for p in held if p.startswith(("data/", "build/model/"))]  # no dataset, no PyTorch model

    # The entrypoint, as `docker run IMAGE --port N` runs it.
    port = _free_port()
    env = {"PATH": f"{SERVE_VENV / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), **image["env"]}
    env["DISTILL_SERVE_API_KEYS"] = KEY
    process = subprocess.Popen(
        [*image["entrypoint"], "--port", str(port)],
        cwd=srv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0].decode()
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        client = OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0)
        answer = client.chat.completions.create(
            model="any", messages=[{"role": "user", "content": "I was charged twice"}], logprobs=True
        )
        assert answer.choices[0].message.content in LABELS and answer.model == "mini-student"
        streamed = client.chat.completions.create(
            model="any", messages=[{"role": "user", "content": "I was charged twice"}], stream=True
        )
        assert (
            "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
            == answer.choices[0].message.content
        )
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=base + "/v1", api_key="sk-nope", max_retries=0).chat.completions.create(
                model="any", messages=[{"role": "user", "content": "hi"}]
            )
        health = httpx.get(base + "/health").json()
        assert health["runtime"] == "onnx"
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert yaml.safe_load((srv / "distill.yaml").read_text())["export"] == {"format": "onnx"}
    assert KEY not in output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
