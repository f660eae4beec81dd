"""Sphinx configuration: the API reference is generated from the numpydoc docstrings.

Build (CI runs it through ``tests/test_docs.py``, warnings as errors)::

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

import closedloop

# the example scripts (examples/*.py) are documented from their docstrings
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "closedloop"
author = "closedloop contributors"
copyright = "2026, closedloop contributors"  # noqa: A001 (Sphinx's name)
version = release = closedloop.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Documents the signatures as written (``from __future__ import annotations``)
# instead of resolving every annotation, which would need every optional extra.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# numpydoc renders "Attributes"/"Methods"; autodoc already lists members.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

myst_enable_extensions = ["colon_fence"]

intersphinx_mapping = {}  # offline builds in CI: no inventories fetched

html_theme = "alabaster"
html_title = f"closedloop {release}"


def _notebooks_as_markdown() -> None:
    # The example notebooks as pages (markdown cells as they are, code cells
    # as fenced Python), so that the docs need no notebook renderer; they are
    # executed by tests/test_notebooks.py, not here.
    import json

    here = Path(__file__).resolve().parent
    out = here / "_notebooks"
    out.mkdir(exist_ok=True)
    for path in sorted((here.parent / "examples" / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        parts = []
        for cell in cells:
            text = "".join(cell["source"]).rstrip()
            if cell["cell_type"] == "code":
                text = f"```python\n{text}\n```"
            parts.append(text)
        note = f"\n\n*From `examples/notebooks/{path.name}`.*\n"
        (out / f"{path.stem}.md").write_text("\n\n".join(parts) + note, encoding="utf-8")


_notebooks_as_markdown()
