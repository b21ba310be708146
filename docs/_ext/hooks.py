"""MkDocs hooks (loaded by mkdocs.yml ``hooks:``).

Every ``docs/methods/*.md`` page appears under "Methods" in the navigation,
also pages added after the nav in mkdocs.yml was written (the methods pages
are written by each layer's developers): the listed ones keep their order and
titles, the others follow in file-name order, titled by their first heading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SECTION = "Methods"
FOLDER = "methods"


def _listed(nav: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= _listed(value)
    elif isinstance(nav, list):
        for item in nav:
            found |= _listed(item)
    return found


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1)
    return path.stem.replace("-", " ").replace("_", " ").capitalize()


def on_config(config: Any, **kwargs: Any) -> Any:
    nav = config.nav
    if not nav:
        return config
    section = next((item[SECTION] for item in nav if isinstance(item, dict) and SECTION in item), None)
    if not isinstance(section, list):
        return config
    listed = _listed(nav)
    for path in sorted((Path(config.docs_dir) / FOLDER).glob("*.md")):
        relative = f"{FOLDER}/{path.name}"
        if relative not in listed:
            section.append({_title(path): relative})
    return config
