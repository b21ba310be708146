"""The documentation site builds with ``mkdocs build --strict``, offline.

Strict mode turns every MkDocs warning into a failure: a broken link or
anchor, a page missing from the nav, an API object that mkdocstrings cannot
find or render, a missing ``--8<--`` snippet. One build (about 10-20 s) is
shared by the checks of this module.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 120  # the build takes 10-20 s; this only stops a hung build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ)
    # Any attempt to reach the network fails at once (the build must work offline).
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[name] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    env["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's banner about MkDocs 2.0; not a doc warning
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def _page(site: Path, name: str) -> str:
    path = site / name / "index.html" if name else site / "index.html"
    assert path.is_file(), f"{path.relative_to(site)} was not built"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "getting-started",
        "errors",
        "guide/design",
        "guide/weighting",
        "guide/mrp",
        "guide/estimates",
        "guide/coverage",
        "guide/disclosure",
        "guide/io",
        "guide/cli",
        "methods/variance",
        "methods/weighting",
        "methods/mrp",
        "api",
        "api/design",
        "api/errors",
    ],
)
def test_page_is_built(site: Path, name: str) -> None:
    assert "<h1" in _page(site, name)


def test_api_page_renders_the_docstring_of_survey_design(site: Path) -> None:
    html = _page(site, "api/design")
    assert 'id="unmetneed.SurveyDesign"' in html
    for section in ("Parameters:", "Raises:", "Examples:"):
        assert section in html, f"docstring section {section!r} not rendered"
    # A parameter description from SurveyDesign's numpydoc docstring.
    assert "Column of first-stage strata." in html


def test_sphinx_roles_become_markdown(site: Path) -> None:
    # docs/_ext/griffe_rst.py rewrites :func:/:math: roles; none may show raw.
    html = _page(site, "api/weighting")
    assert not re.search(r":(func|class|meth|math|attr|mod):`", html)
    assert 'class="arithmatex"' in html


def test_math_and_scripts_are_local(site: Path) -> None:
    html = _page(site, "methods/mrp")
    assert 'class="arithmatex"' in html
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert any(s.endswith("javascripts/mathjax/tex-svg-full.js") for s in scripts)
    remote = [s for s in scripts if re.match(r"(https?:)?//", s)]
    assert not remote, f"pages load scripts from the network: {remote}"
    assert (site / "javascripts" / "mathjax" / "tex-svg-full.js").is_file()


def test_errors_page_lists_every_error_and_warning(site: Path) -> None:
    import unmetneed.errors
    from unmetneed.estimates import BenchmarkWarning
    from unmetneed.mrp import NewLevelWarning, SingularFitWarning

    html = _page(site, "errors")
    names = [*unmetneed.errors.__all__, *(w.__name__ for w in (BenchmarkWarning, NewLevelWarning, SingularFitWarning))]
    missing = [name for name in names if f"<code>{name}</code>" not in html and f"{name}</code>" not in html]
    assert not missing, f"docs/errors.md does not describe {missing}"


def test_helper_files_are_not_published(site: Path) -> None:
    assert not (site / "_ext").exists()
