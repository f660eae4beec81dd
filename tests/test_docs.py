"""The documentation builds from the docstrings with Sphinx, warnings as errors.

A docstring that numpydoc or docutils cannot parse, a broken cross-reference
or a page missing from a toctree fails here, so the API reference cannot rot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    proc = subprocess.run(
        [*cmd, "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the pages a reader looks for, and the API reference generated from the
    # docstrings (not an empty shell): the controllers' classes are documented
    for page in ("architecture", "hdf5-layout", "brian", "examples", "api/index"):
        assert (out / f"{page}.html").is_file(), page
    controllers = (out / "api" / "controllers.html").read_text(encoding="utf-8")
    for name in ("OnOff", "DualThreshold", "PID", "Controller"):
        assert f'id="closedloop.controllers.{name}"' in controllers, name
    layout = (out / "hdf5-layout.html").read_text(encoding="utf-8")
    assert "intervals/stimulation_on" in layout  # the NWB mapping, from closedloop.io.nwb
