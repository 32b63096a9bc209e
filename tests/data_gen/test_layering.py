"""Layer rules inside and around data_gen (ARCHITECTURE.md): no torch anywhere in it; `scans` imports
no other subpackage, `synthetic` and `qa` only `scans`, `build` any; and `pipelines/config` imports
no stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("scans", "synthetic", "qa", "build")
ALLOWED = {"scans": set(), "synthetic": {"scans"}, "qa": {"scans"}, "build": {"scans", "qa"}}


def imported_modules(file: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_data_gen_never_imports_torch():
    offenders = [f"{f.relative_to(REPO)}: {m}" for f in (REPO / "data_gen").rglob("*.py")
                 for m in imported_modules(f) if m.split(".")[0] in ("torch", "transformers", "deepspeed")]  # fmt: skip
    assert not offenders


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackages_import_only_downward(package):
    offenders = []
    for file in (REPO / "data_gen" / package).rglob("*.py"):
        for module in imported_modules(file):
            parts = module.split(".")
            if parts[0] == "data_gen" and len(parts) > 1 and parts[1] in SUBPACKAGES and parts[1] != package:
                if parts[1] not in ALLOWED[package]:
                    offenders.append(f"{file.relative_to(REPO)}: {module}")
    assert not offenders


def test_config_package_imports_no_stage():
    stages = ("pipelines.sft", "pipelines.grpo", "pipelines.evaluate")
    offenders = [f"{f.name}: {m}" for f in (REPO / "pipelines" / "config").glob("*.py")
                 for m in imported_modules(f) if m.startswith(stages)]  # fmt: skip
    assert not offenders
