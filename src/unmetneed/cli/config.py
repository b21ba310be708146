"""Run configuration: read a TOML file, validate it against a typed schema, load the inputs.

The schema (pydantic models, one per section) refuses unknown keys at every level
with a "did you mean" suggestion, and every problem is reported together, each
with its key path (``models.need.formula``) and what was expected, before any work
starts. See ``examples/config.toml``.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from unmetneed._provenance import sha256_file
from unmetneed.design.options import LonelyPSU
from unmetneed.errors import ConfigError, UnmetneedError
from unmetneed.io import read_csv_checked

__all__ = ["MIN_DRAWS", "ConfigSchema", "RunConfig", "Settings", "load_config", "sha256"]

LINK_NAMES = ("need", "help", "paid", "council", "not_enough")
STANDARD_BY = ("area_code", "age_band", "sex", "ethnic_group", "disability")
SOURCE_TARGETS = ("council_funded", "need", "unpaid_carers")
#: Published tables need a spread of draws (the CVs behind flags and suppression).
MIN_DRAWS = 100


@dataclass(frozen=True)
class SurveyInput:
    path: Path
    weights: str
    strata: str | None = None
    clusters: str | None = None
    fpc: str | None = None
    nest: bool = False
    lonely_psu: str = "fail"
    target: str | None = None  # for coverage sources
    setting: str | None = None  # the setting of the target (household | care_home | all)


@dataclass
class Settings:
    """How the pipeline runs: models, tables, draws, disclosure control, output format."""

    formulas: dict[str, str]
    by: tuple[str, ...]
    weighting_margins: tuple[str, ...]
    draws: int
    seed: int
    level: float
    benchmark: bool
    disclosure: dict[str, Any]
    output_format: str = "csv"
    save_draws: bool = False


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration (paths resolved against the config file)."""

    source: Path | None
    population: Path
    population_count: str
    area_names: Path | None
    surveys: dict[str, SurveyInput]
    admin: Path | None
    admin_area: str
    admin_count: str
    unpaid_carers: Path | None
    settings: Settings
    output_dir: Path
    raw: dict[str, Any] = field(default_factory=dict)
    admin_cells: Path | None = None
    composition_survey: str | None = None
    unpaid_care: Path | None = None
    care_home_register: Path | None = None
    care_home_returns: Path | None = None
    care_home_covariates: Path | None = None
    care_home_covariate_columns: tuple[str, ...] = ()


#: SHA-256 of an input file (hex): the pipeline's name for :func:`unmetneed._provenance.sha256_file`.
sha256 = sha256_file


# -- the typed schema: every section refuses keys it does not know ----------------
class _Section(BaseModel):
    # strict: no silent coercion ("5" is not 5, true is not 1); ints are accepted where
    # a number is expected (flag_cv = 1).
    model_config = ConfigDict(extra="forbid", strict=True)


class PopulationSchema(_Section):
    path: str
    count: str = "count"
    area_names: str | None = None


class SurveySchema(_Section):
    path: str
    weights: str
    strata: str | None = None
    clusters: str | None = None
    fpc: str | None = None
    nest: bool = False
    lonely_psu: LonelyPSU = "fail"
    target: Literal["council_funded", "need", "unpaid_carers"] | None = None
    setting: Literal["household", "care_home", "all"] | None = None


class CareHomesSchema(_Section):
    # "register" is a BaseModel attribute: the field is named apart, keyed as "register"
    register_path: str = Field(alias="register")
    returns: str
    covariates: str | None = None  # a table with area_code and council covariates
    covariate_columns: list[str] = []


class AdminSchema(_Section):
    path: str
    area: str = "area_code"
    count: str = "count"
    # council-funded counts by area_code, setting (community | residential) and age_group
    # (18-64 | 65+), split by characteristic with the composition of a survey of
    # council-funded users (unmetneed.estimate_council_funded)
    cells: str | None = None
    composition_survey: str | None = None


class CensusTableSchema(_Section):
    path: str


class CensusSchema(_Section):
    unpaid_carers: CensusTableSchema | None = None
    # Census 2021 TS039 by council and hours band (a Nomis / ONS file read_census_table
    # reads): with the survey whose target is unpaid_carers (SACE) it gives
    # estimates_carers.csv (carers known and unknown to councils, unmet support needs)
    unpaid_care: CensusTableSchema | None = None


class InputsSchema(_Section):
    population: PopulationSchema
    surveys: dict[str, SurveySchema]
    admin: AdminSchema | None = None
    census: CensusSchema | None = None
    care_homes: CareHomesSchema | None = None


class ModelSchema(_Section):
    formula: str


class ModelsSchema(_Section):
    need: ModelSchema | None = None
    help: ModelSchema | None = None
    paid: ModelSchema | None = None
    council: ModelSchema | None = None
    not_enough: ModelSchema | None = None


class EstimatesSchema(_Section):
    by: list[str] = Field(default_factory=lambda: list(STANDARD_BY))
    draws: int = Field(default=1000, ge=MIN_DRAWS)
    seed: int = Field(ge=0)
    level: float = Field(default=0.9, gt=0, lt=1)
    benchmark_to_admin: bool | None = None


class WeightingSchema(_Section):
    margins: list[str] = Field(default_factory=lambda: ["age_band", "sex"])


class DisclosureSchema(_Section):
    min_count: float = Field(default=10, ge=0)
    rounding: int = Field(default=5, ge=1)
    flag_cv: float = Field(default=0.2, ge=0)
    suppress_cv: float = Field(default=0.5, ge=0)
    min_n: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _flag_below_suppress(self) -> DisclosureSchema:
        if self.flag_cv > self.suppress_cv:
            raise ValueError(
                f"flag_cv = {self.flag_cv:g} is above suppress_cv = {self.suppress_cv:g}; "
                "the CV that flags must not exceed the CV that suppresses"
            )
        return self


class OutputSchema(_Section):
    dir: str = "unmetneed-output"
    format: Literal["csv", "parquet"] = "csv"
    save_draws: bool = False


class ConfigSchema(_Section):
    """The whole run configuration (``examples/config.toml`` shows every key)."""

    inputs: InputsSchema
    models: ModelsSchema = Field(default_factory=ModelsSchema)
    estimates: EstimatesSchema
    weighting: WeightingSchema = Field(default_factory=WeightingSchema)
    disclosure: DisclosureSchema = Field(default_factory=DisclosureSchema)
    output: OutputSchema = Field(default_factory=OutputSchema)


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X and ``dict[str, X]`` -> X (the class that holds the next keys)."""
    while True:
        origin = get_origin(annotation)
        args = [a for a in get_args(annotation) if a is not type(None)]
        if origin is None or not args:
            return annotation
        annotation = args[-1] if origin is dict else args[0]


def _is_schema(value: Any) -> bool:
    return get_origin(value) is None and isinstance(value, type) and issubclass(value, BaseModel)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema class that holds the key at ``loc`` (for "did you mean")."""
    model: Any = ConfigSchema
    for part in loc[:-1]:
        optional = [a for a in get_args(model) if a is not type(None)]
        if get_origin(model) is not dict and optional and get_origin(model) is not None:
            model = optional[0]
        if get_origin(model) is dict:
            model = get_args(model)[-1]  # ``part`` is a key of the table (a survey's name)
            continue
        if not _is_schema(model) or part not in model.model_fields:
            return None
        model = model.model_fields[part].annotation
    model = _unwrap(model)
    return model if _is_schema(model) else None


def _schema_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in loc)
        path = path.replace(".[", "[")
        kind = item["type"]
        if kind == "extra_forbidden":
            holder = _model_at(loc)
            known = sorted(holder.model_fields) if holder is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{path}: unknown key{hint} (known keys here: {', '.join(known)})")
        elif kind == "missing":
            problems.append(f"{path}: missing")
        elif kind == "literal_error":
            problems.append(f"{path}: got {item.get('input')!r}; {item['msg'].lower()}")
        elif kind == "value_error":
            problems.append(f"{path or 'config'}: {item['msg'].removeprefix('Value error, ')}")
        else:
            problems.append(f"{path}: got {item.get('input')!r}; {item['msg'].lower()}")
    return problems


def _resolve(base: Path, value: str | None, key: str, problems: list[str]) -> Path | None:
    if value is None:
        return None
    path = (base / value).resolve()
    if not path.is_file():
        problems.append(f"{key}: file {value!r} not found (looked at {path})")
        return None
    return path


def _section(table: dict[str, Any], key: str) -> dict[str, Any]:
    """``table[key]`` when it is a table itself, else an empty one."""
    value = table.get(key)
    return value if isinstance(value, dict) else {}


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    """Checks on the raw table that do not depend on it passing the schema."""
    problems = []
    inputs = _section(data, "inputs")
    raw_surveys = inputs.get("surveys")
    surveys = raw_surveys if isinstance(raw_surveys, dict) else None
    if surveys is not None and "general" not in surveys:
        problems.append(
            "inputs.surveys.general: missing; the general-population survey with "
            "need, help, payer and help_enough is required"
        )
    for name, spec in (surveys or {}).items():
        if name != "general" and isinstance(spec, dict) and "target" not in spec:
            problems.append(
                f"inputs.surveys.{name}.target: missing; expected one of "
                f"{list(SOURCE_TARGETS)} (what this survey's population is compared with)"
            )
    models = _section(data, "models")
    for name, spec in models.items():
        formula = spec.get("formula") if isinstance(spec, dict) else None
        if isinstance(formula, str):
            if "~" not in formula or formula.split("~")[0].strip() != "outcome":
                problems.append(
                    f"models.{name}.formula: got {formula!r}; expected "
                    "'outcome ~ terms + (1|group) ...' (the response is named outcome)"
                )
            else:
                try:
                    from unmetneed.mrp.formula import parse_formula

                    parse_formula(formula)
                except UnmetneedError as error:
                    problems.append(f"models.{name}.formula: {error}")
    estimates = _section(data, "estimates")
    by = estimates.get("by")
    if isinstance(by, list) and by and by[0] != "area_code":
        problems.append("estimates.by: the first grouping must be 'area_code' (estimates_by_area.csv)")
    if estimates.get("benchmark_to_admin") is True and "admin" not in inputs:
        problems.append("estimates.benchmark_to_admin: true needs inputs.admin.path")
    if isinstance(surveys, dict) and any(
        isinstance(s, dict) and s.get("target") == "unpaid_carers" for s in surveys.values()
    ):
        census = _section(inputs, "census")
        if "unpaid_carers" not in census:
            problems.append(
                "inputs.census.unpaid_carers.path: needed because a survey's target is 'unpaid_carers'"
            )
    return problems


def load_config(path: str | Path, *, out: str | Path | None = None) -> RunConfig:
    """Read and validate a run configuration against the typed schema.

    Every key is checked (unknown keys are refused at every level, with the
    closest known key suggested), every file is looked for, and every problem
    is reported together. Paths, ``output.dir`` included, resolve against the
    config file's folder; ``out`` (the ``--out`` option) against the working
    directory.

    Raises
    ------
    ConfigError
        Listing every problem found, one per line, each with its key path.

    Examples
    --------
    >>> from unmetneed.cli.config import load_config
    >>> from unmetneed.datasets import reference_path
    >>> config = load_config(reference_path().parents[1] / "examples" / "config.toml")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); TOML files are UTF-8: "
            "re-save it with UTF-8 encoding"
        ) from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    problems: list[str] = []
    schema: ConfigSchema | None = None
    try:
        schema = ConfigSchema.model_validate(data)
    except ValidationError as error:
        problems += _schema_problems(error)
    problems += _semantic_problems(data)
    base = path.parent
    if schema is not None:
        inp = schema.inputs
        population = _resolve(base, inp.population.path, "inputs.population.path", problems)
        area_names = _resolve(base, inp.population.area_names, "inputs.population.area_names", problems)
        surveys = {}
        for name, spec in inp.surveys.items():
            spath = _resolve(base, spec.path, f"inputs.surveys.{name}.path", problems)
            surveys[name] = SurveyInput(
                path=spath,  # type: ignore[arg-type]  # None only with a problem, raised below
                weights=spec.weights,
                strata=spec.strata,
                clusters=spec.clusters,
                fpc=spec.fpc,
                nest=spec.nest,
                lonely_psu=spec.lonely_psu,
                target=spec.target,
                setting=spec.setting,
            )
        admin = _resolve(base, inp.admin.path if inp.admin else None, "inputs.admin.path", problems)
        admin_cells = _resolve(base, inp.admin.cells if inp.admin else None, "inputs.admin.cells", problems)
        if inp.admin and inp.admin.composition_survey and inp.admin.composition_survey not in inp.surveys:
            problems.append(
                f"inputs.admin.composition_survey: {inp.admin.composition_survey!r} is not "
                f"a survey of inputs.surveys ({', '.join(inp.surveys)})"
            )
        if inp.admin and bool(inp.admin.cells) != bool(inp.admin.composition_survey):
            problems.append(
                "inputs.admin.cells and inputs.admin.composition_survey go together: the "
                "cells are split by the survey's composition"
            )
        carers = _resolve(
            base,
            inp.census.unpaid_carers.path if inp.census and inp.census.unpaid_carers else None,
            "inputs.census.unpaid_carers.path",
            problems,
        )
        unpaid_care = _resolve(
            base,
            inp.census.unpaid_care.path if inp.census and inp.census.unpaid_care else None,
            "inputs.census.unpaid_care.path",
            problems,
        )
        homes = inp.care_homes
        register = _resolve(
            base, homes.register_path if homes else None, "inputs.care_homes.register", problems
        )
        returns = _resolve(base, homes.returns if homes else None, "inputs.care_homes.returns", problems)
        home_covariates = _resolve(
            base, homes.covariates if homes else None, "inputs.care_homes.covariates", problems
        )
    else:
        # Still report missing files of the keys that are there.
        inputs = _section(data, "inputs")
        pop = _section(inputs, "population")
        if isinstance(pop.get("path"), str):
            _resolve(base, pop["path"], "inputs.population.path", problems)
        for name, spec in _section(inputs, "surveys").items():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                _resolve(base, spec["path"], f"inputs.surveys.{name}.path", problems)
    if problems or schema is None:
        unique = list(dict.fromkeys(problems))
        raise ConfigError(f"{path}: {len(unique)} problem(s):\n" + "\n".join(f"  - {p}" for p in unique))
    estimates = schema.estimates
    benchmark = (
        estimates.benchmark_to_admin if estimates.benchmark_to_admin is not None else admin is not None
    )
    formulas = {name: spec.formula for name, spec in schema.models if spec is not None}
    disclosure = schema.disclosure.model_dump()
    output_dir = Path(out) if out is not None else (base / schema.output.dir).resolve()
    return RunConfig(
        source=path.resolve(),
        population=population,  # type: ignore[arg-type]
        population_count=schema.inputs.population.count,
        area_names=area_names,
        surveys=surveys,
        admin=admin,
        admin_area=schema.inputs.admin.area if schema.inputs.admin else "area_code",
        admin_count=schema.inputs.admin.count if schema.inputs.admin else "count",
        unpaid_carers=carers,
        care_home_register=register,
        care_home_returns=returns,
        admin_cells=admin_cells,
        unpaid_care=unpaid_care,
        composition_survey=schema.inputs.admin.composition_survey if schema.inputs.admin else None,
        care_home_covariates=home_covariates,
        care_home_covariate_columns=(
            tuple(schema.inputs.care_homes.covariate_columns) if schema.inputs.care_homes else ()
        ),
        settings=Settings(
            formulas=formulas,
            by=tuple(estimates.by),
            weighting_margins=tuple(schema.weighting.margins),
            draws=estimates.draws,
            seed=estimates.seed,
            level=estimates.level,
            benchmark=bool(benchmark),
            disclosure=disclosure,
            output_format=schema.output.format,
            save_draws=schema.output.save_draws,
        ),
        output_dir=output_dir,
        raw=data,
    )


def read_table(path: Path) -> pd.DataFrame:
    """CSV (optionally gzip) or Parquet by extension; CSVs must be whole, rectangular tables.

    Codes stay strings ("E06000001", "01"), "NA" is not missing, and truncated,
    ragged, HTML or repeated-header files are refused (:func:`unmetneed.io.read_csv_checked`).
    """
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return read_csv_checked(path)
