"""Immutability helpers shared by every layer: read-only arrays and objects frozen after ``__init__``.

Designs, estimates and fits promise that nothing a caller holds can change them
(issue 16). Arrays they keep are read-only copies; objects refuse attribute
assignment once built; tables they hand out are copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FrozenAfterInit", "readonly"]


def readonly(values: Any, dtype: Any = None, *, copy: bool = True) -> np.ndarray:
    """``values`` as a read-only array: a copy, or (``copy=False``) a read-only view.

    A view is enough for an array the object built itself; a copy is needed
    for anything the caller may still hold (a frame's column, an argument).
    """
    array = np.array(values, dtype=dtype) if copy else np.asarray(values, dtype=dtype).view()
    array.setflags(write=False)
    return array


class FrozenAfterInit:
    """Refuses attribute assignment once :meth:`_freeze` has been called (end of ``__init__``).

    Subclasses may set ``_immutable_hint`` to say what to do instead. A lazily
    computed cache is written with ``object.__setattr__``.
    """

    _frozen = False
    _immutable_hint = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(
                f"{type(self).__name__} is immutable; {name!r} cannot be set. {self._immutable_hint}".rstrip()
            )
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)
