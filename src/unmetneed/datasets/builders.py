"""How ``datasets`` turns its tables into designs and population frames.

``datasets`` sits in the bottom layer: it returns frames and tables only and
imports nothing above ``io`` (``DESIGN.md``, second round). The objects it hands
out -- ``SyntheticEngland.surveys`` (:class:`~unmetneed.SurveyDesign`) and
``SyntheticEngland.population`` (:class:`~unmetneed.PopulationFrame`) -- are
built by the layers that own those classes: ``unmetneed.design`` registers
``SurveyDesign`` as the ``"survey_design"`` builder and ``unmetneed.mrp``
registers ``PopulationFrame`` as the ``"population_frame"`` builder, each when it
is imported (a downward import). Importing any ``unmetneed`` module runs
``unmetneed/__init__.py`` first, which imports both, so the builders are in
place before a loader runs; if one is missing, :func:`build` says which module
to import.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, overload

import pandas as pd

from unmetneed._validate import check_choice
from unmetneed.errors import UnmetneedError

__all__ = [
    "BuilderKind",
    "PopulationFrameBuilder",
    "SurveyDesignBuilder",
    "build_population_frame",
    "build_survey_design",
    "register_builder",
]

#: The objects ``datasets`` has built above it.
BuilderKind = Literal["survey_design", "population_frame"]


class SurveyDesignBuilder(Protocol):
    """Builds a survey design from respondents and their design columns (``SurveyDesign``)."""

    def __call__(
        self,
        df: pd.DataFrame,
        /,
        *,
        weights: str,
        strata: str | None = ...,
        clusters: str | None = ...,
        fpc: str | None = ...,
        nest: bool = ...,
    ) -> Any: ...


class PopulationFrameBuilder(Protocol):
    """Builds a population frame from cells with a ``count`` column (``PopulationFrame``)."""

    def __call__(self, cells: pd.DataFrame, /) -> Any: ...


# kind -> (builder, the module that registers it)
_BUILDERS: dict[str, Any] = {}
_OWNERS: dict[str, str] = {
    "survey_design": "unmetneed.design",
    "population_frame": "unmetneed.mrp",
}


@overload
def register_builder(kind: Literal["survey_design"], builder: SurveyDesignBuilder) -> None: ...
@overload
def register_builder(kind: Literal["population_frame"], builder: PopulationFrameBuilder) -> None: ...
def register_builder(kind: BuilderKind, builder: Any) -> None:
    """Register the callable that builds ``kind`` objects (called by the layer that owns them).

    Registering again replaces the builder (re-importing a module is harmless).
    """
    check_choice(kind, "kind", BuilderKind)
    if not callable(builder):
        raise UnmetneedError(f"the {kind!r} builder must be callable; got {type(builder).__name__}")
    _BUILDERS[kind] = builder


def _builder(kind: BuilderKind) -> Any:
    try:
        return _BUILDERS[kind]
    except KeyError:
        owner = _OWNERS[kind]
        raise UnmetneedError(
            f"no {kind!r} builder is registered: import {owner} (or simply `import unmetneed`) "
            "before loading a dataset; it registers the class that datasets builds"
        ) from None


class _Registered:
    """Calls the builder registered for ``kind`` (looked up at each call, so registering later works)."""

    def __init__(self, kind: BuilderKind) -> None:
        self.kind = kind

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _builder(self.kind)(*args, **kwargs)


#: A survey design of ``df`` built by the registered ``"survey_design"`` builder
#: (``build_survey_design(df, weights=..., strata=..., ...)``, typed by :class:`SurveyDesignBuilder`).
build_survey_design: SurveyDesignBuilder = _Registered("survey_design")
#: A population frame of ``cells`` built by the registered ``"population_frame"`` builder.
build_population_frame: PopulationFrameBuilder = _Registered("population_frame")
