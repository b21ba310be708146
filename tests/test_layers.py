"""The package's layers, checked by reading every module's imports (issue 16).

Two rules, from ``ARCHITECTURE.md``:

(a) no module imports a private name (a ``_x`` module or a ``_x`` name) from
    another subpackage; the top-level private modules in ``BASE``
    (``unmetneed._validate``, ``_blas``, ``_provenance``, ``_immutable``) are the
    shared helpers every layer may use;
(b) no module imports from a higher layer than its own;
(c) no module reads a private attribute (``obj._x``, ``obj`` not ``self`` or
    ``cls``) that only classes of another subpackage define.

Every import counts: module level, inside functions (deferred) and under
``TYPE_CHECKING``. Violations that other work still has to remove are listed in
``KNOWN_VIOLATIONS`` with what each needs; the test fails on any violation not
listed and on a listed one that has gone (delete its line), so the list only
shrinks. The subpackages in ``STRICT`` may have no listed violation at all.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "unmetneed"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

# ARCHITECTURE.md's diagram, bottom (0) to top. Same-layer imports are allowed.
LAYERS: dict[str, int] = {
    "margins": 0, "io": 0, "harmonise": 0, "datasets": 0,
    "design": 1,
    "weighting": 2,
    "mrp": 3, "sae": 3,
    "disclosure": 4,
    "estimates": 5, "coverage": 5,
    "cli": 6, "report": 6,
}
# Top-level modules: the shared base below every layer, and the package's front doors above.
BASE = {"errors", "_validate", "_blas", "_provenance", "_immutable"}
TOP = {"__init__", "__main__"}
TOP_LAYER = max(LAYERS.values()) + 1
BASE_LAYER = -1

STRICT = {"design", "weighting", "margins", "harmonise", "disclosure", "sae", "mrp", "io", "datasets"}

# "importer -> imported: rule", with what would remove it.
KNOWN_VIOLATIONS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> tuple[str, int]:
    """The subpackage (or top-level module) of ``unmetneed.x.y`` and its layer."""
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: its __init__ re-exports everything
        return "__init__", TOP_LAYER
    head = parts[1]
    if head in LAYERS:
        return head, LAYERS[head]
    if head in BASE:
        return head, BASE_LAYER
    if head in TOP:
        return head, TOP_LAYER
    raise AssertionError(f"{module}: add {head!r} to LAYERS, BASE or TOP in tests/test_layers.py")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, is_package: bool, tree: ast.AST) -> list[tuple[str, str | None]]:
    """Every ``unmetneed`` import of a module: (module, name imported from it or None)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            found += [(target, alias.name) for alias in node.names]
    return [(m, n) for m, n in found if m == PACKAGE or m.startswith(PACKAGE + ".")]


def _is_module(dotted: str) -> bool:
    path = SOURCE.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _import_violations(importer: str, is_package: bool, tree: ast.AST) -> set[str]:
    own, own_layer = _layer(importer)
    out = set()
    for target, name in _imports(importer, is_package, tree):
        full = f"{target}.{name}" if name else target
        if name and _is_module(full):  # `from unmetneed.a import b` may name a module
            target, name = full, None
        theirs, their_layer = _layer(target)
        if theirs != own and their_layer != BASE_LAYER:
            private = [p for p in target.split(".")[2:] if _is_private(p)]
            if private or (name and _is_private(name)):
                out.add(f"{importer} -> {full}: private")
        if their_layer > own_layer and theirs != own:
            shown = ".".join(target.split(".")[:2])
            out.add(f"{importer} -> {shown}: layer")
    return out


def _private_attribute(name: str) -> bool:
    # `_repr_html_` and the like are protocols (IPython's), not private.
    return _is_private(name) and not name.endswith("_")


def _defined_attributes(trees: dict[str, ast.AST]) -> dict[str, set[str]]:
    """Private attribute name -> the subpackages whose classes define it (def or self._x = ...)."""
    owners: dict[str, set[str]] = {}
    for module, tree in trees.items():
        own = _layer(module)[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names = [inner.name]
                elif isinstance(inner, (ast.Assign, ast.AnnAssign)):
                    targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
                    names = [t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", "")
                             for t in targets]
                else:
                    continue
                for name in names:
                    if _private_attribute(name):
                        owners.setdefault(name, set()).add(own)
    return owners


def _attribute_violations(importer: str, tree: ast.AST, owners: dict[str, set[str]]) -> set[str]:
    own = _layer(importer)[0]
    out = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private_attribute(node.attr)):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        where = owners.get(node.attr)
        if where and own not in where:
            out.add(f"{importer} -> .{node.attr}: private attribute")
    return out


@functools.cache
def _all_violations() -> frozenset[str]:
    paths = sorted(SOURCE.rglob("*.py"))
    trees = {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in paths}
    packages = {_module_name(p) for p in paths if p.name == "__init__.py"}
    owners = _defined_attributes(trees)
    found: set[str] = set()
    for module, tree in trees.items():
        found |= _import_violations(module, module in packages, tree)
        found |= _attribute_violations(module, tree, owners)
    return frozenset(found)


def test_no_new_layer_or_private_import_violations() -> None:
    found = _all_violations()
    new = sorted(found - set(KNOWN_VIOLATIONS))
    assert not new, "imports that break the layers (ARCHITECTURE.md):\n" + "\n".join(new)


def test_known_violations_only_shrink() -> None:
    gone = sorted(set(KNOWN_VIOLATIONS) - _all_violations())
    assert not gone, (
        "these listed violations are fixed: delete them from KNOWN_VIOLATIONS:\n" + "\n".join(gone)
    )


def test_strict_subpackages_have_no_known_violation() -> None:
    listed = [v for v in KNOWN_VIOLATIONS if _layer(v.split(" -> ")[0])[0] in STRICT]
    assert not listed, f"subpackages in STRICT may not carry known violations: {listed}"


def test_the_checker_sees_what_it_should() -> None:
    """The rules on small made-up modules: a private import, an upward import, allowed ones."""
    cases = {
        "from unmetneed.io._common import preview": True,            # private module, other subpackage
        "from unmetneed.design.survey_design import _check": True,  # private name, other subpackage
        "from unmetneed.estimates import care": True,                 # upward: weighting -> estimates
        "from unmetneed._validate import show": False,                # shared base helper
        "from unmetneed.weighting.blocks import _merge": False,       # private, same subpackage
        "from unmetneed.design import SurveyDesign": False,           # downward, public
        "from . import blocks": False,                                # relative, same subpackage
        "design._replace(data=None)": True,                           # design's private method
        "design.data.copy()": False,
        "report._repr_html_()": False,                                # a protocol, not private
    }
    owners = {"_replace": {"design"}}
    module = "unmetneed.weighting.probe"  # parsed only: nothing is written or imported
    for source, bad in cases.items():
        tree = ast.parse(source)
        found = _import_violations(module, False, tree) | _attribute_violations(module, tree, owners)
        assert bool(found) is bad, source
