"""The main job: weight, model, estimate, diagnose, protect, write.

Used by ``unmetneed demo`` (embedded synthetic England) and ``unmetneed run
CONFIG.toml`` (the user's files). Same seed and inputs give byte-identical tables.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.cli.config import RunConfig, Settings, read_table, sha256
from unmetneed.cli.publish import ENGLAND_CODE, ENGLAND_NAME, build_publication
from unmetneed.design import SurveyDesign
from unmetneed.errors import ConfigError, UnmetneedError, UnmetneedWarning
from unmetneed.margins import MarginKey, Margins
from unmetneed.mrp.frame import PopulationFrame

__all__ = [
    "INTERNAL",
    "MIN_PUBLISHED_DRAWS",
    "Inputs",
    "Settings",
    "demo_inputs",
    "england_summary",
    "inputs_from_config",
    "preflight",
    "run_pipeline",
    "settings_from_config",
]

AREA_COLUMNS = ["area_code", "area_name"]
#: Published tables need a spread of draws: the CVs behind flags and suppression.
MIN_PUBLISHED_DRAWS = 100
#: Sub-folder of the output for files that are not for publication (draws).
INTERNAL = "internal"
RESULT_COLUMNS = ["quantity", "measure", "estimate", "se", "ci_lower", "ci_upper", "cv", "n", "flag"]


@dataclass
class Inputs:
    population: PopulationFrame
    area_names: pd.Series
    surveys: dict[str, SurveyDesign]
    targets: dict[str, str]
    admin: pd.Series | None
    census: dict[str, pd.Series]
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256
    description: str = ""
    #: care-home register and provider returns (``register``, ``returns``; optional
    #: ``covariates``: one row per council), needed when the frame has care-home rows
    care_homes: dict[str, pd.DataFrame] | None = None
    #: the setting of each source's target (``household`` unless named here)
    target_settings: dict[str, str] = field(default_factory=dict)
    #: council-funded counts by area_code, setting and age_group, and the survey of
    #: council-funded users whose composition splits them by characteristic
    admin_cells: pd.DataFrame | None = None
    composition_survey: str | None = None
    #: Census unpaid carers by council and hours band (area_code, unpaid_care, count) and the
    #: survey of carers known to councils (SACE) that estimate_carers combines with them
    carers_census: pd.DataFrame | None = None
    carers_survey: str | None = None


DEMO_SETTINGS = Settings(
    formulas={},
    by=("area_code", "age_band", "sex", "ethnic_group", "disability"),
    weighting_margins=("age_band", "sex", "disability"),
    draws=200,
    seed=20211,
    level=0.9,
    benchmark=True,
    disclosure={"min_count": 10, "rounding": 5, "flag_cv": 0.2, "suppress_cv": 0.5, "min_n": None},
)


def demo_inputs() -> Inputs:
    """The embedded synthetic England as pipeline inputs."""
    from unmetneed.datasets import load_synthetic_england, reference_path
    from unmetneed.datasets.synthetic import MANIFEST

    eng = load_synthetic_england()
    # The general survey covers private households (as HSE does), so the household
    # models' paid care is benchmarked to council-funded people supported in the
    # community; care-home residents are estimated from the register and returns.
    community = eng.admin[eng.admin["setting"].astype(str) == "community"]
    admin = community.groupby("area_code", observed=True)["count"].sum().astype(float)
    carers = eng.census["unpaid_care"]
    carers = carers[~carers["unpaid_care"].astype(str).str.startswith("Provides no")]
    manifest = reference_path(MANIFEST)
    ascs = eng.surveys["ascs"]
    surveys = dict(eng.surveys)
    # Each setting's respondents as a domain of the whole ASCS design (its strata and fpc kept).
    for name, setting in (("ascs_community", "community"), ("ascs_care_home", "residential")):
        surveys[name] = ascs.subset(ascs.data["setting"].astype(str) == setting)
    covariates = _council_covariates(eng.population.cells)
    return Inputs(
        population=eng.population,
        area_names=eng.areas.set_index("area_code")["area_name"],
        surveys=surveys,
        targets={
            "ascs_community": "council_funded",
            "ascs_care_home": "council_funded",
            "sace": "unpaid_carers",
        },
        target_settings={"ascs_community": "household", "ascs_care_home": "care_home", "sace": "all"},
        admin=admin,
        # Council-funded people by council and setting: the residential rows enter the
        # care-home model (estimate_care_home_funding(admin=...)).
        admin_cells=eng.admin,
        census={"unpaid_carers": carers.groupby("area_code", observed=True)["count"].sum().astype(float)},
        files={"synthetic/MANIFEST.json": sha256(manifest)},
        description="embedded synthetic England (data/reference/synthetic; synthetic data, real council codes)",
        carers_census=eng.census["unpaid_care"],
        carers_survey="sace",
        # The ASCS composition of council-funded users (inputs.admin.composition_survey) is
        # not used here: the synthetic ASCS's non-response depends on ethnic group and its
        # published weights do not correct it, so its composition under-counts minority
        # groups (by 7-65% in the shipped data); the household chain's split is unbiased.
        care_homes={
            "register": eng.care_homes.register,
            "returns": eng.care_homes.returns,
            **({"covariates": covariates} if covariates is not None else {}),
        },
    )


def _council_covariates(cells: pd.DataFrame) -> pd.DataFrame | None:
    """Census council covariates of the frame (owner-occupation) for the care-home model."""
    columns = [c for c in ("owner_occupation",) if c in cells.columns]
    if not columns:
        return None
    table = cells.groupby("area_code", observed=True)[columns].first().reset_index()
    table["area_code"] = table["area_code"].astype(str)
    return table


def inputs_from_config(config: RunConfig) -> Inputs:
    """Load and check the inputs a validated config names."""
    from unmetneed.io import read_survey

    files: dict[str, str] = {}
    problems: list[str] = []
    cells = _read_input(config.population, "inputs.population.path")
    files[str(config.population)] = sha256(config.population)
    raw_census = _looks_like_census_table(cells)
    if raw_census:
        problems.append(
            f"inputs.population.path: {config.population.name} looks like a published census table "
            f"({raw_census}), not a population frame (one row per area x characteristics with a "
            f"{config.population_count!r} column). Convert it first: "
            "unmetneed.io.read_census_table(path) gives the tidy table (area_code, <variable>, count); "
            "save that, or build the frame of several tables with unmetneed.synthetic_frame"
        )
    elif config.population_count not in cells.columns:
        problems.append(
            f"inputs.population.count: column {config.population_count!r} not in "
            f"{config.population.name} (its columns: {', '.join(map(str, cells.columns[:12]))})"
        )
    names = None
    if config.area_names is not None:
        names_table = _read_input(config.area_names, "inputs.population.area_names")
        files[str(config.area_names)] = sha256(config.area_names)
        missing = [c for c in ("area_code", "area_name") if c not in names_table.columns]
        if missing:
            problems.append(
                f"inputs.population.area_names: {config.area_names.name} lacks the column(s) "
                f"{missing}; it needs area_code and area_name"
            )
        else:
            names = names_table.set_index("area_code")["area_name"]
    surveys: dict[str, SurveyDesign] = {}
    targets: dict[str, str] = {}
    for name, spec in config.surveys.items():
        try:
            data = read_survey(spec.path)
            files[str(spec.path)] = sha256(spec.path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnmetneedWarning)
                surveys[name] = SurveyDesign(
                    data,
                    weights=spec.weights,
                    strata=spec.strata,
                    clusters=spec.clusters,
                    fpc=spec.fpc,
                    nest=spec.nest,
                    lonely_psu=spec.lonely_psu,  # type: ignore[arg-type]
                )
        except (UnmetneedError, KeyError) as error:
            problems.append(f"inputs.surveys.{name}: {error}")
            continue
        if spec.target:
            targets[name] = spec.target
    admin = None
    if config.admin is not None:
        table = _read_input(config.admin, "inputs.admin.path")
        files[str(config.admin)] = sha256(config.admin)
        missing = sorted({config.admin_area, config.admin_count} - set(table.columns))
        repeated = table.duplicated(keep=False)
        if missing:
            problems.append(f"inputs.admin: columns {missing} not in {config.admin.name}")
        elif repeated.any():
            problems.append(
                f"inputs.admin: {config.admin.name} has {int(repeated.sum())} rows that "
                f"repeat another row exactly (first at line {int(np.argmax(repeated.to_numpy())) + 2}); "
                "a duplicated row would be counted twice: remove the copies"
            )
        else:
            admin = table.groupby(config.admin_area)[config.admin_count].sum().astype(float)
            admin.index = admin.index.astype(str)
    census: dict[str, pd.Series] = {}
    if config.unpaid_carers is not None:
        table = _read_input(config.unpaid_carers, "inputs.census.unpaid_carers.path")
        files[str(config.unpaid_carers)] = sha256(config.unpaid_carers)
        if not {"area_code", "count"} <= set(table.columns):
            problems.append("inputs.census.unpaid_carers: expected columns area_code and count")
        else:
            census["unpaid_carers"] = table.groupby("area_code")["count"].sum().astype(float)
    care_homes = None
    if config.care_home_register is not None and config.care_home_returns is not None:
        from unmetneed.io import read_care_home_register, read_provider_returns

        try:
            care_homes = {
                "register": read_care_home_register(config.care_home_register),
                "returns": read_provider_returns(config.care_home_returns),
            }
        except UnmetneedError as error:
            problems.append(f"inputs.care_homes: {error}")
        else:
            files[str(config.care_home_register)] = sha256(config.care_home_register)
            files[str(config.care_home_returns)] = sha256(config.care_home_returns)
            if config.care_home_covariates is not None:
                table = _read_input(config.care_home_covariates, "inputs.care_homes.covariates")
                files[str(config.care_home_covariates)] = sha256(config.care_home_covariates)
                columns = list(config.care_home_covariate_columns)
                missing = [c for c in ["area_code", *columns] if c not in table.columns]
                if missing or not columns:
                    problems.append(
                        f"inputs.care_homes: covariate_columns {columns} (and area_code) "
                        f"must be columns of {config.care_home_covariates.name}; "
                        f"missing {missing or 'a list of columns'}"
                    )
                else:
                    care_homes["covariates"] = table[["area_code", *columns]].astype({"area_code": str})
    target_settings = {name: spec.setting for name, spec in config.surveys.items() if spec.setting}
    carers_census = carers_survey = None
    if config.unpaid_care is not None:
        from unmetneed.io import read_census_table

        try:
            carers_census = read_census_table(config.unpaid_care)
            files[str(config.unpaid_care)] = sha256(config.unpaid_care)
        except UnmetneedError as error:
            problems.append(f"inputs.census.unpaid_care: {error}")
        else:
            sace = [name for name, spec in config.surveys.items() if spec.target == "unpaid_carers"]
            if len(sace) != 1:
                problems.append(
                    "inputs.census.unpaid_care: carers known to councils come from the one "
                    "survey whose target is 'unpaid_carers' (SACE); found "
                    f"{len(sace)} such surveys"
                )
            else:
                carers_survey = sace[0]
    admin_cells = None
    if config.admin_cells is not None:
        admin_cells = _read_input(config.admin_cells, "inputs.admin.cells")
        files[str(config.admin_cells)] = sha256(config.admin_cells)
        lacking = [c for c in ("area_code", "setting", "age_group", "count") if c not in admin_cells.columns]
        if lacking:
            problems.append(
                f"inputs.admin.cells: {config.admin_cells.name} lacks {lacking}; it needs "
                "area_code, setting (community | residential), age_group and count"
            )
    if problems:
        raise ConfigError("inputs could not be used:\n" + "\n".join(f"  - {p}" for p in problems))
    try:
        frame = PopulationFrame(cells, count=config.population_count)
    except UnmetneedError as error:
        raise ConfigError(f"inputs.population: {error}") from error
    if names is None:
        names = pd.Series(dict.fromkeys(cells["area_code"].unique(), pd.NA), dtype="object")
    return Inputs(
        frame,
        names,
        surveys,
        targets,
        admin,
        census,
        files,
        description=str(config.source),
        care_homes=care_homes,
        target_settings=target_settings,
        admin_cells=admin_cells,
        composition_survey=config.composition_survey,
        carers_census=carers_census,
        carers_survey=carers_survey,
    )


def _read_input(path: Path, key: str) -> pd.DataFrame:
    try:
        return read_table(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{key}: {path.name} could not be read as a table "
            f"({type(error).__name__}: {error}); expected a CSV or Parquet file"
        ) from error


def _looks_like_census_table(table: pd.DataFrame) -> str:
    """Why ``table`` looks like a raw Nomis / ONS census download ("" when it does not)."""
    columns = [str(c) for c in table.columns]
    lower = [c.lower() for c in columns]
    if {"geography", "geography code"} <= set(lower):
        return "columns 'geography' and 'geography code', one column per category"
    if "observation" in lower and any(c.endswith(" code") for c in lower):
        return "an ONS custom-dataset layout with an 'Observation' column"
    return ""


def _labels(column: pd.Series, *, dropna: bool = True) -> set[str]:
    """The distinct values of a column as text: ``set(column.dropna().astype(str))``.

    Converted after ``unique`` rather than row by row: the same set, without a Python
    string per row of a frame of 150,000 cells (0.7 s of the demo's preflight).
    """
    values = column.dropna() if dropna else column
    return set(pd.Series(values.unique()).astype(str))


def preflight(inputs: Inputs, settings: Settings) -> None:
    """Every check ``run`` makes on the inputs before any model, all reported together.

    ``unmetneed validate`` runs it too, so a config that validates gets past them.
    """
    problems: list[str] = []
    cells = inputs.population.cells
    frame_areas = _labels(cells["area_code"], dropna=False) if "area_code" in cells.columns else set()
    general = inputs.surveys.get("general")
    items = ["need", "help", "payer", "help_enough"]
    if general is not None:
        data = general.data
        missing = [c for c in items if c not in data.columns]
        if missing:
            problems.append(
                f"inputs.surveys.general: the care item column(s) {missing} the models need "
                f"are not in the data (columns: {', '.join(map(str, data.columns[:15]))})"
            )
        for i, column in enumerate(settings.weighting_margins):
            where = [n for n, t in (("population frame", cells), ("general survey", data)) if column not in t]
            if where:
                problems.append(
                    f"weighting.margins[{i}]: {column!r} is not a column of the "
                    f"{' or the '.join(where)}; name a variable both have"
                )
        shared = [
            c
            for c in ("age_band", "sex", "ethnic_group", "disability", "area_code")
            if c in data.columns and c in cells.columns
        ]
        for column in shared:
            unknown = sorted(_labels(data[column]) - _labels(cells[column]))
            if unknown:
                known = sorted(_labels(cells[column]))[:8]
                problems.append(
                    f"inputs.surveys.general: column {column!r} has categories the population "
                    f"frame lacks: {unknown[:8]} (frame categories: {known}); use the same "
                    "labels in both (see unmetneed.harmonise)"
                )
        # Fixed effects cannot predict categories the survey lacks (the default formulas
        # have sex as a fixed effect): the model would refuse them after fitting.
        from unmetneed.mrp.formula import parse_formula

        fixed = {"sex"}
        for formula in settings.formulas.values():
            try:
                fixed |= set(parse_formula(formula).fixed_variables)
            except UnmetneedError:
                pass
        for column in sorted(fixed & set(data.columns) & set(cells.columns)):
            if pd.api.types.is_numeric_dtype(cells[column].dtype):
                continue
            absent = sorted(_labels(cells[column]) - _labels(data[column]))
            if absent:
                problems.append(
                    f"inputs.population: column {column!r} (a fixed effect of the models) has "
                    f"categories the general survey lacks: {absent[:8]}; use the survey's "
                    f"labels {sorted(_labels(data[column]))[:8]}"
                )
        for name, formula in settings.formulas.items():
            try:
                parsed = parse_formula(formula)
            except UnmetneedError as error:
                problems.append(f"models.{name}.formula: {error}")
                continue
            variables = _formula_variables(parsed)
            for variable in variables:
                where = [
                    n for n, t in (("population frame", cells), ("general survey", data)) if variable not in t
                ]
                if where:
                    problems.append(
                        f"models.{name}.formula: {variable!r} is not a column of the {' or the '.join(where)}"
                    )
    if "setting" in cells.columns:
        values = _labels(cells["setting"], dropna=False)
        unknown = sorted(values - {"household", "care_home"})
        if unknown:
            problems.append(
                f"inputs.population: column 'setting' has values {unknown[:5]}; use "
                "'household' and 'care_home'"
            )
        elif "care_home" in values and inputs.care_homes is None:
            problems.append(
                "inputs.population: the frame has care-home rows (setting == 'care_home') "
                "but no care-home register and returns were given (inputs.care_homes."
                "register and .returns); add them, or drop the care-home rows to "
                "estimate private households only"
            )
    for i, column in enumerate(settings.by):
        if column not in cells.columns:
            problems.append(f"estimates.by[{i}]: {column!r} is not a column of the population frame")
    for name, design in inputs.surveys.items():
        if name in inputs.targets and "area_code" not in design.data.columns:
            problems.append(
                f"inputs.surveys.{name}: no 'area_code' column, needed to compare it with "
                "its target by council"
            )
    if inputs.admin is not None:
        unknown = sorted(set(inputs.admin.index.astype(str)) - frame_areas)
        if unknown:
            problems.append(
                f"inputs.admin: council codes not in the population frame: {unknown[:8]}"
                f"{' ...' if len(unknown) > 8 else ''} ({len(unknown)}); use the frame's "
                "2021 upper-tier codes"
            )
    for key, counts in inputs.census.items():
        codes = set(counts.index.astype(str))
        if codes != frame_areas:
            extra, lacking = sorted(codes - frame_areas), sorted(frame_areas - codes)
            problems.append(
                f"inputs.census.{key}: council codes differ from the population frame's "
                f"(not in the frame: {extra[:5]}; missing: {lacking[:5]})"
            )
    if settings.draws < MIN_PUBLISHED_DRAWS:
        problems.append(
            f"estimates.draws: {settings.draws}; published tables need at least {MIN_PUBLISHED_DRAWS}"
        )
    if problems:
        raise ConfigError("inputs do not fit the run:\n" + "\n".join(f"  - {p}" for p in problems))


def _formula_variables(parsed: Any) -> list[str]:
    return list(dict.fromkeys([*parsed.fixed_variables, *parsed.groups]))


class Progress:
    """Steps on a terminal bar (tqdm) or as plain log lines when not a terminal."""

    def __init__(self, steps: int, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._last = self.start
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=steps, desc="unmetneed", unit="step", file=sys.stderr)

    def step(self, name: str) -> None:
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.set_postfix_str(name)
            self._bar.update(1)
        elif self.enabled:
            print(f"[unmetneed {now - self.start:6.1f}s] {name}", file=sys.stderr, flush=True)
        self._last = now

    def done(self, name: str, started: float) -> None:
        self.timings[name] = round(time.perf_counter() - started, 3)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_pipeline(
    inputs: Inputs,
    settings: Settings,
    out: Path,
    *,
    config: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Run every step and write the outputs; returns the paths written.

    The run writes into a new folder beside ``out`` and renames it into place only
    when every file is written, so ``out`` always holds one consistent set (the
    previous run's, or this one's) and no stale file survives. Fewer than
    :data:`MIN_PUBLISHED_DRAWS` draws are refused.
    """
    if settings.draws < MIN_PUBLISHED_DRAWS:
        raise ConfigError(
            f"draws={settings.draws}: published tables need at least {MIN_PUBLISHED_DRAWS} draws "
            "(with fewer the posterior SDs, hence the CVs that flag and suppress estimates, are "
            f"not reliable; one draw gives se = 0); use --draws {MIN_PUBLISHED_DRAWS} or more"
        )
    preflight(inputs, settings)
    staging = _staging_folder(out)
    try:
        written = _run_into(staging, inputs, settings, config=config, progress=progress)
        _replace_folder(staging, out)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: out / path.relative_to(staging) for name, path in written.items()}


def settings_from_config(
    config: RunConfig, *, output_format: str | None = None, save_draws: bool = False
) -> Settings:
    """The run settings a validated config gives."""
    return replace(
        config.settings,
        output_format=output_format or config.settings.output_format,
        save_draws=save_draws or config.settings.save_draws,
    )


def _staging_folder(out: Path) -> Path:
    """A new folder beside ``out`` that the run writes into (renamed into place at the end)."""
    import tempfile

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is a file; give a folder path with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "provenance.json").is_file():
        raise ConfigError(
            f"output folder {str(out)!r} exists, is not empty and is not an unmetneed output "
            "(no provenance.json); the run replaces its output folder as a whole, so give a new "
            "or empty folder"
        )
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
        staging.chmod(0o755)  # mkdtemp makes it private; the output folder is an ordinary one
        return staging
    except OSError as error:
        raise ConfigError(f"cannot write beside the output folder {str(out)!r}: {error}") from error


def _replace_folder(staging: Path, out: Path) -> None:
    """Swap the finished staging folder in for ``out`` (renames; the old set is removed after)."""
    import shutil

    out = Path(out)
    old = None
    if out.exists():
        old = staging.with_name(staging.name.replace(".partial-", ".previous-"))
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run_into(
    out: Path, inputs: Inputs, settings: Settings, *, config: dict[str, Any] | None, progress: bool
) -> dict[str, Path]:
    from unmetneed._provenance import package_version
    from unmetneed.estimates import estimate_care_home_funding, fit_care_model
    from unmetneed.estimates.settings import (
        care_home_populations,
        combine_settings,
        split_settings,
    )
    from unmetneed.weighting import rake

    general = inputs.surveys["general"]
    households, homes = split_settings(inputs.population)
    # the optional steps, decided once: the progress bar counts them
    with_homes = homes is not None and inputs.care_homes is not None
    with_composition = (
        inputs.admin_cells is not None and inputs.composition_survey in inputs.surveys and settings.benchmark
    )
    with_carers = inputs.carers_census is not None and inputs.carers_survey in inputs.surveys
    steps = Progress(7 + 2 * with_homes + with_composition + with_carers, enabled=progress)
    timings = steps.timings
    state: dict[str, Any] = {}

    def timed(name: str, function: Callable[[], Any]) -> Any:
        steps.step(name)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnmetneedWarning)
            value = function()
        state.setdefault("warnings", []).extend(
            f"{name}: {w.message}" for w in caught if issubclass(w.category, UnmetneedWarning)
        )
        steps.done(name, started)
        return value

    margins = _weighting_margins(households, settings.weighting_margins, general)
    weighting = timed(
        "weighting the general survey to census margins",
        lambda: rake(general, margins, tol=1e-10, reconcile="scale") if margins else None,
    )
    model = timed(
        "fitting the chain of multilevel models",
        lambda: fit_care_model(
            households, general, formulas=settings.formulas or None, draws=settings.draws, seed=settings.seed
        ),
    )
    admin = inputs.admin if settings.benchmark else None
    groupings = [(), *((c,) for c in settings.by)]
    household = timed(
        "poststratifying household care populations by area and characteristic",
        lambda: model.populations_by(households, groupings=groupings, admin=admin, level=settings.level),
    )
    funding = care_homes = None
    if with_homes:
        assert homes is not None and inputs.care_homes is not None
        chi = inputs.care_homes
        # Returns are calibrated to the register's homes and beds by region, home type, size
        # and, when the register has it, the regulator's rating: response and self-funding
        # both depend on rating, and without it the shared bias sits in every council
        # (benchmarks/RESULTS.md, settings_simulation_shire_c).
        calibrate_to = tuple(
            c for c in ("region", "home_type", "size_band", "rating") if c in chi["register"].columns
        )
        # Council-funded care-home residents (admin cells, setting residential) enter the
        # council model as the council-funded share they imply (benchmarks/RESULTS.md, care_homes).
        residential = None
        if (
            inputs.admin_cells is not None
            and (inputs.admin_cells["setting"].astype(str) == "residential").any()
        ):
            residential = inputs.admin_cells
        funding = timed(
            "care-home residents and self-funders from the register and returns",
            lambda: estimate_care_home_funding(
                chi["register"],
                chi["returns"],
                calibrate_to=calibrate_to,
                covariates=chi.get("covariates"),
                admin=residential,
                level=settings.level,
            ),
        )
        care_homes = timed(
            "care populations of care-home residents",
            lambda: care_home_populations(
                model,
                homes,
                funding,
                groupings=groupings,
                level=settings.level,
                seed=np.random.default_rng([settings.seed, 7]),
            ),
        )
    results = combine_settings(household, care_homes, care_home_funding=funding)
    if with_composition:
        timed(
            "council-funded people by characteristic: admin counts x the survey's composition",
            lambda: _council_composition(results, inputs, settings),
        )
    coverage = timed(
        "coverage-gap diagnostics", lambda: _coverage(results, inputs, settings, households, homes)
    )
    carers = None
    carers_census = inputs.carers_census
    if with_carers:
        assert carers_census is not None
        from unmetneed.estimates import estimate_carers

        survey = inputs.surveys[str(inputs.carers_survey)]
        carers = timed(
            "unpaid carers known and unknown to councils",
            lambda: estimate_carers(
                carers_census,
                survey,
                band="unpaid_care" if "unpaid_care" in survey.data.columns else None,
                level=settings.level,
                draws=settings.draws,
                seed=np.random.default_rng([settings.seed, 13]),
            ),
        )
    publication = timed(
        "disclosure control",
        lambda: build_publication(
            results, coverage, inputs.area_names, settings.by, settings.disclosure, carers=carers
        ),
    )
    written = timed(
        "writing tables", lambda: _write_tables(publication, results, out, settings, carers=carers)
    )
    timings_copy = dict(timings)
    report_path = out / "report.html"

    def write_report() -> Path:
        from unmetneed.report import write_report as write_html

        return write_html(
            report_path,
            publication=publication,
            coverage=coverage,
            weighting=weighting,
            model=model,
            inputs=inputs,
            settings=settings,
        )

    timed("report", write_report)
    written["report.html"] = report_path
    summary_path = out / "summary.txt"
    summary_path.write_text(england_summary(publication) + "\n", encoding="utf-8")
    written["summary.txt"] = summary_path
    steps.close()
    provenance = {
        "package": "unmetneed",
        "version": package_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": _versions(),
        "inputs": inputs.description,
        "input_checksums_sha256": inputs.files,
        "config": config or {},
        "settings": {
            "formulas": {k: f.model.formula.text for k, f in model.fits.items()},
            "by": list(settings.by),
            "draws": settings.draws,
            "seed": settings.seed,
            "level": settings.level,
            "benchmark_to_admin": settings.benchmark,
            # what the draws and the benchmark did, as recorded on the results
            "draws_method": {
                k: {
                    key: d.attrs[key]
                    for key in (
                        "method",
                        "grid_points",
                        "sd_support_points",
                        "sd_support_ess",
                        "importance_proposals",
                        "importance_ess",
                        "importance_resampled",
                    )
                    if key in d.attrs
                }
                for k, d in model.link_draws.items()
            },
            "benchmark": {
                key: results[(settings.by[0],)].attrs.get(key)
                for key in ("benchmark", "admin_cv", "admin_far_from_posterior")
            },
            "weighting_margins": list(settings.weighting_margins),
            "disclosure": settings.disclosure,
            # the care-home council model as it ran (estimate_care_home_funding)
            "care_homes": None
            if funding is None
            else {
                **{
                    key: funding.info[key]
                    for key in ("method", "calibrate_to", "formula", "fh_method", "gvf_factor")
                },
                "sigma2": float(funding.model.sigma2),
            },
        },
        "outputs_sha256": {
            name: sha256(path)
            for name, path in sorted(written.items())
            if not name.startswith(INTERNAL + "/")
        },
        "internal_not_for_publication": {
            "folder": INTERNAL,
            "note": "unprotected model draws for reproduction and checking only: they hold the "
            "values of suppressed cells and must not be published",
            "files_sha256": {
                name: sha256(path)
                for name, path in sorted(written.items())
                if name.startswith(INTERNAL + "/")
            },
        },
        "disclosure": publication.rules,
        "warnings": state.get("warnings", []),
        "timings_seconds": {**timings_copy, **{k: v for k, v in timings.items() if k not in timings_copy}},
    }
    provenance_path = out / "provenance.json"
    provenance_path.write_text(json.dumps(provenance, indent=2, default=str) + "\n", encoding="utf-8")
    written["provenance.json"] = provenance_path
    return written


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "scipy", "pandas", "xarray", "formulaic", "pydantic", "jinja2", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _weighting_margins(
    frame: PopulationFrame, variables: tuple[str, ...], design: SurveyDesign
) -> Margins | None:
    entries: dict[MarginKey, pd.Series | float] = {}
    data = design.data
    for variable in variables:
        if variable not in frame.cells.columns or variable not in data.columns:
            continue
        totals = frame.totals(variable)
        present = set(pd.unique(data[variable].astype(str)))
        totals.index = totals.index.astype(str)
        entries[variable] = totals[totals.index.isin(present)] if len(present) < len(totals) else totals
    return Margins(entries) if entries else None


def _coverage(
    results: dict[tuple[str, ...], Any],
    inputs: Inputs,
    settings: Settings,
    households: PopulationFrame,
    homes: PopulationFrame | None,
) -> Any:
    """Coverage of each source against its target in its setting (households unless named)."""
    from unmetneed.coverage import coverage_gaps

    frames = {"household": households, "care_home": homes, "all": inputs.population}
    available = {str(v) for v in results[()].draws["setting"].values}
    area = settings.by[0]
    reports: list[tuple[str, Any]] = []
    for setting in ("household", "care_home", "all"):
        sources = {
            name: (inputs.surveys[name], target)
            for name, target in inputs.targets.items()
            if name in inputs.surveys and _source_setting(name, inputs) == setting
        }
        # without a care-home frame everyone modelled lives in a household: "all" is households
        use: str | None = setting if setting in available else ("household" if setting == "all" else None)
        if not sources or use is None:
            continue
        census = inputs.census if any(t in inputs.census for _, t in sources.values()) else None
        frame = frames[use]
        if frame is not None and use == "all" and "setting" in frame.cells.columns:
            frame = None  # the frame's cells repeat by setting; the draws carry the population
        reports.append(
            (
                use,
                coverage_gaps(
                    results[(area,)].in_setting(use),
                    sources,
                    census=census,
                    by=area,
                    population=frame,
                    seed=settings.seed,
                ),
            )
        )
    # Who each source reaches by characteristic: its weighted count of a group over the
    # group's modelled need in the source's setting (census counts are by council only).
    characteristics: list[tuple[str, str, Any]] = []
    for characteristic in settings.by[1:]:
        for setting in ("household", "care_home", "all"):
            use = setting if setting in available else ("household" if setting == "all" else None)
            sources = {
                name: (inputs.surveys[name], "need")
                for name, target in inputs.targets.items()
                if name in inputs.surveys
                and target not in inputs.census
                and _source_setting(name, inputs) == setting
                and characteristic in inputs.surveys[name].data.columns
            }
            if sources and use is not None:
                characteristics.append(
                    (
                        use,
                        characteristic,
                        coverage_gaps(
                            results[(characteristic,)].in_setting(use),
                            sources,
                            by=characteristic,
                            seed=settings.seed,
                        ),
                    )
                )
    return SettingCoverage(reports, characteristics) if reports else None


def _council_composition(results: dict[tuple[str, ...], Any], inputs: Inputs, settings: Settings) -> None:
    """Household council-funded people by each characteristic from the admin counts split by the
    composition of the survey of council-funded users (the ASCS), in place of the few
    council-funded respondents of the general survey."""
    from unmetneed.estimates import estimate_council_funded
    from unmetneed.estimates.settings import with_council_composition

    survey = inputs.surveys[str(inputs.composition_survey)]
    admin_cells = inputs.admin_cells
    assert admin_cells is not None, "run only with inputs.admin.cells (the caller checks)"
    cells = inputs.population.cells
    rng = np.random.default_rng([settings.seed, 11])
    for characteristic in settings.by[1:]:
        if characteristic not in survey.data.columns or (characteristic,) not in results:
            continue
        categories = {characteristic: sorted(pd.unique(cells[characteristic].astype(str)))}
        composition = estimate_council_funded(
            survey,
            admin_cells,
            by=characteristic,
            categories=categories,
            allow_empty=True,
            draws=settings.draws,
            seed=rng,
            level=settings.level,
        )
        by_setting = composition.aggregate(["setting", characteristic]).draws["council_funded"]
        community = by_setting.sel(setting="community", drop=True)
        results[(characteristic,)] = with_council_composition(
            results[(characteristic,)], community, source=str(inputs.composition_survey)
        )


def _source_setting(name: str, inputs: Inputs) -> str:
    """The setting a source's target is in: census counts cover everyone (``all``);
    care quantities are households' unless ``target_settings`` says otherwise."""
    if inputs.targets.get(name) in inputs.census:
        return "all"
    return inputs.target_settings.get(name, "household")


@dataclass
class SettingCoverage:
    """Coverage reports by the setting of their targets, read as one (``setting`` column)."""

    #: (setting of the estimates compared with, report by area)
    reports: list[tuple[str, Any]]
    #: (setting, characteristic, report by that characteristic; target: need)
    characteristics: list[tuple[str, str, Any]] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self._stack([r.to_frame() for _, r in self.reports], [s for s, _ in self.reports])

    @property
    def overall(self) -> pd.DataFrame:
        return self._stack([r.overall for _, r in self.reports], [s for s, _ in self.reports])

    def by_characteristic(self) -> pd.DataFrame:
        """Rows by characteristic: ``characteristic, category, setting`` and the coverage columns."""
        frames = []
        for setting, characteristic, report in self.characteristics:
            table = report.to_frame().reset_index(drop=True)
            table = table.rename(columns={characteristic: "category"})
            table.insert(0, "characteristic", characteristic)
            frames.append(table.assign(setting=setting))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def overall_by_characteristic(self) -> pd.DataFrame:
        """England rows of the by-characteristic reports (target: need)."""
        tables = [r.overall for _, _, r in self.characteristics]
        return self._stack(tables, [s for s, _, _ in self.characteristics]) if tables else pd.DataFrame()

    @staticmethod
    def _stack(tables: list[pd.DataFrame], settings: list[str]) -> pd.DataFrame:
        frames = [t.reset_index(drop=True).assign(setting=s) for s, t in zip(settings, tables, strict=True)]
        return pd.concat(frames, ignore_index=True)


def england_summary(publication: Any) -> str:
    """The console summary: England's published counts (the figures of estimates_england.csv)."""
    table = publication.england
    table = table[table["measure"] == "count"]
    settings = set(table["setting"]) if "setting" in table.columns else set()
    everyone = table[table["setting"] == "all"] if "all" in settings else table
    title = (
        "England, all adults in private households and care homes"
        if "all" in settings
        else "England, adults in private households"
    )
    lines = [
        (
            f"{title} (published figures: disclosure-controlled, rounded; as in "
            "estimates_england.csv and report.html):"
        )
    ]

    def line(row: Any, label: str) -> str:
        return f"  {label:<22} {row['estimate']:>12,.0f}  ({row['ci_lower']:,.0f} to {row['ci_upper']:,.0f})"

    lines += [line(row, row["quantity"]) for _, row in everyone.iterrows()]
    if "all" in settings:  # quantities published for households only (not measured in care homes)
        households = table[(table["setting"] == "household") & ~table["quantity"].isin(everyone["quantity"])]
        if len(households):
            lines.append("Private households only (not measured in care homes):")
            lines += [line(row, row["quantity"]) for _, row in households.iterrows()]
    return "\n".join(lines)


def _csv(table: pd.DataFrame, path: Path) -> None:
    # Published tables are already at published precision: %.15g only avoids
    # binary noise such as 0.30000000000000004.
    table.to_csv(path, index=False, float_format="%.15g", lineterminator="\n")


def _write_tables(
    publication: Any,
    results: dict[tuple[str, ...], Any],
    out: Path,
    settings: Settings,
    *,
    carers: Any = None,
) -> dict[str, Path]:
    written: dict[str, Path] = {}
    outputs = {
        "estimates_by_area": publication.by_area,
        "estimates_by_characteristic": publication.by_characteristic,
        "estimates_england": publication.england,
        "coverage_gaps": publication.coverage,
    }
    if publication.carers is not None:
        outputs["estimates_carers"] = publication.carers
    if len(publication.coverage_england) and "characteristic" in publication.coverage.columns:
        # England rows too (the report's England coverage table), coded as the England total
        england = publication.coverage_england.assign(
            characteristic="area_code", category=ENGLAND_CODE, area_code=ENGLAND_CODE, area_name=ENGLAND_NAME
        )
        outputs["coverage_gaps"] = pd.concat(
            [publication.coverage, england[publication.coverage.columns]], ignore_index=True
        )
    for name, table in outputs.items():
        path = out / f"{name}.csv"
        _csv(table, path)
        written[path.name] = path
        if settings.output_format == "parquet":
            ppath = out / f"{name}.parquet"
            table.reset_index(drop=True).to_parquet(ppath, index=False)
            written[ppath.name] = ppath
    if settings.save_draws:
        internal = out / INTERNAL
        internal.mkdir()
        readme = internal / "README.txt"
        readme.write_text(
            "NOT FOR PUBLICATION.\n\nThese files hold the unprotected model draws of every cell, "
            "including the cells disclosure control suppressed in the published tables. They are "
            "kept to reproduce and check a run. Publish only the files outside this folder.\n",
            encoding="utf-8",
        )
        written[f"{INTERNAL}/README.txt"] = readme
        for key, estimates in results.items():
            name = "draws_" + ("england" if not key else "_".join(key)) + ".nc"
            path = internal / name
            estimates.draws.to_netcdf(path)
            written[f"{INTERNAL}/{name}"] = path
        if carers is not None:  # the carers' unprotected table (its draws are all-band totals only)
            path = internal / "carers_unprotected.csv"
            _csv(carers.to_frame(), path)
            written[f"{INTERNAL}/{path.name}"] = path
    return written
