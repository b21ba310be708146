"""Run configuration: read a TOML file, validate everything at once, load the inputs.

Every problem is reported together, each with its key path (``models.need.formula``)
and what was expected, before any work starts. See ``examples/config.toml``.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from unmetneed.errors import ConfigError

__all__ = ["RunConfig", "load_config", "sha256"]

LINK_NAMES = ("need", "help", "paid", "council", "not_enough")
STANDARD_BY = ("area_code", "age_band", "sex", "ethnic_group", "disability")
SOURCE_TARGETS = ("council_funded", "need", "unpaid_carers")


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
    formulas: dict[str, str]
    by: tuple[str, ...]
    weighting_margins: tuple[str, ...]
    draws: int
    seed: int
    level: float
    benchmark: bool
    disclosure: dict[str, Any]
    output_dir: Path
    output_format: str
    save_draws: bool
    raw: dict[str, Any] = field(default_factory=dict)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Checker:
    def __init__(self, data: dict[str, Any], base: Path) -> None:
        self.data = data
        self.base = base
        self.problems: list[str] = []

    def get(self, path: str, kind: type | tuple[type, ...], *, required: bool = False,
            default: Any = None, expected: str = "") -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if required:
                    self.problems.append(f"{path}: missing; expected {expected or kind}")
                return default
            node = node[part]
        if not isinstance(node, kind) or (isinstance(node, bool) and kind in (int, float, (int, float))):
            self.problems.append(f"{path}: got {node!r}; expected {expected or kind}")
            return default
        return node

    def path(self, key: str, *, required: bool = False) -> Path | None:
        value = self.get(key, str, required=required, expected="a file path (relative to the config)")
        if value is None:
            return None
        path = (self.base / value).resolve()
        if not path.is_file():
            self.problems.append(f"{key}: file {value!r} not found (looked at {path})")
            return None
        return path


def load_config(path: str | Path, *, out: str | Path | None = None) -> RunConfig:
    """Read and validate a run configuration.

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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    check = _Checker(data, path.parent)
    known_sections = {"inputs", "models", "estimates", "weighting", "disclosure", "output"}
    for section in data:
        if section not in known_sections:
            check.problems.append(f"{section}: unknown section; expected one of {sorted(known_sections)}")

    population = check.path("inputs.population.path", required=True)
    count = check.get("inputs.population.count", str, default="count")
    area_names = check.path("inputs.population.area_names")
    surveys: dict[str, SurveyInput] = {}
    survey_tables = check.get("inputs.surveys", dict, required=True, expected="a table of surveys")
    if survey_tables is not None and "general" not in survey_tables:
        check.problems.append("inputs.surveys.general: missing; the general-population survey with "
                              "need, help, payer and help_enough is required")
    for name in (survey_tables or {}):
        key = f"inputs.surveys.{name}"
        spath = check.path(f"{key}.path", required=True)
        weights = check.get(f"{key}.weights", str, required=True, expected="the weight column name")
        target = check.get(f"{key}.target", str)
        if name != "general" and target is None:
            check.problems.append(f"{key}.target: missing; expected one of {list(SOURCE_TARGETS)} "
                                  "(what this survey's population is compared with)")
        if target is not None and target not in SOURCE_TARGETS:
            check.problems.append(f"{key}.target: got {target!r}; expected one of {list(SOURCE_TARGETS)}")
        lonely = check.get(f"{key}.lonely_psu", str, default="fail")
        if lonely not in ("fail", "adjust", "certainty", "average", "remove"):
            check.problems.append(f"{key}.lonely_psu: got {lonely!r}; expected fail, adjust, certainty, average or remove")
        if spath is not None and weights is not None:
            surveys[name] = SurveyInput(
                path=spath, weights=weights,
                strata=check.get(f"{key}.strata", str), clusters=check.get(f"{key}.clusters", str),
                fpc=check.get(f"{key}.fpc", str), nest=bool(check.get(f"{key}.nest", bool, default=False)),
                lonely_psu=lonely, target=target,
            )
    admin = check.path("inputs.admin.path")
    admin_area = check.get("inputs.admin.area", str, default="area_code")
    admin_count = check.get("inputs.admin.count", str, default="count")
    carers = check.path("inputs.census.unpaid_carers.path")
    if any(s.target == "unpaid_carers" for s in surveys.values()) and carers is None:
        check.problems.append("inputs.census.unpaid_carers.path: needed because a survey's target is "
                              "'unpaid_carers'")

    formulas: dict[str, str] = {}
    models = check.get("models", dict, default={})
    for name in models or {}:
        if name not in LINK_NAMES:
            check.problems.append(f"models.{name}: unknown model; expected one of {list(LINK_NAMES)}")
            continue
        formula = check.get(f"models.{name}.formula", str, required=True, expected="a formula string")
        if formula is not None:
            if "~" not in formula or not formula.split("~")[0].strip() == "outcome":
                check.problems.append(f"models.{name}.formula: got {formula!r}; expected "
                                      "'outcome ~ terms + (1|group) ...' (the response is named outcome)")
            else:
                formulas[name] = formula
    by = check.get("estimates.by", list, default=list(STANDARD_BY))
    for i, b in enumerate(by or []):
        if not isinstance(b, str):
            check.problems.append(f"estimates.by[{i}]: got {b!r}; expected a column name")
    if by and by[0] != "area_code":
        check.problems.append("estimates.by: the first grouping must be 'area_code' (estimates_by_area.csv)")
    draws = check.get("estimates.draws", int, default=1000, expected="a positive integer")
    if isinstance(draws, int) and draws < 2:
        check.problems.append(f"estimates.draws: got {draws}; expected at least 2")
    seed = check.get("estimates.seed", int, required=True, expected="an integer (runs must be reproducible)")
    level = check.get("estimates.level", float, default=0.9, expected="a number in (0, 1)")
    if isinstance(level, float) and not 0 < level < 1:
        check.problems.append(f"estimates.level: got {level}; expected a number in (0, 1)")
    benchmark = check.get("estimates.benchmark_to_admin", bool, default=admin is not None)
    if benchmark and admin is None:
        check.problems.append("estimates.benchmark_to_admin: true needs inputs.admin.path")
    margins = check.get("weighting.margins", list, default=["age_band", "sex"])
    disclosure = {
        "min_count": check.get("disclosure.min_count", int, default=10),
        "rounding": check.get("disclosure.rounding", int, default=5),
        "flag_cv": check.get("disclosure.flag_cv", float, default=0.2),
        "suppress_cv": check.get("disclosure.suppress_cv", float, default=0.5),
        "min_n": check.get("disclosure.min_n", int, default=None),
    }
    for key, value in disclosure.items():
        if isinstance(value, (int, float)) and value < 0:
            check.problems.append(f"disclosure.{key}: got {value}; expected a non-negative number")
    output_dir = out if out is not None else check.get("output.dir", str, default="unmetneed-output")
    output_format = check.get("output.format", str, default="csv")
    if output_format not in ("csv", "parquet"):
        check.problems.append(f"output.format: got {output_format!r}; expected 'csv' or 'parquet'")
    save_draws = check.get("output.save_draws", bool, default=False)

    if check.problems:
        raise ConfigError(
            f"{path}: {len(check.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in check.problems)
        )
    return RunConfig(
        source=path.resolve(), population=population, population_count=count,  # type: ignore[arg-type]
        area_names=area_names, surveys=surveys, admin=admin, admin_area=admin_area,
        admin_count=admin_count, unpaid_carers=carers, formulas=formulas, by=tuple(by),
        weighting_margins=tuple(margins), draws=draws, seed=seed, level=level, benchmark=bool(benchmark),
        disclosure=disclosure, output_dir=Path(output_dir), output_format=output_format,
        save_draws=bool(save_draws), raw=data,
    )


def read_table(path: Path) -> pd.DataFrame:
    """CSV (optionally gzip) or Parquet by extension."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)
