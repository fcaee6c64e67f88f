"""The documentation: a short README whose example spec is valid, and a site that builds with
`mkdocs build --strict` (a broken link, a missing anchor or a page left out of the navigation
fails), whose layout page names every package there is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from distillbuild.spec import load_spec

pytestmark = pytest.mark.unit  # `make test-unit`: no torch, no `dvc repro`

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 150


def test_the_readmes_example_spec_is_valid(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("inputs", "heldout"):
        lines = (ROOT / f"data/tickets/{name}.jsonl").read_text(encoding="utf-8").splitlines()[:40]
        (tmp_path / f"data/{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec_text = re.search(r"```yaml\n(.*?)```", README, re.S).group(1)
    (tmp_path / "distill.yaml").write_text(spec_text, encoding="utf-8")
    spec = load_spec(tmp_path / "distill.yaml")
    assert spec.task.labels == ("billing", "refund", "login", "bug") and spec.filters.threshold_target


def test_every_link_in_the_readme_resolves():
    targets = [t for t in re.findall(r"\]\(([^)#]+)", README) if not t.startswith("http")]
    assert targets and [t for t in targets if not (ROOT / t).exists()] == []


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site/architecture/index.html").read_text(encoding="utf-8").count("pipeline/stages/") > 0


def test_the_layout_pages_name_every_package():
    packages = sorted(p.name for p in (ROOT / "distillbuild").iterdir() if (p / "__init__.py").exists())
    for page in ("docs/layout.md", "ARCHITECTURE.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert [p for p in packages if f"{p}/" not in text] == [], page
