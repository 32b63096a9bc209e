"""Training checkpoints of the tiny model written by DeepSpeed itself, for the evaluation tests.

    python -m tests.pipelines.evaluate.make_checkpoint OUT

For ZeRO 2 and 3 (one gloo rank each, in this process): the tiny model (seed 0) with every weight
moved off its init (frozen encoders included), wrapped in a DeepSpeed engine as training wraps it
(`tests.pipelines.deepspeed_runs.engine_for`), saved as `pipelines/train/checkpointing.py` saves a
step (`OUT/zero<Z>/sft/checkpoints/step_00000003/`: the `deepspeed` tag, trainer_state.json) and
exported as training exports `final/` (`OUT/zero<Z>/final`, save_pretrained): the reference the
consolidated checkpoint must equal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def write(out: Path, zero: int) -> None:
    import modeling
    from pipelines.train import checkpointing
    from tests.pipelines.deepspeed_runs import engine_for

    model, processor = modeling.load("tiny", seed=0)
    generator = torch.Generator().manual_seed(zero)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    model.train()
    engine, _ = engine_for(model, zero, micro_batch=1, accumulation=1)
    step = out / f"zero{zero}" / "sft" / checkpointing.EXPERIMENT / checkpointing.checkpoint_name(3)
    step.mkdir(parents=True)
    engine.save_checkpoint(str(step), tag=checkpointing.DS_TAG)
    (step / checkpointing.STATE_FILE).write_text(json.dumps({"step": 3}))
    checkpointing.export_pretrained(engine, processor, out / f"zero{zero}" / "final")


def main(out: Path) -> None:
    from tests.pipelines.deepspeed_runs import free_port, init_group

    init_group(0, 1, free_port())
    for zero in (2, 3):
        write(out, zero)
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
