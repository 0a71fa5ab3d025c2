"""The functions a notebook defines inline, executed from its cells, so tests can check them against the package."""

import json

from grpo_course.paths import REPO_ROOT


def notebook_functions(notebook: str, names) -> dict:
    """Execute, in the order of ``names``, the one code cell of ``notebooks/<notebook>`` that defines each name
    (each such cell imports what it needs); returns the namespace they were defined in."""
    cells = json.loads((REPO_ROOT / "notebooks" / notebook).read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    namespace: dict = {}
    for name in names:
        matches = [src for src in sources if f"def {name}(" in src]
        assert len(matches) == 1, f"{notebook} should define {name} in exactly one cell"
        exec(compile(matches[0], f"{notebook}:{name}", "exec"), namespace)
    return namespace
