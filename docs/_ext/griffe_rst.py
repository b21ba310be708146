"""Griffe extension: the reStructuredText bits of our numpydoc docstrings as Markdown.

The docstrings follow numpydoc, which lets Sphinx roles (``:func:`rake```,
``:math:`\\hat t```) and the ``.. math::`` directive into the prose. The API
pages are rendered by mkdocstrings as Markdown, where those would show raw, so
after the package is loaded every docstring is rewritten once:

- ``:math:`x``` becomes inline arithmatex math ``\\(x\\)``;
- ``.. math::`` and its indented block become display math ``$$ ... $$``
  (one block per blank-line separated equation, as Sphinx does);
- ``:func:`~a.b.f```, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``,
  ``:data:``, ``:exc:``, ``:obj:`` become code spans (``f()`` for functions and
  methods; ``~`` keeps the last component, as in Sphinx).

The source files are not touched. Loaded by mkdocs.yml (``extensions:``).
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?:py:)?(func|meth|class|attr|mod|data|exc|obj):`(~?)([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")


def _role(match: re.Match[str]) -> str:
    kind, tilde, target = match.groups()
    target = target.strip()
    if "<" in target and target.endswith(">"):  # :func:`title <target>`
        target = target[: target.index("<")].strip()
    elif tilde:
        target = target.rsplit(".", 1)[-1]
    if kind in ("func", "meth") and not target.endswith(")"):
        target += "()"
    return f"`{target}`"


def _math_blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match["indent"].expandtabs())
        body: list[str] = [match["rest"]] if match["rest"].strip() else []
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line.expandtabs()) - len(line.expandtabs().lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        equations = [part.strip() for part in re.split(r"\n[ \t]*\n", textwrap.dedent("\n".join(body)))]
        pad = " " * indent
        for equation in (e for e in equations if e):
            out.extend(["", f"{pad}$$"])
            out.extend(pad + row for row in equation.splitlines())
            out.extend([f"{pad}$$", ""])
    return "\n".join(out)


def convert(text: str) -> str:
    """The docstring ``text`` with roles and math directives as Markdown."""
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"\\({m.group(1)}\\)", text)
    return _ROLE.sub(_role, text)


class RstToMarkdown(griffe.Extension):
    """Rewrite the docstrings of every loaded object (aliases share their target's)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
