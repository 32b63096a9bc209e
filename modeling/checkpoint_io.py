"""Reading a checkpoint's tensors: which files hold them, their names without their data, and
only the tensors a model keeps, each cast to its dtype as it is read (a skipped tensor is never
read, so loading a bf16 release in bf16 holds the model once, plus one tensor)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


def tensor_names(files: list[Path]) -> list[str]:
    """Every tensor name of checkpoint files, reading no tensor data (safetensors headers;
    torch files memory-mapped)."""
    names: list[str] = []
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                names += list(f.keys())
        else:
            names += list(torch_state(file))
    return names


def torch_state(file: Path) -> dict[str, torch.Tensor]:
    """A torch state dict file, memory-mapped where its format allows (tensors read on use)."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be mapped
        state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # training saves wrap the state dict as {"model": ...}
    if not isinstance(state, dict):
        raise ValueError(f"{file} does not hold a state dict")
    return state


def read_mapped(files: list[Path], rename, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensors of `files` that `rename` (name -> target name, or None to skip) keeps, under
    their target names, each cast to `dtype` (floating point only) as it is read; and the names
    skipped. A skipped tensor is never read."""
    state: dict[str, torch.Tensor] = {}
    skipped: list[str] = []

    def keep(name: str, read) -> None:
        target = rename(name)
        if target is None:
            skipped.append(name)
            return
        tensor = read()
        state[target] = tensor.to(dtype) if tensor.is_floating_point() else tensor

    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    keep(name, lambda name=name: f.get_tensor(name))
        else:
            for name, tensor in torch_state(file).items():
                keep(name, lambda tensor=tensor: tensor)
    return state, skipped


def checkpoint_files(path: str | os.PathLike) -> list[Path]:
    """The weight files of a directory (an index's shards first)."""
    path = Path(path)
    files = []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).exists():  # the index names the shards; other weight files are not the model's
            weight_map = json.loads((path / index).read_text())["weight_map"]
            files = [path / name for name in sorted(set(weight_map.values()))]
            break
    else:
        for pattern in ("model.safetensors", "*.safetensors", "pytorch_model*.bin"):
            files = sorted(path.glob(pattern))
            if files:
                break
    if not files:
        raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin weights in {path}")
    return files
