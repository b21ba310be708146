"""No suppressed figure leaks: not in report.html, the CSVs or the console, not as a difference.

The run keeps its unprotected draws (``internal/``, not for publication); from them
the test computes every suppressed cell's value and looks for any rendering of it
in everything the run publishes. A rendering that is also the rendering of some
published figure (another cell that happens to round the same way) proves nothing
and is left out. Then every additive line of the published tables (areas adding
up to England, categories of a characteristic adding up to England, need = its
four parts, unmet_or_insufficient = unmet + insufficient) must hold either no or
at least two suppressed cells, so no suppressed cell is the difference of
published figures; and coverage rows must be suppressed with their target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

ENGLAND = "E92000001"
PARTS = ["council_funded", "self_funded", "unpaid_only", "unmet"]
# A number as a reader sees it: not part of a word, a code, a checksum or a version
# (sha256, E06000001, 9f3a..., 3.11.2).
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?(?![\w]|\.\d)")
PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.~-]+){2,}[\\/]?")
PUBLISHED = ["estimates_by_area.csv", "estimates_by_characteristic.csv", "estimates_england.csv",
             "coverage_gaps.csv", "estimates_carers.csv", "report.html", "summary.txt", "provenance.json"]


def renderings(value: float) -> set[str]:
    """Ways a number is commonly written, kept when they carry 3+ significant digits."""
    out = set()
    for text in (f"{value:.0f}", f"{value:,.0f}", f"{value:.1f}", f"{value:,.1f}", f"{value:.2f}",
                 f"{value:.3f}", f"{value:.4g}", f"{value:.6g}", f"{value:.10g}", f"{value:.1%}"[:-1],
                 f"{5 * round(value / 5):.0f}", f"{10 * round(value / 10):.0f}"):
        digits = text.replace(",", "").replace("-", "").replace(".", "").lstrip("0")
        if len(digits) >= 3:
            out.add(text)
    return out


def unprotected(folder: Path, key: str, draws_name: str) -> pd.DataFrame:
    """Every cell's value from the draws: count, rate_per_1000 and share_of_need (by setting)."""
    with xr.open_dataset(folder / "internal" / draws_name) as draws:
        draws = draws.load()
    frames = []
    population = draws["population"].isel(draw=0)
    for quantity in [v for v in draws.data_vars if v != "population"]:
        count = draws[quantity]
        values = {"count": count, "rate_per_1000": 1000 * count / population,
                  "share_of_need": count / draws["need"]}
        for measure, array in values.items():
            mean = array.mean("draw").to_series().rename("value").reset_index()
            se = array.std("draw", ddof=1).to_series()
            frame = mean.assign(quantity=quantity, measure=measure, value_se=se.to_numpy())
            frame[key] = frame[key].astype(str)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def published(run_console: tuple[Path, str]) -> dict[str, str]:
    folder, console = run_console
    texts = {name: (folder / name).read_text(encoding="utf-8") for name in PUBLISHED}
    # Provenance numbers that are not figures: run times, checksums,
    # and the run's options and versions (draws = 100, seed, python 3.11.2).
    provenance = json.loads(texts["provenance.json"])
    for key in ("timings_seconds", "input_checksums_sha256", "outputs_sha256",
                "internal_not_for_publication", "config", "settings", "disclosure", "dependencies",
                "python", "platform", "version"):
        provenance.pop(key, None)
    texts["provenance.json"] = json.dumps(provenance)
    # Embedded figures are base64 and the style sheet has colours (#333): neither holds
    # numbers a reader sees.
    report = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", texts["report.html"])
    texts["report.html"] = re.sub(r"<(style|script)>.*?</\1>", "", report, flags=re.DOTALL)
    # The weighting and model diagnostics and the methods are rendered from the fits, which
    # hold no cell's estimate; their numbers (iterations, SDs, page ranges) are not figures.
    text = texts["report.html"]
    if '<h2 id="weighting"' in text and '<h2 id="disclosure"' in text:
        text = text[:text.index('<h2 id="weighting"')] + text[text.index('<h2 id="disclosure"'):]
    # So is the note on the run's settings at the top (draws, seed, rounding base).
    texts["report.html"] = re.sub(r'<p class="note">.*?</p>', "", text, count=1, flags=re.DOTALL)
    # Fixed text of every report (definitions, references: "JRSS B 71, 319-392") is not a figure.
    from markupsafe import escape  # as the report's template escapes

    from unmetneed.report.html import DEFINITIONS, REFERENCES

    for fixed in [*REFERENCES, *(meaning for _, meaning in DEFINITIONS)]:
        texts["report.html"] = texts["report.html"].replace(str(escape(fixed)), "")
    texts["console"] = console
    # File paths (the output folder, pytest's numbered /tmp/pytest-of-user/pytest-188/...)
    # carry numbers that are not figures.
    return {name: PATH.sub("", text) for name, text in texts.items()}


@pytest.fixture(scope="module")
def suppressed_values(run_output: Path) -> pd.DataFrame:
    area = pd.read_csv(run_output / "estimates_by_area.csv", dtype={"area_code": str})
    truth = unprotected(run_output, "area_code", "draws_area_code.nc")
    rows = area[area["flag"] == "suppressed"].merge(truth, on=["area_code", "setting", "quantity", "measure"])
    chars = pd.read_csv(run_output / "estimates_by_characteristic.csv", dtype={"category": str})
    truth = unprotected(run_output, "ethnic_group", "draws_ethnic_group.nc").rename(
        columns={"ethnic_group": "category"})
    more = chars[chars["flag"] == "suppressed"].merge(truth, on=["category", "setting", "quantity", "measure"])
    carers = pd.read_csv(run_output / "estimates_carers.csv", dtype={"area_code": str})
    raw = pd.read_csv(run_output / "internal" / "carers_unprotected.csv", dtype={"area_code": str})
    raw = raw.rename(columns={"estimate": "value", "se": "value_se"})[
        ["area_code", "unpaid_care", "quantity", "value", "value_se"]]
    hidden = carers[carers["flag"] == "suppressed"].merge(raw, on=["area_code", "unpaid_care", "quantity"])
    assert len(hidden) == int((carers["flag"] == "suppressed").sum())
    return pd.concat([rows, more, hidden], ignore_index=True)


def test_draws_are_internal_and_marked_not_for_publication(run_output: Path) -> None:
    assert not (run_output / "draws.nc").exists()
    readme = (run_output / "internal" / "README.txt").read_text(encoding="utf-8")
    assert "NOT FOR PUBLICATION" in readme
    provenance = json.loads((run_output / "provenance.json").read_text(encoding="utf-8"))
    internal = provenance["internal_not_for_publication"]
    assert "must not be published" in internal["note"]
    assert set(internal["files_sha256"]) == {f"internal/{p.name}" for p in (run_output / "internal").iterdir()}
    listed = set(provenance["outputs_sha256"])
    on_disk = {p.name for p in run_output.iterdir() if p.is_file()} - {"provenance.json"}
    assert listed == on_disk, "provenance lists every published file"


def test_no_rendering_of_a_suppressed_value_is_published(suppressed_values: pd.DataFrame,
                                                        published: dict[str, str],
                                                        run_output: Path) -> None:
    assert len(suppressed_values) > 0, "the run must suppress something for the test to bite"
    # Renderings of the figures that are published: a suppressed value that rounds to the
    # same text as another cell's published figure proves nothing.
    allowed: set[str] = set()
    for name in PUBLISHED[:5]:
        table = pd.read_csv(run_output / name)
        for column in table.select_dtypes("number").columns:
            for value in table[column].dropna().to_numpy(dtype=float):
                allowed |= renderings(value)
    tokens = {name: set(NUMBER.findall(text)) for name, text in published.items()}
    leaks = []
    for _, row in suppressed_values.iterrows():
        for value in (row["value"], row["value_se"]):
            if not np.isfinite(value):
                continue
            for text in renderings(float(value)) - allowed:
                for name, found in tokens.items():
                    if text in found:
                        leaks.append((row.get("area_code", row.get("category")), row["quantity"],
                                      row["measure"], text, name))
    assert leaks == [], leaks[:20]


def _lines_with_one_suppressed(table: pd.DataFrame, key: str, england: pd.DataFrame) -> list:
    counts = table[table["measure"] == "count"]
    bad = []
    # Groups add up to the published England figure of each quantity, in each setting.
    for (setting, quantity), part in counts.groupby(["setting", "quantity"]):
        assert england.loc[(setting, quantity), "flag"] != "suppressed"
        if (part["flag"] == "suppressed").sum() == 1:
            bad.append((key, setting, quantity))
    # Hierarchies within each group and setting: need = its parts (a part that is 0 by
    # definition in care homes has no row) ...
    relations = {"need": PARTS, "unmet_or_insufficient": ["unmet", "insufficient"]}
    for (group, setting), part in counts.groupby([key, "setting"]):
        flags = part.set_index("quantity")["flag"]
        for total, components in relations.items():
            if total in flags.index:
                present = [c for c in components if c in flags.index]
                if (flags.reindex([total, *present]) == "suppressed").sum() == 1:
                    bad.append((group, setting, total))
    # ... and all = household + care home, for every group and quantity.
    for (group, quantity), part in counts.groupby([key, "quantity"]):
        flags = part.set_index("setting")["flag"]
        if (flags == "suppressed").sum() == 1 and len(flags) > 1:
            bad.append((group, "setting", quantity))
    return bad


def test_no_suppressed_count_is_a_difference_of_published_figures(run_output: Path) -> None:
    england = pd.read_csv(run_output / "estimates_england.csv")
    england = england[england["measure"] == "count"].set_index(["setting", "quantity"])
    assert set(england.index.get_level_values("setting")) == {"household", "care_home", "all"}
    area = pd.read_csv(run_output / "estimates_by_area.csv", dtype={"area_code": str})
    assert _lines_with_one_suppressed(area, "area_code", england) == []
    chars = pd.read_csv(run_output / "estimates_by_characteristic.csv", dtype={"category": str})
    for _, part in chars.groupby("characteristic"):
        assert _lines_with_one_suppressed(part, "category", england) == []
    # England's figures are all published.
    assert (england["flag"] == "suppressed").sum() == 0


def test_coverage_is_suppressed_with_its_target(run_output: Path) -> None:
    area = pd.read_csv(run_output / "estimates_by_area.csv", dtype={"area_code": str})
    coverage = pd.read_csv(run_output / "coverage_gaps.csv", dtype={"area_code": str, "category": str})
    chars = pd.read_csv(run_output / "estimates_by_characteristic.csv", dtype={"category": str})
    # council rows against the council counts, characteristic rows against the characteristic counts
    tables = {"area_code": area.assign(characteristic="area_code", category=area["area_code"]), "other": chars}
    checked = 0
    # England rows: their care targets are the published England counts
    england = pd.read_csv(run_output / "estimates_england.csv")
    england = england[england["measure"] == "count"].set_index(["setting", "quantity"])["estimate"]
    total = coverage[coverage["category"] == ENGLAND]
    care_total = total[total["target"].isin(england.index.get_level_values("quantity"))]
    assert len(care_total)
    np.testing.assert_array_equal(
        care_total["target_estimate"].to_numpy(),
        england.reindex(pd.MultiIndex.from_arrays([care_total["setting"], care_total["target"]])).to_numpy())
    coverage = coverage[coverage["category"] != ENGLAND]
    for which, table in tables.items():
        rows = coverage[(coverage["characteristic"] == "area_code") == (which == "area_code")]
        counts = table[table["measure"] == "count"].set_index(["characteristic", "category", "setting",
                                                                 "quantity"])
        care = rows[rows["target"].isin(counts.index.get_level_values("quantity"))]
        keys = pd.MultiIndex.from_arrays([care["characteristic"], care["category"], care["setting"],
                                          care["target"]])
        flags = counts["flag"].reindex(keys)
        assert flags.notna().all(), "every care target is a published cell"
        hidden = care[(flags == "suppressed").to_numpy()]
        assert (hidden["flag"] == "suppressed").all()
        assert hidden[["target_estimate", "uncovered", "over_count", "coverage", "coverage_lower",
                       "coverage_upper"]].isna().all().all()
        shown = care[(flags != "suppressed").to_numpy()]
        published = counts["estimate"].reindex(keys[(flags != "suppressed").to_numpy()])
        np.testing.assert_array_equal(shown["target_estimate"].to_numpy(), published.to_numpy())
        checked += len(care)
    assert checked


def test_rates_come_from_the_rounded_counts(run_output: Path) -> None:
    area = pd.read_csv(run_output / "estimates_by_area.csv", dtype={"area_code": str})
    with xr.open_dataset(run_output / "internal" / "draws_area_code.nc") as draws:
        population = draws["population"].isel(draw=0).to_series()
    population.index = population.index.set_levels(population.index.levels[0].astype(str), level=0)
    counts = area[(area["measure"] == "count") & (area["flag"] != "suppressed")].set_index(
        ["area_code", "setting", "quantity"])["estimate"]
    rates = area[(area["measure"] == "rate_per_1000") & (area["flag"] != "suppressed")]
    cells = pd.MultiIndex.from_arrays([rates["area_code"], rates["setting"]])
    people = population.reindex(cells).to_numpy()
    keys = pd.MultiIndex.from_arrays([rates["area_code"], rates["setting"], rates["quantity"]])
    from_counts = 1000 * counts.reindex(keys).to_numpy() / people
    np.testing.assert_allclose(rates["estimate"].to_numpy(), np.round(from_counts, 1), atol=0.051)
    # rate x population gives back the published (rounded) count, never a finer one.
    back = rates["estimate"].to_numpy() * people / 1000
    rounded = counts.reindex(keys).to_numpy()
    tolerance = 0.05 * people / 1000 + 1e-6
    assert (np.abs(back - rounded) <= tolerance).all()
    assert (counts % 5 == 0).all()


def test_england_totals_are_the_same_everywhere(run_console: tuple[Path, str]) -> None:
    folder, console = run_console
    england = pd.read_csv(folder / "estimates_england.csv")
    england = england[england["measure"] == "count"]
    report = (folder / "report.html").read_text(encoding="utf-8")
    for setting, quantity, value in england[["setting", "quantity", "estimate"]].itertuples(index=False):
        text = f"{value:,.0f}"
        # the console shows all adults, and the quantities published for households only
        if setting == "all" or quantity in ("insufficient", "unmet_or_insufficient"):
            assert re.search(rf"{quantity}\s+{re.escape(text)}", console), (quantity, text)
        assert text in report, (setting, quantity, text)


def test_an_se_of_zero_means_exactly_known(run_output: Path) -> None:
    area = pd.read_csv(run_output / "estimates_by_area.csv", dtype={"area_code": str})
    truth = unprotected(run_output, "area_code", "draws_area_code.nc")
    rows = area[area["flag"] != "suppressed"].merge(truth, on=["area_code", "setting", "quantity", "measure"])
    zero = rows[rows["se"] == 0]
    # identical draws (a count fixed to an exact admin count, and its rate) have no spread; a
    # standard deviation computed from them is 0 up to floating-point noise
    noise = 1e-12 * zero["value"].abs()
    assert (zero["value_se"] <= noise).all(), zero[["area_code", "quantity", "measure", "value_se"]].head()
    coverage = pd.read_csv(run_output / "coverage_gaps.csv", dtype={"area_code": str})
    # The example config's ASCS and SACE strata are councils sampled from lists of known
    # size (an fpc each): their weighted counts are exact, and only theirs.
    assert set(coverage.loc[coverage["covered_se"] == 0, "source"]) <= {"ascs", "sace"}


def test_no_suppressed_carer_count_is_a_difference_of_published_figures(run_output: Path) -> None:
    carers = pd.read_csv(run_output / "estimates_carers.csv", dtype={"area_code": str})
    counts = carers[carers["measure"] == "count"]
    assert (counts["flag"] == "suppressed").any(), "the run must suppress a carer count for this to bite"
    bad = []
    # councils add up to England, bands add up to all carers, carers = known + unknown
    for key, part in counts.groupby(["unpaid_care", "quantity"]):
        if (part["flag"] == "suppressed").sum() == 1:
            bad.append(("areas", key))
    for key, part in counts.groupby(["area_code", "quantity"]):
        if (part["flag"] == "suppressed").sum() == 1:
            bad.append(("bands", key))
    for key, part in counts.groupby(["area_code", "unpaid_care"]):
        flags = part.set_index("quantity")["flag"].reindex(["carers", "carers_known", "carers_unknown"])
        if (flags == "suppressed").sum() == 1:
            bad.append(("known + unknown", key))
    assert bad == [], bad[:10]
    # a known share is withheld with its known count
    shares = carers[carers["measure"] == "share"].set_index(["area_code", "unpaid_care"])["flag"]
    known = counts[counts["quantity"] == "carers_known"].set_index(["area_code", "unpaid_care"])["flag"]
    hidden = known[known == "suppressed"].index
    assert (shares.reindex(hidden) == "suppressed").all()
