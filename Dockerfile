# syntax=docker/dockerfile:1
# One built student behind `distill serve`, with nothing of the build system inside: no DVC, no
# PyTorch, no trainer, no training data. Build from the repository's root, naming the pipeline
# directory to serve (after `dvc repro` or `dvc pull` there):
#
#   docker build --build-arg PIPELINE=. -t ticket-triage:v1.0.0 .
#   docker run --rm -p 8000:8000 -e DISTILL_SERVE_API_KEYS=sk-your-key ticket-triage:v1.0.0
#
# The image serves an ONNX export (`export: {format: onnx}` in the spec). tests/test_container.py
# runs the pick stage and the entrypoint below as they are, in an environment that holds only
# deploy/serve-requirements.txt and this package.

FROM python:3.12-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
COPY deploy/serve-requirements.txt /tmp/serve-requirements.txt
RUN pip install -r /tmp/serve-requirements.txt
COPY pyproject.toml README.md /tmp/src/
COPY schemas /tmp/src/schemas
COPY distillbuild /tmp/src/distillbuild
# --no-deps: the package's full dependencies are the build system's (torch, dvc, deepeval).
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

# The pick stage: from the whole pipeline directory, only what serving reads.
FROM runtime AS pick
ARG PIPELINE=.
COPY ${PIPELINE} /pipeline
RUN python -m distillbuild.serve.bundle /pipeline /srv

FROM runtime
COPY --from=pick /srv /srv
WORKDIR /srv
USER 65534:65534
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
# Keys come from DISTILL_SERVE_API_KEYS (or mount a file and add --api-key-file); without one the
# server refuses to listen on 0.0.0.0. A capture file (serve.capture) needs a writable volume.
ENTRYPOINT ["distill", "serve", "distill.yaml", "--host", "0.0.0.0", "--port", "8000"]
