"""Layer rule: modeling imports torch/transformers (and PIL/numpy/safetensors/tokenizers), never
ray, data_gen, pipelines or jobs."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("ray", "data_gen", "pipelines", "jobs", "torchvision")
PACKAGE = Path(__file__).resolve().parents[2] / "modeling"


def test_modeling_imports_stay_in_its_layer():
    offenders = []
    for file in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            offenders += [f"{file.name}: {root}" for root in roots if root in FORBIDDEN]
    assert not offenders


def test_files_stay_small():
    sizes = {f.name: len(f.read_text().splitlines()) for f in PACKAGE.glob("*.py")}
    assert max(sizes.values()) <= 400, sizes
