"""The chain of binary models behind the care populations.

Each link is a binary multilevel model fitted on the respondents it applies
to; multi-category answers (help, who pays) become a sequence of yes/no
questions:

=============  =========================================  ===========================
link           outcome                                    respondents
=============  =========================================  ===========================
``need``       needs help with a daily activity           everyone
``help``       gets any help                              ``need == 1``
``paid``       some help is paid for                      ``help != "none"``
``council``    the council pays (``council`` or ``both``) ``help == "paid"``
``not_enough`` the help is not enough                     ``help != "none"``
=============  =========================================  ===========================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns, row_examples, show
from unmetneed.errors import ModelError

__all__ = ["LINKS", "Link", "link_data"]

HELP_VALUES = ("none", "unpaid_only", "paid")
PAYER_VALUES = ("council", "self", "both")


@dataclass(frozen=True)
class Link:
    name: str
    description: str


LINKS = (
    Link("need", "needs help with at least one daily activity"),
    Link("help", "gets any help | need"),
    Link("paid", "some help is paid for | help"),
    Link("council", "council funds some of it (payer council or both) | paid help"),
    Link("not_enough", "help is not enough | help"),
)


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().str.lower()


def _binary(data: pd.DataFrame, column: str, who: str) -> pd.Series:
    """A 0/1 item as numbers, refused (naming rows) where it is anything else."""
    values = pd.to_numeric(data[column], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        raise ModelError(
            f"column {column!r} must be 0/1 for {who}; not so in {row_examples(bad.to_numpy(), data.index)}"
        )
    return values


def _check_values(values: pd.Series, allowed: tuple[str, ...], column: str, rows: pd.Index) -> None:
    bad = values.isna() | ~values.isin(allowed)
    if bad.any():
        examples = values[bad].head(3).tolist()
        raise ModelError(
            f"column {column!r} must be one of {list(allowed)} for these respondents; found "
            f"{[show(v) for v in examples]} in {row_examples(bad.to_numpy(), rows)}"
        )


def link_data(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Respondents and 0/1 outcome (column ``outcome``) of each link.

    Raises
    ------
    ModelError
        A care item is missing or has an unknown value for respondents it
        applies to (e.g. ``help`` missing for someone with ``need == 1``).
    """
    require_columns(data, ["need", "help", "payer", "help_enough"], "survey care item")
    need = _binary(data, "need", "every respondent")
    with_need = data[need.to_numpy() == 1]
    help_ = _text(with_need["help"])
    _check_values(help_, HELP_VALUES, "help", with_need.index)
    helped = with_need[(help_ != "none").to_numpy()]
    helped_help = _text(helped["help"])
    paid = helped[(helped_help == "paid").to_numpy()]
    payer = _text(paid["payer"])
    _check_values(payer, PAYER_VALUES, "payer", paid.index)
    enough = _binary(helped, "help_enough", "respondents with help")
    return {
        "need": data.assign(outcome=need.to_numpy().astype(np.int64)),
        "help": with_need.assign(outcome=(help_ != "none").to_numpy().astype(np.int64)),
        "paid": helped.assign(outcome=(helped_help == "paid").to_numpy().astype(np.int64)),
        "council": paid.assign(outcome=payer.isin(["council", "both"]).to_numpy().astype(np.int64)),
        "not_enough": helped.assign(outcome=(enough.to_numpy() == 0).astype(np.int64)),
    }
