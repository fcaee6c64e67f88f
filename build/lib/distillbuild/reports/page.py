"""`distill report`: the last build as one self-contained HTML page a reviewer can open anywhere.

Each stage gives its parts from its own outputs (nothing is recomputed): the verdict and the
headline metrics, the teacher's calls, cache and cost, the filter's reasons with examples of
rejected rows, the class balance, the training curves, the confusion matrix and per-class F1,
latency and the machine it was measured on, the gates, the route's coverage/accuracy curve and
the export when built, lineage and the model card. Charts are inline SVG; a Content-Security-Policy forbids the page any
request, so it renders the same offline, in CI artifacts and in mail.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from distillbuild import layout
from distillbuild.pipeline import stage_list
from distillbuild.spec import Spec

EXAMPLES_PER_REASON = 3

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2933;max-width:1080px;margin:24px auto;padding:0 20px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d9dee4;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 10px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{color:#6b7785;font-weight:600} .num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1e7b45;font-weight:700} .fail{color:#b42323;font-weight:700} .muted{color:#6b7785}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:700}
.badge.pass{background:#1e7b45;color:#fff} .badge.fail{background:#b42323;color:#fff}
.warn{background:#fff4e0;border:1px solid #f0c36d;padding:8px 12px;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:18px} svg.chart{background:#fff;font-size:11px}
svg .t{font-size:13px;font-weight:600;fill:#1f2933} svg .m{fill:#4a5561} svg .w{fill:#fff} svg text{fill:#1f2933}
pre{background:#f6f8fa;padding:12px;overflow:auto;font-size:12px;white-space:pre-wrap} code{font-size:12px}
"""


def _title(spec: Spec) -> str:
    """The spec's name and what it distils, from the spec alone."""
    return (
        f"<h1>{escape(spec.name)}</h1>"
        f"<p class=muted>{escape(spec.task.type)} &middot; student {escape(spec.student.kind)} "
        f"<code>{escape(spec.student.base_model)}</code> &middot; teacher <code>{escape(spec.teacher.provider)}:"
        f"{escape(spec.teacher.model)}</code></p>"
    )


def render(spec: Spec) -> str:
    # The title; the first screen, outcome first (each stage's headline_html from the last stage
    # back: the verdict, the metrics it judged, how the answers were made); then each stage's own
    # section (its report_html) in pipeline order.
    stages = stage_list.of_spec(spec)
    headline = [s.headline_html(spec) for s in reversed(stages)]
    sections = [_title(spec), *headline, *(s.report_html(spec) for s in stages)]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(spec.name)}: distillbuild report</title><style>{STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write(spec: Spec, out: Path | None = None) -> Path:
    target = out or spec.dir / layout.BUILD / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(spec), encoding="utf-8")
    return target
