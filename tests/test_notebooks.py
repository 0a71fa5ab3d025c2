"""Static checks on every notebook: valid, output-free, portable, and set up the same way; and no course file
points a learner at the maintainers' research notes.

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


# The maintainers' notes sit beside their checkout (``../shared``), not in the course a learner clones: a fact
# carries its primary source (paper, repository file or issue, docs page), never a pointer to those notes.
# CONTRIBUTING.md, written for maintainers, may name them.
MAINTAINER_NOTES = re.compile(r"\.\./shared\b|shared[ /](?:reference|seeds)\b"
                              r"|\b(?:evaluation|pedagogy|pins|trl|unsloth)\.md\b", re.IGNORECASE)  # the notes' files
COURSE_FILES = sorted(
    [p for d in ("src", "notebooks", "benchmarks") for p in (REPO_ROOT / d).rglob("*")
     if p.is_file() and p.suffix in {".py", ".ipynb", ".md", ".txt", ".json", ".toml", ".yml", ".yaml", ".cfg"}]
    + [REPO_ROOT / "README.md"])


def test_course_files_are_found():
    names = {p.relative_to(REPO_ROOT).as_posix() for p in COURSE_FILES}
    assert {"README.md", "src/grpo_course/gpu.py", "notebooks/00_start_here.ipynb"} <= names


def test_no_course_file_points_at_the_maintainers_notes():
    hits = [f"{p.relative_to(REPO_ROOT)}:{n}: {line.strip()[:100]}"
            for p in COURSE_FILES
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if MAINTAINER_NOTES.search(line)]
    assert not hits, "cite the primary source instead of ../shared:\n" + "\n".join(hits)


# What JupyterLab fills in when the course's kernel starts. A notebook saved with less opens already marked as
# modified (JupyterLab records the kernel's metadata as an edit), and cells without ids get ids added.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_metadata_is_complete_so_it_opens_unmodified(path):
    from ipykernel.ipkernel import IPythonKernel

    nb = json.loads(path.read_text())
    meta = nb["metadata"]
    assert meta.get("kernelspec") == KERNELSPEC
    info = meta.get("language_info", {})
    expected = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    assert {k: v for k, v in info.items() if k != "version"} == expected, "incomplete language_info"
    assert re.fullmatch(r"3\.\d+\.\d+", info.get("version", "")), "language_info.version: the kernel's Python"
    assert nb.get("nbformat_minor", 0) >= 5 and all(c.get("id") for c in nb["cells"]), "cell ids (nbformat 4.5)"


def test_every_notebook_has_the_same_kernel_metadata():
    metas = {p.name: json.loads(p.read_text())["metadata"] for p in NOTEBOOKS}
    first = metas["00_start_here.ipynb"]
    different = [name for name, m in metas.items()
                 if (m.get("kernelspec"), m.get("language_info")) != (first.get("kernelspec"), first.get("language_info"))]
    assert not different, f"kernel metadata differs from 00_start_here's in {different}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_shared_setup_cell(path):
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert _source(first).strip() == NOTEBOOK_SETUP_CELL.strip()


# The course's style: a code cell is short (about 10 lines, one idea) with prose before it. Over this many
# non-empty lines a cell must be split, or its logic moved into grpo_course.
MAX_CODE_LINES = 15
# Cells allowed to be longer, each for a stated reason: (notebook, a string that marks the cell, its own limit).
LONG_CELLS_ALLOWED = [
    # GRPO from scratch: the whole training loop, shown inline once on purpose (one function cannot be split
    # across cells); tests/test_scratch.py checks it against grpo_course.scratch.
    ("01_advantage_math.ipynb", "def grpo_from_scratch(", 50),
]


def _code_lines(cell) -> int:
    return sum(1 for line in _source(cell).splitlines() if line.strip())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_are_short(path):
    cells = json.loads(path.read_text())["cells"]
    code = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    allowed = [(marker, limit) for name, marker, limit in LONG_CELLS_ALLOWED if name == path.name]
    for marker, limit in allowed:
        marked = [c for _, c in code if marker in _source(c)]
        assert len(marked) == 1, f"LONG_CELLS_ALLOWED names {marker!r}, which is in {len(marked)} cells here"
        assert _code_lines(marked[0]) <= limit, f"the cell with {marker!r} is longer than its limit {limit}"
    too_long = [f"cell {i} ({_code_lines(c)} lines): {_source(c).strip().splitlines()[0][:60]!r}"
                for i, c in code if _code_lines(c) > MAX_CODE_LINES
                and not any(marker in _source(c) for marker, _ in allowed)]
    assert not too_long, f"code cells over {MAX_CODE_LINES} non-empty lines (split them): {too_long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_a_colab_badge(path):
    nb = json.loads(path.read_text())
    first_md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    assert f"notebooks/{path.name}" in _source(first_md) and "colab" in _source(first_md).lower()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["code", "medcalc", "legal-qa"])
def test_the_training_notebook_trains_any_task_by_changing_one_name(task, tmp_path, monkeypatch):
    """Notebook 04 has one cell that chooses the task; with another name there, the unchanged notebook runs
    top to bottom on cpu-tiny and trains that task's own model with its rewards (nbmake runs it as gsm8k)."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("GRPO_COURSE_RUNS", str(tmp_path))
    monkeypatch.setenv("GRPO_COURSE_PROFILE", "cpu-tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(REPO_ROOT / "notebooks" / "04_grpo_training.ipynb", as_version=4)
    chooser = [c for c in nb.cells if c.cell_type == "code" and re.search(r'^TASK = "gsm8k"', c.source, re.M)]
    assert len(chooser) == 1, "notebook 04 must have exactly one task-choosing cell"
    chooser[0].source = chooser[0].source.replace('TASK = "gsm8k"', f'TASK = "{task}"')
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"model data/tasks/{task}/tiny" in printed  # the task's own model, not the GSM8K tiny Llama
    assert re.search(rf"task {re.escape(task)} on profile cpu-tiny: step (\d+)/\1", printed), printed[-3000:]
    assert (tmp_path / f"{task}-cpu-tiny" / "final" / "adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("name", ["02_reward_design", "07_more_tasks"])
def test_the_prose_says_an_unjudged_completion_is_dropped_not_scored_zero(name):
    """Issue #15: TRL 1.14 leaves a completion out of the loss only when *every* reward function returns None
    (its grpo_trainer's unscorable mask); the notebooks must not say a single None is ignored."""
    nb = json.loads((REPO_ROOT / "notebooks" / f"{name}.ipynb").read_text())
    prose = " ".join(" ".join(_source(c).split()) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "**every** reward function" in prose and "the format reward included" in prose
    assert "drops" in prose and "advantage 0" in prose
    assert "ignored by TRL" not in prose  # the wrong statement #14 found
