"""Layer rule inside pipelines/ (ARCHITECTURE.md: imports only point down): a stage package
(`sft`, `grpo`, `evaluate`, `sample_frames`) imports no other stage package; `train` (what both
training stages share) and `formats` (files several stages read) import no stage, and `formats` not
`train` either. What two stages share goes down into one of those, or into a top-level module.

Every import counts: module-level and inside functions, `import x` and `from x import y`
(`from pipelines import evaluate` included), relative ones resolved, and `importlib.import_module`
with a literal name."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("sft", "grpo", "evaluate", "sample_frames")
# package -> the packages it must not import (a stage: every other stage)
FORBIDDEN = {
    **{stage: tuple(s for s in STAGES if s != stage) for stage in STAGES},
    "train": STAGES,
    "formats": (*STAGES, "train"),
}


def module_name(file: Path, root: Path) -> str:
    """`root/grpo/step.py` -> `pipelines.grpo.step` (root = the `pipelines` folder); a package's
    `__init__.py` is the package."""
    parts = [root.name, *file.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(file: Path, root: Path) -> list[tuple[int, list[str], str]]:
    """(line, the modules it may name, the statement as written) for every import in `file`."""
    module = module_name(file, root)
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    tree = ast.parse(file.read_text(), filename=str(file))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.append((node.lineno, [a.name for a in node.names], ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: up level - 1 packages from this module's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pipelines import grpo`
            out.append((node.lineno, names, ast.unparse(node)))
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, [node.args[0].value], ast.unparse(node)))
    return out


def subpackage(module: str, top: str) -> str | None:
    """`pipelines.grpo.step` -> `grpo` (for top = `pipelines`); None outside `top`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == top else None


def violations(root: Path) -> list[str]:
    """Every import under `root` (a `pipelines` folder) that breaks the rule, as
    `path:line: statement (a imports b)`."""
    out = []
    for file in sorted(root.rglob("*.py")):
        own = subpackage(module_name(file, root), root.name)
        if own not in FORBIDDEN:
            continue
        for line, names, text in imports(file, root):
            hit = next((p for p in map(lambda n: subpackage(n, root.name), names) if p in FORBIDDEN[own]), None)
            if hit:
                out.append(f"{file.relative_to(root.parent).as_posix()}:{line}: {text} ({own} imports {hit})")
    return out


def test_stages_import_no_other_stage_and_shared_layers_no_stage():
    found = violations(REPO / "pipelines")
    assert not found, "imports that point up or across (move the shared piece down):\n" + "\n".join(found)


def test_the_check_reports_each_kind_of_crossing(tmp_path):
    root = tmp_path / "pipelines"
    files = {
        "__init__.py": "",
        "media.py": "from pipelines.evaluate import run\n",  # a top-level module: not a stage, allowed
        "sft/__init__.py": "",
        "sft/data.py": "import json\n\n\ndef f():\n    from pipelines.grpo.rollout import generate\n",
        "sft/samples.py": "from . import data\nfrom pipelines.train import loop\nfrom pipelines import formats\n",
        "evaluate/__init__.py": "from ..sample_frames.inputs import list_videos\n",
        "evaluate/run.py": "from pipelines import media, sft\n",
        "train/__init__.py": "",
        "train/data.py": "import os\nimport pipelines.sample_frames.run as sf\n",
        "train/sub/__init__.py": "",
        "train/sub/deep.py": "from ...evaluate import inputs\n",
        "formats/__init__.py": "",
        "formats/x.py": "import importlib\n\nm = importlib.import_module('pipelines.train.data')\n",
        "grpo/__init__.py": "",
        "grpo/ok.py": "from pipelines.formats.x import m\nfrom .. import train, media\nfrom pipelines.grpo import ok\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert violations(root) == [
        "pipelines/evaluate/__init__.py:1: from ..sample_frames.inputs import list_videos (evaluate imports sample_frames)",
        "pipelines/evaluate/run.py:1: from pipelines import media, sft (evaluate imports sft)",
        "pipelines/formats/x.py:3: importlib.import_module('pipelines.train.data') (formats imports train)",
        "pipelines/sft/data.py:5: from pipelines.grpo.rollout import generate (sft imports grpo)",
        "pipelines/train/data.py:2: import pipelines.sample_frames.run as sf (train imports sample_frames)",
        "pipelines/train/sub/deep.py:1: from ...evaluate import inputs (train imports evaluate)",
    ]
