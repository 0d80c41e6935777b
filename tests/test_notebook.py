"""The notebook runs end to end: the shipped model on a real photo, then a quick shapes model (trained when no
demo checkpoint exists)."""
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "attention_demo.ipynb"


def test_attention_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOW_ATTEND_CHECKPOINT", str(tmp_path / "no_such_checkpoint.pt"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "shipped model flickr8k_" in text  # part 1: the shipped model captioned the real photo
    assert "trained a quick model" in text
    assert "grounded words" in text
    images = [o for o in outputs if "image/png" in o.get("data", {}) or "image/gif" in o.get("data", {})]
    assert len(images) >= 4  # the real photo's figure, two shapes figures and the GIF
    assert (tmp_path / "notebook_runs" / "attention.gif").is_file()
