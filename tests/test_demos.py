"""Every notebook in demos/ runs top to bottom (with small settings) so it cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

DEMOS = sorted((Path(__file__).parents[1] / "demos").glob("*.ipynb"))


@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TL_BILINEAR_DEMO_SMALL", "1")
    monkeypatch.setenv("TL_BILINEAR_DEMO_OUT", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
