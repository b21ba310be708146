"""Build ``report.html`` from the run's protected tables: one self-contained file.

The page is rendered by Jinja2 (``templates/report.html.j2``, autoescaped) from a
:class:`~unmetneed.cli.publish.Publication` and nothing else that holds
estimates: England totals, the per-council table, the charts and the coverage
figures are the published (disclosure-controlled) numbers of the CSVs. Model
and weighting diagnostics describe the fit, not the estimates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.report.figures import dot_interval, histogram

__all__ = ["DEFINITIONS", "write_report"]

# Marks the page once every figure has decoded (browsers and tests can check the
# attribute); a figure that fails to decode is reported on the console. The
# search box filters the per-council table.
SCRIPT = (
    "window.addEventListener('load',function(){var bad=0;"
    "for(var i=0;i<document.images.length;i++){var im=document.images[i];"
    "if(!im.complete||im.naturalWidth===0){bad++;console.error('figure failed: '+im.alt);}}"
    "document.body.setAttribute('data-figures',document.images.length);"
    "document.body.setAttribute('data-figures-broken',bad);});"
    "document.getElementById('council-search').addEventListener('input',function(e){"
    "var q=e.target.value.toLowerCase();var rows=document.querySelectorAll('#councils tbody tr');"
    "for(var i=0;i<rows.length;i++){rows[i].style.display="
    "rows[i].textContent.toLowerCase().indexOf(q)>=0?'':'none';}});"
)

DEFINITIONS = [
    (
        "need",
        (
            "Adults who need help with at least one everyday activity (washing, dressing, "
            "eating, moving around the home...), whether or not they get it."
        ),
    ),
    (
        "council_funded",
        ("Adults in need whose paid care is arranged and funded (wholly or partly) by their council."),
    ),
    ("self_funded", "Adults in need who pay for their own care."),
    ("unpaid_only", "Adults in need helped only by family, friends or neighbours (unpaid carers)."),
    ("unmet", "Adults in need who get no help at all."),
    ("insufficient", "Adults who get help but say it is not enough."),
    ("unmet_or_insufficient", "Unmet plus insufficient: no help, or not enough help."),
    ("count", "Estimated number of adults, rounded."),
    (
        "per 1,000 adults",
        (
            "The count divided by the area's (or group's) adult population in the "
            "census, times 1,000; worked out from the rounded count."
        ),
    ),
    (
        "interval",
        (
            "The range the true figure lies in with the stated probability, given the data "
            "and the model (an equal-tailed posterior interval)."
        ),
    ),
    (
        "CV",
        (
            "Coefficient of variation: the standard error as a share of the estimate. The larger "
            "it is, the less precise the figure."
        ),
    ),
    (
        "flag",
        (
            "ok: reliable enough to use; low reliability: CV above the flag limit, use with "
            "care; suppressed: withheld by disclosure control (too small, too unreliable, or "
            "it would reveal another withheld figure)."
        ),
    ),
    (
        "coverage",
        (
            "The share of a target population a data source counts (for example, the "
            "council-funded people the Adult Social Care Survey represents). Above 1 means "
            "the source counts more people than the target holds: an over-count, flagged."
        ),
    ),
]

REFERENCES = [
    "Deming, W. E. & Stephan, F. F. (1940). Ann. Math. Statist. 11, 427-444.",
    "Lumley, T. (2010). Complex Surveys: A Guide to Analysis Using R. Wiley.",
    (
        "Gelman, A. & Little, T. C. (1997). Poststratification into many categories using hierarchical "
        "logistic regression. Survey Methodology 23, 127-135."
    ),
    (
        "Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects models using "
        "lme4. J. Stat. Softw. 67(1)."
    ),
    (
        "Rue, H., Martino, S. & Chopin, N. (2009). Approximate Bayesian inference for latent Gaussian models "
        "(INLA). JRSS B 71, 319-392."
    ),
    (
        "Schouten, B., Cobben, F. & Bethlehem, J. (2009). Indicators for the representativeness of survey "
        "response. Survey Methodology 35, 101-113."
    ),
    (
        "Okabe, M. & Ito, K. (2008). Color Universal Design: how to make figures and presentations that "
        "are friendly to colorblind people (the palette of the figures)."
    ),
]

HEADLINE = ("need", "council_funded", "self_funded", "unpaid_only", "unmet", "insufficient")
FLAG_TEXT = {
    "ok": "ok",
    "low_reliability": "low reliability",
    "suppressed": "suppressed",
    "over_count": "over-count",
}
# SDs of random effects below this are reported as effectively zero.
TINY_SD = 1e-3


def _count(value: Any) -> str:
    return "" if value is None or not np.isfinite(float(value)) else f"{float(value):,.0f}"


def _rate(value: Any) -> str:
    return "" if value is None or not np.isfinite(float(value)) else f"{float(value):,.1f}"


def _share(value: Any) -> str:
    return "" if value is None or not np.isfinite(float(value)) else f"{float(value):.1%}"


def _cv(value: Any) -> str:
    return "" if value is None or not np.isfinite(float(value)) else f"{float(value):.2f}"


def _fmt(measure: str) -> Any:
    return {"count": _count, "rate_per_1000": _rate, "share_of_need": _share}.get(measure, _rate)


def _estimate_cells(row: pd.Series, measure: str) -> list[str]:
    """Estimate, interval, CV and flag of a published row (suppressed shown as such)."""
    if row["flag"] == "suppressed":
        return ["suppressed", "suppressed", "", FLAG_TEXT["suppressed"]]
    fmt = _fmt(measure)
    return [
        fmt(row["estimate"]),
        f"{fmt(row['ci_lower'])} to {fmt(row['ci_upper'])}",
        _cv(row["cv"]),
        FLAG_TEXT.get(row["flag"], str(row["flag"])),
    ]


def _table(caption: str, columns: list[str], rows: list[list[str]], id: str | None = None) -> dict[str, Any]:
    return {"caption": caption, "columns": columns, "rows": rows, "id": id}


def _figure(png: str, *, alt: str, caption: str) -> dict[str, str]:
    return {"png": png, "alt": alt, "caption": caption}


def _dot_figure(
    table: pd.DataFrame,
    *,
    label: str,
    title: str,
    xlabel: str,
    level: float,
    alt: str,
    caption: str,
    reference: float | None = None,
) -> dict[str, str]:
    """A :func:`dot_interval` chart of ``table`` as a report figure."""
    png = dot_interval(table, label=label, title=title, xlabel=xlabel, level=level, reference=reference)
    return _figure(png, alt=alt, caption=caption)


def _all_settings(table: pd.DataFrame) -> pd.DataFrame:
    """The ``all`` rows of a table by setting (the whole table when it has no settings)."""
    if "setting" not in table.columns:
        return table
    return table[table["setting"] == "all"].reset_index(drop=True)


SETTING_TEXT = {"household": "private households", "care_home": "care homes", "all": "all adults"}


def _england_table(england: pd.DataFrame, level: float) -> dict[str, Any]:
    rows = []
    settings = list(pd.unique(england["setting"])) if "setting" in england.columns else [None]
    for setting in settings:
        within = england if setting is None else england[england["setting"] == setting]
        for quantity in pd.unique(within["quantity"]):
            part = within[within["quantity"] == quantity].set_index("measure")
            for measure, label in (
                ("count", "people"),
                ("rate_per_1000", "per 1,000 adults"),
                ("share_of_need", "share of need"),
            ):
                if measure in part.index:
                    row = part.loc[measure]
                    where = [] if setting is None else [SETTING_TEXT.get(setting, setting)]
                    rows.append([*where, quantity, label, *_estimate_cells(row, measure)])
    columns = ["quantity", "measure", "estimate", f"{level:.0%} interval", "CV", "flag"]
    if settings != [None]:
        columns = ["setting", *columns]
    return _table(
        f"England: published totals with {level:.0%} intervals, in private households, "
        "in care homes and for all adults (the same figures as estimates_england.csv; "
        "the console summary shows all adults).",
        columns,
        rows,
    )


def _rows_by_area_quantity(table: pd.DataFrame) -> dict[tuple[Any, Any], dict[Any, Any]]:
    """Each row as a dict, keyed by (area_code, quantity): one lookup per cell of the council
    table instead of a pandas ``.loc`` (each of which copied the table's attrs)."""
    return {(r["area_code"], r["quantity"]): r for r in table.to_dict("records")}


def _council_table(by_area: pd.DataFrame, quantities: list[str], level: float) -> dict[str, Any]:
    counts = _rows_by_area_quantity(by_area[by_area["measure"] == "count"])
    rates = _rows_by_area_quantity(by_area[by_area["measure"] == "rate_per_1000"])
    names = by_area.drop_duplicates("area_code").set_index("area_code")["area_name"]
    rows = []
    for code, name in zip(names.index, names):
        row = [f"{name if isinstance(name, str) else ''} ({code})"]
        for quantity in quantities:
            count = counts[(code, quantity)]
            rate = rates[(code, quantity)]
            if count["flag"] == "suppressed":
                row += ["suppressed", "suppressed"]
                continue
            mark = " (low reliability)" if count["flag"] == "low_reliability" else ""
            if count.get("basis") == "model_no_respondents":
                mark += " (no respondents: model only)"
            elif count.get("basis") == "admin":
                mark += " (admin count)"
            row.append(
                f"{_count(count['estimate'])} ({_count(count['ci_lower'])}\u2013"
                f"{_count(count['ci_upper'])}){mark}"
            )
            row.append(
                f"{_rate(rate['estimate'])} ({_rate(rate['ci_lower'])}\u2013{_rate(rate['ci_upper'])})"
                if rate["flag"] != "suppressed"
                else "suppressed"
            )
        rows.append(row)
    columns = ["council (code)"]
    for quantity in quantities:
        columns += [f"{quantity}: people ({level:.0%} interval)", f"{quantity}: per 1,000 (interval)"]
    return _table(
        f"Every council: published counts with {level:.0%} intervals and rates per 1,000 "
        "adults; 'suppressed' marks figures withheld by disclosure control, 'no respondents: "
        "model only' a council without survey respondents (its figures come from the "
        "model's covariates and the spread of councils), 'admin count' a figure fixed to "
        "the council's own count. Use the search box to find a council.",
        columns,
        rows,
        id="councils",
    )


def _labelled_councils(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Council rows with a chart ``label`` (the name, else the code), and how many are suppressed."""
    labelled = rows.assign(label=rows["area_name"].where(rows["area_name"].notna(), rows["area_code"]))
    return labelled, int((labelled["flag"] == "suppressed").sum())


def _area_figures(by_area: pd.DataFrame, level: float) -> list[dict[str, str]]:
    figures = []
    for quantity, label in (("unmet", "Unmet need (no help at all)"), ("self_funded", "Self-funders")):
        rows = by_area[(by_area["quantity"] == quantity) & (by_area["measure"] == "rate_per_1000")]
        if not len(rows):
            continue
        rows, suppressed = _labelled_councils(rows)
        figures.append(
            _dot_figure(
                rows,
                label="label",
                title=f"{label} per 1,000 adults, by council",
                xlabel="per 1,000 adults",
                level=level,
                alt=(
                    f"Dot-and-interval chart of {label.lower()} per 1,000 adults for {len(rows)} councils, "
                    f"sorted from lowest (top) to highest (bottom); {suppressed} councils are suppressed "
                    "and listed first, at the top, with a grey cross."
                ),
                caption=(
                    f"{label} per 1,000 adults by council, sorted, with {level:.0%} intervals. Blue "
                    "circles: reliable; orange diamonds: low reliability; grey crosses: suppressed "
                    f"({suppressed} councils, listed first)."
                ),
            )
        )
    return figures


def _characteristic_parts(chars: pd.DataFrame, characteristics: list[str], level: float) -> tuple[list, list]:
    figures, tables = [], []
    for characteristic in characteristics:
        part = chars[chars["characteristic"] == characteristic]
        rows = part[(part["quantity"] == "unmet") & (part["measure"] == "rate_per_1000")]
        if len(rows):
            figures.append(
                _dot_figure(
                    rows,
                    label="category",
                    title=f"Unmet need per 1,000 adults by {characteristic}",
                    xlabel="per 1,000 adults",
                    level=level,
                    alt=(
                        f"Dot-and-interval chart of unmet need per 1,000 adults for the {len(rows)} "
                        f"categories of {characteristic}, sorted, suppressed categories marked."
                    ),
                    caption=f"Unmet need per 1,000 adults by {characteristic}, with {level:.0%} intervals and flags.",
                )
            )
        body = []
        first: dict[tuple[Any, Any], dict[Any, Any]] = {}  # the first rate row of each cell
        for record in part[part["measure"] == "rate_per_1000"].to_dict("records"):
            first.setdefault((record["category"], record["quantity"]), record)
        for category in pd.unique(part["category"]):
            cells = [str(category)]
            for quantity in HEADLINE:
                r = first.get((category, quantity))
                if r is None:
                    continue
                cells.append(
                    "suppressed"
                    if r["flag"] == "suppressed"
                    else f"{_rate(r['estimate'])} ({_rate(r['ci_lower'])} to {_rate(r['ci_upper'])})"
                    + (" (low reliability)" if r["flag"] == "low_reliability" else "")
                )
            body.append(cells)
        available = set(part["quantity"])
        present = [q for q in HEADLINE if q in available]
        tables.append(
            _table(
                f"Per 1,000 adults by {characteristic}, with {level:.0%} intervals (counts are in "
                "estimates_by_characteristic.csv).",
                [characteristic, *present],
                body,
            )
        )
    return figures, tables


def _coverage_parts(publication: Any, level: float) -> tuple[dict | None, list, str]:
    overall = publication.coverage_england
    table = publication.coverage
    if overall is None or not len(overall):
        return None, [], ""
    rows = []
    for _, r in overall.iterrows():
        if r["flag"] == "suppressed":
            rows.append(
                [
                    r["source"],
                    r["target"],
                    _count(r["covered"]),
                    "suppressed",
                    "suppressed",
                    "suppressed",
                    "suppressed",
                    "suppressed",
                ]
            )
            continue
        rows.append(
            [
                r["source"],
                r["target"],
                _count(r["covered"]),
                _count(r["target_estimate"]),
                _count(r["uncovered"]),
                _count(r["over_count"]),
                f"{_share(r['coverage'])} ({_share(r['coverage_lower'])} to {_share(r['coverage_upper'])})",
                FLAG_TEXT.get(r["flag"], r["flag"]),
            ]
        )
    summary = _table(
        f"England: how many of each target population each source counts, with {level:.0%} intervals.",
        [
            "source",
            "target",
            "counted by the source",
            "target population",
            "not counted",
            "over-count",
            "coverage",
            "flag",
        ],
        rows,
    )
    figures = []
    if "characteristic" in table.columns:  # the charts are by council
        table = table[table["characteristic"] == "area_code"]
    for source in pd.unique(table["source"]):
        part = table[table["source"] == source].rename(
            columns={"coverage": "estimate", "coverage_lower": "ci_lower", "coverage_upper": "ci_upper"}
        )
        part, suppressed = _labelled_councils(part)
        target = part["target"].iloc[0]
        over = int((part["flag"] == "over_count").sum())
        figures.append(
            _dot_figure(
                part,
                label="label",
                title=f"Coverage of {target} by {source}, by council",
                xlabel=f"share of {target} that {source} counts (1 = all)",
                level=level,
                reference=1.0,
                alt=(
                    f"Dot-and-interval chart of the share of {target} that {source} counts, for "
                    f"{len(part)} councils, sorted; a dashed line marks full coverage (1); {over} councils "
                    f"have an over-count and {suppressed} are suppressed."
                ),
                caption=(
                    f"Coverage of {target} by {source}, by council, with {level:.0%} intervals. Pink "
                    f"squares: over-count (the source counts more than the target; {over} councils); "
                    f"grey crosses: suppressed because the target count is itself suppressed "
                    f"({suppressed} councils)."
                ),
            )
        )
    text = (
        "Coverage is the share of a target population a source counts. Where a source counts "
        "more than the modelled target, the excess is reported as an over-count (and 'not "
        "counted' is 0), never as a negative number; it means the source includes people the "
        "target does not (a different setting, age range or year) or that the model "
        "under-estimates the target there."
    )
    return summary, figures, text


CARERS_TEXT = (
    "Census 2021 counts the unpaid carers in each council; councils know the carers they have "
    "assessed or supported (the Survey of Adult Carers in England samples those lists). Carers "
    "unknown to councils are the census count minus the known count; SACE says how many known "
    "carers report that their own support needs are not met. Carers unknown to councils are not "
    "surveyed, so nothing is estimated about their needs. Every council and hours band is in "
    "estimates_carers.csv."
)


def _carers_table(carers: pd.DataFrame | None, level: float) -> dict[str, Any] | None:
    if carers is None or not len(carers):
        return None
    england = carers[(carers["area_code"] == "E92000001") & (carers["unpaid_care"] == "All unpaid carers")]
    rows = []
    for _, r in england.iterrows():
        measure = "share_of_need" if r["measure"] == "share" else "count"
        label = "share" if r["measure"] == "share" else "people"
        rows.append([r["quantity"], label, *_estimate_cells(r, measure)])
    return _table(
        f"England: unpaid carers, published figures with {level:.0%} intervals (the same "
        "figures as estimates_carers.csv).",
        ["quantity", "measure", "estimate", f"{level:.0%} interval", "CV", "flag"],
        rows,
    )


def _excluded_table(excluded: pd.DataFrame) -> dict[str, Any]:
    rows = [
        [r["quantity"], r["who"], _count(r["count"]), _share(r["share_of_need"])]
        for _, r in excluded.iterrows()
    ]
    return _table(
        "England: people in need whom council data (council records, the ASCS and SACE) "
        "leave out by design; sums and differences of the published England counts.",
        ["group", "who", "people", "share of need"],
        rows,
    )


def _model_parts(model: Any) -> tuple[dict[str, Any], list[str], str]:
    rows, notes = [], []
    for name, fit in model.fits.items():
        singular = bool(getattr(fit, "singular", False))
        for factor, sd in fit.variance_components.items():
            sd = float(sd)
            effects = fit.random_effects[factor]
            pooled = float((effects["sd"] / sd).mean()) if sd > TINY_SD else float("nan")
            if sd <= TINY_SD:
                meaning = "effectively zero: no variation by this factor beyond the other terms"
            elif pooled > 0.9:
                meaning = "strongly pooled: groups have little data, estimates lean on the average"
            elif pooled > 0.5:
                meaning = "partly pooled"
            else:
                meaning = "well informed by the data"
            rows.append(
                [
                    name,
                    str(factor),
                    "below 0.001" if sd <= TINY_SD else f"{sd:.3f}",
                    "" if not np.isfinite(pooled) else f"{pooled:.2f}",
                    meaning,
                ]
            )
        if singular:
            zero = [str(f) for f, s in fit.variance_components.items() if float(s) <= TINY_SD]
            notes.append(
                f"The {name} model is singular: the SD of {', '.join(zero) or 'a factor'} is "
                "estimated at (or next to) zero. This is common and harmless for prediction: "
                "that factor adds nothing once the others are in the model, so its groups "
                "share one effect."
            )
    table = _table(
        "Random-effect standard deviations of each model (log-odds scale) and how much the "
        "group effects are pooled towards the average.",
        ["model", "grouping factor", "SD", "mean posterior SD / SD", "what it means"],
        rows,
    )
    text = (
        "Each link of the chain is a multilevel logistic regression. A grouping factor's SD "
        "says how much the log-odds vary between its groups; the ratio of a group's posterior "
        "SD to that SD says how much the group's own data inform its effect (near 1: hardly at "
        "all, so the estimate leans on the average of all groups, which is how small areas "
        "borrow strength)."
    )
    return table, notes, text


def write_report(
    path: Path, *, publication: Any, coverage: Any, weighting: Any, model: Any, inputs: Any, settings: Any
) -> Path:
    """Write the report from the run's protected tables and return its path."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    level = settings.level
    # Council and characteristic tables and charts show all adults (households and care
    # homes together); every setting is in the CSVs and the England table.
    by_area = _all_settings(publication.by_area)
    available = set(by_area["quantity"])
    quantities = [q for q in HEADLINE if q in available]
    char_figures, char_tables = _characteristic_parts(
        _all_settings(publication.by_characteristic), list(settings.by[1:]), level
    )
    coverage_overall, coverage_figures, coverage_text = _coverage_parts(publication, level)
    models, model_notes, model_text = _model_parts(model)
    context: dict[str, Any] = {
        "inputs": inputs.description,
        "draws": settings.draws,
        "seed": settings.seed,
        "level_text": f"{level:.0%}",
        "rounding": publication.rules.get("rounding") or 1,
        "definitions": DEFINITIONS,
        "england": _england_table(publication.england, level),
        "area_figures": _area_figures(by_area, level),
        "councils": _council_table(by_area, quantities, level),
        "characteristic_figures": char_figures,
        "characteristic_tables": char_tables,
        "coverage_overall": coverage_overall,
        "coverage_figures": coverage_figures,
        "coverage_text": coverage_text,
        "excluded": _excluded_table(publication.excluded_england),
        "carers": _carers_table(getattr(publication, "carers", None), level),
        "carers_text": CARERS_TEXT,
        "models": models,
        "model_notes": model_notes,
        "model_text": model_text,
        "methods": _methods(
            model,
            settings,
            care_homes="care_home" in set(publication.england.get("setting", pd.Series(dtype=object))),
        ),
        "references": REFERENCES,
        "disclosure": _disclosure(publication),
        "script": SCRIPT,
        "weighting_summary": None,
        "weighting_text": "",
        "margin_fit": None,
        "weighting_figures": [],
    }
    if weighting is not None:
        report = weighting.report
        fit = report.margin_fit
        context["weighting_summary"] = report.summary()
        context["weighting_text"] = (
            "The general survey's weights are raked to the census margins below as a check of how "
            "far its respondents are from the population (large adjustments or extreme weights "
            "signal an unrepresentative sample). The raked weights are a diagnostic: the models "
            "below are fitted to the respondents, and the census enters through "
            "poststratification."
        )
        context["margin_fit"] = _table(
            "Census margins the general survey was raked to, and how closely the raked weights meet them.",
            [str(c) for c in fit.columns],
            [[_cell(v) for v in row] for row in fit.itertuples(index=False)],
        )
        context["weighting_figures"] = [
            _figure(
                histogram(weighting.design.weights, title="Weights after raking", xlabel="weight"),
                alt="Histogram of the general survey's raked weights on a log count scale.",
                caption="Distribution of the general survey's weights after raking (log scale of counts).",
            )
        ]
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    document = environment.get_template("report.html.j2").render(**context)
    path.write_text(document, encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return ""
        return f"{value:,.0f}" if abs(float(value)) >= 1000 else f"{value:.4g}"
    return str(value)


def _methods(model: Any, settings: Any, *, care_homes: bool = False) -> list[str]:
    weighted = getattr(model, "weighted", False)
    homes = (
        "Care-home residents are estimated apart from private households. Everyone in a "
        "care home needs care and gets it: need is the census count of residents, and none "
        "is unpaid-only or unmet. Each council's share of self-funding residents comes from "
        "the providers' returns weighted to the register of care homes (as ONS does), "
        "smoothed by a Fay-Herriot model with council covariates (given the councils' own "
        "counts of the residents they fund, the council-funded share those imply is one, "
        "through a measurement-error Fay-Herriot model; the formula that ran is in "
        "provenance.json, settings.care_homes); it is drawn with its "
        "uncertainty and spread across the council's residents by the household model's odds "
        "of self-funding. Council-funded residents are the others (state-funded, as ONS "
        "counts them). 'All adults' is households plus care homes in every draw. Whether "
        "care-home residents' help is enough is asked by no source used here, so "
        "'insufficient' is published for households only."
        if care_homes
        else "The population frame has no care-home rows: every figure is for private households."
    )
    sampled = ["sampled from a t" in str(d.attrs.get("method", "")) for d in model.link_draws.values()]
    support = (
        "points sampled around a grid over their posterior, importance-weighted"
        if all(sampled)
        else "a grid over their posterior"
        if not any(sampled)
        else f"points sampled around a grid over their posterior for {sum(sampled)} of the "
        f"{len(sampled)} models, the grid itself for the others"
    )
    return [
        (
            "A chain of multilevel logistic models is fitted to the general-population survey's "
            f"respondents ({'with' if weighted else 'without'} their survey weights): need; any help "
            "given need; paid help given help; council funding given paid help; help not enough given "
            "help. Each model has random intercepts for council, age band, the five broad and the "
            "19 detailed ethnic groups (detailed groups nested in broad ones), disability and age "
            "band by disability, as the formulas in provenance.json say. The models are fitted by "
            "the Laplace approximation (as lme4's glmer); their draws integrate over the "
            f"random-effect standard deviations ({support}) and are importance-resampled to the "
            "exact posterior on those points, then poststratified to every census cell of every "
            "council and added up. Estimates are posterior means; intervals are quantiles of the draws."
        ),
        (
            "Council-funded counts are benchmarked to the councils' administrative counts: in "
            "every council and draw each part of need is rescaled by how it moves with the "
            "council-funded total across the draws (an ensemble Kalman update of the log totals), "
            "so council_funded equals the administrative count, need is the sum of the parts and "
            "no part goes below zero."
            if settings.benchmark
            else "The estimates are not benchmarked to administrative counts."
        ),
        homes,
        (
            "Coverage gaps compare each council data source (weighted counts of its respondents) "
            "with the population it should represent, by council and by each characteristic (the "
            "share of the group's modelled need the source reaches; groups clearly below the "
            "source's average are flagged). The formulas and references are in the package "
            "documentation (docs/methods/)."
        ),
    ]


def _disclosure(publication: Any) -> list[str]:
    rules = publication.rules
    counts = publication.by_area
    suppressed = int((counts["flag"] == "suppressed").sum())
    text = [
        (
            f"Counts are rounded to the nearest {rules.get('rounding') or 1} and suppressed below "
            f"{rules.get('min_count')}; any figure with a CV above {rules.get('suppress_cv')} is "
            f"suppressed and above {rules.get('flag_cv')} flagged low reliability. Secondary "
            "suppression makes sure no suppressed count can be worked out from the published "
            "totals: areas add up to England, the categories of each characteristic add up to "
            "England, need is the sum of council-funded, self-funded, unpaid-only and unmet, and "
            "all adults are private households plus care homes. "
            "Rates per 1,000 and shares of need are worked out from the rounded counts, so they "
            "give nothing finer back."
        ),
        f"In the council table {suppressed} of {len(counts)} figures are suppressed.",
    ]
    described = counts.attrs.get("disclosure_text")
    if described:
        text.append(described)
    return text
