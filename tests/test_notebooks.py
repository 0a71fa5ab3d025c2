"""Static checks on every notebook: valid, output-free, portable, and set up the same way.

Executing them is nbmake's job (``pytest --nbmake notebooks``); these checks are instant.
"""

import json
import re

import pytest

from grpo_course.bootstrap import NOTEBOOK_SETUP_CELL
from grpo_course.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# Machine paths that must never appear (Colab's /content is fine: it is everyone's).
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:work|home|Users|root|tmp|mnt|opt|srv|var)/[\w.-]+")


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert "00_start_here.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_clean(path):
    nb = json.loads(path.read_text())
    assert nb.get("nbformat") == 4
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_topic.ipynb"
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code_cells, "a notebook with no code"
    for cell in code_cells:
        assert not cell.get("outputs"), "commit notebooks without outputs"
        assert cell.get("execution_count") is None, "commit notebooks without execution counts"
    for cell in nb["cells"]:
        src = _source(cell)
        assert not ABSOLUTE_PATH.search(src), f"absolute machine path in: {src[:120]!r}"
        if cell["cell_type"] == "code":
            assert not re.search(r"""["']cuda(:\d)?["']""", src), "use profile.device, never a literal 'cuda'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_shared_setup_cell(path):
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert _source(first).strip() == NOTEBOOK_SETUP_CELL.strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_a_colab_badge(path):
    nb = json.loads(path.read_text())
    first_md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    assert f"notebooks/{path.name}" in _source(first_md) and "colab" in _source(first_md).lower()
