"""orderpulse/commands/report.py: parameter injection, rendering to HTML, and readable failures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from orderpulse.commands.report import ReportError, inject_parameters, render_notebook


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _params(source: str = "x = 1") -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": ["parameters"]})


def test_inject_parameters_adds_a_tagged_cell_right_after_the_parameters_cell():
    nb = _notebook(new_markdown_cell("# t"), _params(), new_code_cell("print(x)"))
    inject_parameters(nb, {"x": 2, "ids": ["a", "b"], "path": Path("/data/o.csv"), "start": None})
    assert [c.source.splitlines()[0] for c in nb.cells] == [
        "# t",
        "x = 1",
        "# Parameters injected by orderpulse report",
        "print(x)",
    ]
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    assert nb.cells[2].source.splitlines()[1:] == [
        "x = 2",
        "ids = ['a', 'b']",
        "path = '/data/o.csv'",
        "start = None",
    ]


def test_inject_parameters_replaces_an_earlier_injection():
    nb = _notebook(_params(), new_code_cell("print(x)"))
    inject_parameters(nb, {"x": 2})
    inject_parameters(nb, {"x": 3})
    assert len(nb.cells) == 3
    assert nb.cells[1].source.endswith("x = 3")


def test_inject_parameters_needs_a_parameters_cell():
    with pytest.raises(ReportError, match="no cell tagged 'parameters'"):
        inject_parameters(_notebook(new_code_cell("x = 1")), {"x": 2})


def test_inject_parameters_refuses_values_that_are_not_literals():
    with pytest.raises(ValueError, match="'when' must be a Python literal.*Got object"):
        inject_parameters(_notebook(_params()), {"when": object()})


def test_render_notebook_executes_with_the_parameters_and_embeds_figures(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(
        _notebook(
            _params("n = 1"),
            new_code_cell(
                "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                "fig, ax = plt.subplots()\nax.plot(range(n))\nprint('n is', n)\n"
                "import os\nprint(os.environ['MLFLOW_TRACKING_URI'])"
            ),
        ),
        path,
    )
    result = render_notebook(path, {"n": 5}, tmp_path / "out", "demo")
    html = Path(result["html"]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert "n is 5" in html
    assert "plt.subplots" not in html  # code hidden by default
    executed = nbformat.read(result["notebook"], as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "mlflow.db" in text  # the kernel got this process's store


def test_render_notebook_failure_names_the_error_and_keeps_the_partial_notebook(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(_params(), new_code_cell("raise KeyError('no such series')")), path)
    with pytest.raises(
        ReportError, match=r"nb.ipynb failed in a cell with KeyError: 'no such series'.*bad.ipynb"
    ):
        render_notebook(path, {}, tmp_path / "out", "bad")
    assert (tmp_path / "out" / "bad.ipynb").exists()


def test_render_notebook_names_a_missing_notebook(tmp_path):
    with pytest.raises(ReportError, match="nope.ipynb not found"):
        render_notebook(tmp_path / "nope.ipynb", {}, tmp_path, "x")
