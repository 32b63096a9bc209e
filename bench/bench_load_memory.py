"""Peak memory of loading the 3B model: a random bf16 Spatial-MLLM v1.1-layout checkpoint (written
by `real_size_check.write_checkpoint`, VGGT's heads included) loaded in bf16 in a fresh process,
as a ratio to the model's own bf16 bytes (target <= 1.3).

    python bench/bench_load_memory.py [--dir /tmp/spatial_mllm_3b_random]

Tensors are read one at a time in the target dtype and the 587 VGGT head tensors are never read
(modeling/checkpoint_io.py), so the peak is the model plus the interpreter and one tensor. A bf16
file loaded in bf16 stays memory-mapped (read on first use, private copy-on-write pages); the
benchmark reads every parameter once, so the peak counts the whole model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(directory: str) -> dict:
    """In this (fresh) process: load, then read every parameter once (safetensors tensors of the
    target dtype are memory-mapped and read on first use, so the load alone touches almost
    nothing), then the peak RSS (mapped file pages included) and the model's bytes."""
    import torch

    import modeling

    start = time.perf_counter()
    model, _ = modeling.load("spatial-mllm-3b", path=directory, dtype="bf16")
    loaded = time.perf_counter() - start
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with torch.no_grad():
        for p in model.parameters():
            p.sum()  # one read of every byte, no fp32 copy of the tensor
    seconds = time.perf_counter() - start
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "model": model_bytes,
            "seconds": seconds, "load_seconds": loaded, "after_load": after_load}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/spatial_mllm_3b_random")
    args = parser.parse_args()
    from real_size_check import write_checkpoint

    write_checkpoint(Path(args.dir))
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_load_memory as b; "
            f"print(json.dumps(b.measure({args.dir!r})))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        print(proc.stderr[-3000:])
        return 1
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"load peak RSS / model bf16 bytes: {r['peak'] / r['model']:.2f} ({r['peak'] / 2**30:.1f} GiB peak for "
          f"{r['model'] / 2**30:.2f} GiB of parameters, every one read; {r['after_load'] / 2**30:.1f} GiB and "
          f"{r['load_seconds']:.0f} s after modeling.load, {r['seconds']:.0f} s once all were read); target <= 1.3")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
