"""examples/fairy-tales.ipynb runs top to bottom (nbclient, the kernel of this Python), offline:
the fetch fails at once against a closed local port and the notebook falls back to the
repository's tiny Shakespeare, with a budget of a few seconds."""

import os

import pytest

from conftest import ROOT


def test_the_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The notebook reads ../data/tinyshakespeare.txt and writes runs/ beside itself.
    (tmp_path / "examples").mkdir()
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.setenv("CHARRNN_EXAMPLE_MINUTES", "0.1")
    monkeypatch.setenv("CHARRNN_GUTENBERG_MIRROR", "http://127.0.0.1:9")
    nb = nbformat.read(ROOT / "examples" / "fairy-tales.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / "examples")}}
    )
    client.execute()
    outputs = [
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    ]
    shown = "\n".join(outputs)
    assert "cannot download" in shown  # the offline branch
    assert "tinyshakespeare.txt: 1,115,394 characters" in shown
    assert "validation loss" in shown
    samples = [o for o in outputs if o.startswith("ROMEO:")]
    assert len(samples) >= 2, shown  # temperature 1 and 0.1
    assert "Score(nats=" in shown
    assert (tmp_path / "examples" / "runs" / "tinyshakespeare" / "best.safetensors").is_file()
