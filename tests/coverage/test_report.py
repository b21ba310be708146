"""CoverageReport: text, HTML, provenance and plots."""

from __future__ import annotations

import sys

import pytest

from unmetneed.coverage import CoverageReport, coverage_gaps
from unmetneed.errors import DesignError, MarginsError

from .conftest import srs_design


def test_repr_summary_and_provenance(report) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(report, CoverageReport)
    assert repr(report) == ("<CoverageReport: ascs (council_funded), sace (unpaid_carers) by "
                            "['area_code']; 90% intervals, 200 draws>")
    text = report.summary()
    for heading in ("Frame coverage", "Left out of council data", "Sample support", "Representativeness"):
        assert heading in text
    assert "sace vs unpaid_carers (census)" in text and "lowest coverage" in text
    attrs = report.attrs
    assert attrs["sources"]["ascs"] == {"target": "council_funded", "kind": "care",
                                        "respondents": 720}
    assert attrs["seed_entropy"] == 2 and attrs["level"] == 0.9
    assert attrs["package_version"]
    with pytest.raises(TypeError):
        attrs["level"] = 0.5  # type: ignore[index]


def test_tables_are_copies(report) -> None:  # type: ignore[no-untyped-def]
    table = report.to_frame()
    table["coverage"] = 0.0
    assert (report.to_frame()["coverage"] > 0).all()


def test_html_is_escaped(care, inputs) -> None:  # type: ignore[no-untyped-def]
    report = coverage_gaps(care, {"<b>ascs</b>": (inputs.ascs, "council_funded")}, seed=1)
    text = report._repr_html_()
    assert "&lt;b&gt;ascs&lt;/b&gt;" in text and "<b>ascs</b>" not in text.split("<table")[0]


@pytest.fixture
def pyplot():  # type: ignore[no-untyped-def]
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_coverage_by_the_report_grouping(report, pyplot) -> None:  # type: ignore[no-untyped-def]
    fig = report.plot_coverage("area_code")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["E06000001", "E06000002"]
    assert len(ax.get_legend().get_texts()) == 2


def test_plot_coverage_by_another_characteristic(care_cross, inputs, pyplot) -> None:  # type: ignore[no-untyped-def]
    sources = {"srs": (srs_design(inputs), "need"), "sace": (inputs.sace, "unpaid_carers")}
    report = coverage_gaps(care_cross, sources, census=inputs.census, seed=1)
    assert report.by == ["area_code"]
    fig = report.plot_coverage("age_band", source="srs")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["18-64", "65-84", "85+"]
    # census counts by area cannot be compared by age band
    with pytest.raises(MarginsError, match="census 'unpaid_carers'"):
        report.plot_coverage("age_band")
    with pytest.raises(DesignError, match="source='nope'"):
        report.plot_coverage("age_band", source="nope")
    with pytest.raises(DesignError, match="one variable"):
        report.plot_coverage(["area_code", "age_band"])  # type: ignore[arg-type]


def test_plot_area_coverage(report, care_cross, inputs, pyplot) -> None:  # type: ignore[no-untyped-def]
    fig = report.plot_area_coverage()
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "ascs"
    single = report.plot_area_coverage(source="sace")
    assert len(single.axes) == 1
    ticks = [t.get_text() for t in single.axes[0].get_yticklabels()]
    sace = report.to_frame().query("source == 'sace'").sort_values("coverage")
    assert ticks == sace["area_code"].tolist()  # sorted, lowest first (at the top)
    by_age = coverage_gaps(care_cross, {"srs": (srs_design(inputs), "need")}, by="age_band", seed=1)
    with pytest.raises(DesignError, match="needs a report by 'area_code'"):
        by_age.plot_area_coverage()


def test_plots_without_matplotlib(report, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'unmetneed\[plot\]'"):
        report.plot_area_coverage()
    with pytest.raises(ImportError, match="matplotlib"):
        report.plot_coverage("area_code")
