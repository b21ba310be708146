"""Build ``report.html``: one self-contained file, figures embedded."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.report.figures import dot_interval, histogram

__all__ = ["write_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:right}th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.note{color:#555;font-size:.9em}
"""

# Marks the page once every figure has decoded (browsers and tests can check the
# attribute); a figure that fails to decode is reported on the console.
CHECK_SCRIPT = (
    "window.addEventListener('load',function(){var bad=0;"
    "for(var i=0;i<document.images.length;i++){var im=document.images[i];"
    "if(!im.complete||im.naturalWidth===0){bad++;console.error('figure failed: '+im.alt);}}"
    "document.body.setAttribute('data-figures',document.images.length);"
    "document.body.setAttribute('data-figures-broken',bad);});"
)

REFERENCES = [
    "Deming, W. E. & Stephan, F. F. (1940). Ann. Math. Statist. 11, 427-444.",
    "Deville, J.-C. & Särndal, C.-E. (1992). Calibration estimators in survey sampling. JASA 87, 376-382.",
    "Lumley, T. (2010). Complex Surveys: A Guide to Analysis Using R. Wiley.",
    "Gelman, A. & Little, T. C. (1997). Poststratification into many categories using hierarchical "
    "logistic regression. Survey Methodology 23, 127-135.",
    "Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models using "
    "lme4. J. Stat. Softw. 67(1).",
    "Rue, H., Martino, S. & Chopin, N. (2009). Approximate Bayesian inference for latent Gaussian models "
    "(INLA). JRSS B 71, 319-392.",
    "Schouten, B., Cobben, F. & Bethlehem, J. (2009). Indicators for the representativeness of survey "
    "response. Survey Methodology 35, 101-113.",
]


def _table(frame: pd.DataFrame, *, max_rows: int = 40) -> str:
    shown = frame.head(max_rows)
    return shown.to_html(index=False, border=0, float_format=_number, na_rep="")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _figure(png: str, caption: str) -> str:
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{png}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_report(path: Path, *, results: dict[str, Any], tables: dict[str, pd.DataFrame],
                 coverage: Any, weighting: Any, model: Any, inputs: Any, settings: Any) -> Path:
    """Write the report and return its path."""
    by_area = tables["by_area"]
    parts: list[str] = []
    parts.append("<h1>Unmet need for adult social care and self-funders</h1>")
    parts.append(f'<p class="note">Inputs: {html.escape(inputs.description)}. '
                 f"{settings.draws} draws, seed {settings.seed}, {settings.level:.0%} intervals. "
                 "Estimates are posterior means; intervals equal-tailed.</p>")

    # Headline estimates by area.
    parts.append("<h2>Headline estimates by council area</h2>")
    england = results[settings.by[0]].draws
    totals = {q: float(england[q].sum(dim=settings.by[0]).mean()) for q in
              ("need", "council_funded", "self_funded", "unpaid_only", "unmet", "insufficient")}
    parts.append(_table(pd.DataFrame({"quantity": list(totals), "England (posterior mean)": list(totals.values())})))
    for quantity, label in (("unmet", "Unmet need (no help at all)"), ("self_funded", "Self-funders")):
        rows = by_area[(by_area["quantity"] == quantity) & (by_area["measure"] == "rate_per_1000")].dropna(subset=["estimate"])
        if len(rows):
            parts.append(_figure(dot_interval(rows, label="area_name" if rows["area_name"].notna().all() else "area_code",
                                              title=f"{label} per 1,000 adults, by council",
                                              xlabel="per 1,000 adults"),
                                 f"{label} per 1,000 adults by council area, sorted, with intervals "
                                 "(red: low reliability)"))

    # By characteristic.
    parts.append("<h2>By characteristic</h2>")
    chars = tables["by_characteristic"]
    for characteristic in settings.by[1:]:
        rows = chars[(chars["characteristic"] == characteristic) & (chars["quantity"] == "unmet")
                     & (chars["measure"] == "rate_per_1000")].dropna(subset=["estimate"])
        if len(rows):
            parts.append(_figure(dot_interval(rows, label="category", title=f"Unmet need per 1,000 adults by {characteristic}",
                                              xlabel="per 1,000 adults"),
                                 f"Unmet need by {characteristic} (all categories, with quality flags)"))
    flags = chars.groupby(["characteristic", "flag"]).size().unstack(fill_value=0).reset_index()
    parts.append("<p>Quality flags by characteristic (rows of the published table):</p>" + _table(flags))

    # Coverage.
    parts.append("<h2>Who each data source misses (coverage gaps)</h2>")
    if coverage is not None:
        table = coverage.to_frame()
        summary = table.groupby(["source", "target"])[["covered", "target_estimate", "uncovered"]].sum().reset_index()
        summary["coverage"] = summary["covered"] / summary["target_estimate"]
        parts.append(_table(summary))
        rows = table[table["source"] == table["source"].iloc[0]].rename(
            columns={"coverage": "estimate", "coverage_lower": "ci_lower", "coverage_upper": "ci_upper"})
        parts.append(_figure(dot_interval(rows, label="area_code", title=f"Coverage of {rows['source'].iloc[0]} by area",
                                          xlabel="covered / target"),
                             "Share of the target population the source covers, by area"))
        excluded = getattr(coverage, "excluded", None)
        if isinstance(excluded, pd.DataFrame) and len(excluded):
            parts.append("<p>Groups excluded from council data by design:</p>" + _table(excluded.head(20)))
    else:
        parts.append("<p>No coverage sources were given.</p>")

    # Weighting diagnostics.
    parts.append("<h2>Weighting diagnostics</h2>")
    if weighting is not None:
        report = weighting.report
        parts.append(f"<pre>{html.escape(report.summary())}</pre>")
        parts.append(_table(report.margin_fit))
        parts.append(_figure(histogram(weighting.design.weights, title="Weights after raking", xlabel="weight"),
                             "Distribution of the general survey's weights after raking"))
    # Model diagnostics.
    parts.append("<h2>Model diagnostics</h2>")
    rows = []
    for name, fit in model.fits.items():
        for factor, sd in fit.variance_components.items():
            pooled = fit.random_effects[factor]["sd"].mean() / sd if sd > 0 else 1.0
            rows.append({"model": name, "factor": factor, "sd": sd, "mean conditional sd / sd (shrinkage)": pooled,
                         "singular": bool(fit.singular)})
    parts.append(_table(pd.DataFrame(rows), max_rows=60))
    # Methods and disclosure.
    parts.append("<h2>Data sources and methods</h2>")
    parts.append("<p>The general-population survey is raked to census margins; a chain of multilevel "
                 "logistic models (need; any help given need; paid given help; council funding given paid; "
                 "help not enough given help) is fitted by the Laplace approximation and its draws, which "
                 "integrate over the random-effect standard deviations, are poststratified to the census "
                 "cells. Council-funded counts are benchmarked to administrative data. Methods: "
                 "docs/methods/.</p><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in REFERENCES) + "</ul>")
    parts.append("<h2>Disclosure control</h2>")
    description = by_area.attrs.get("disclosure_text") or _disclosure_text(by_area)
    parts.append(f"<p>{html.escape(description)}</p>")
    body = "\n".join(parts)
    document = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>unmetneed report</title><style>{CSS}</style></head><body>{body}"
                f"<script>{CHECK_SCRIPT}</script></body></html>\n")
    path.write_text(document, encoding="utf-8")
    return path


def _disclosure_text(table: pd.DataFrame) -> str:
    try:
        from unmetneed.disclosure import describe_protection

        return describe_protection(table)
    except (ImportError, KeyError, ValueError, TypeError):
        rules = table.attrs.get("disclosure", {})
        return f"Disclosure rules applied: {rules}" if rules else "No disclosure control recorded."
