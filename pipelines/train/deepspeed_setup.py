"""DeepSpeed for our trainers: the config dict, transformers' learning-rate schedule, and `initialize` with a
torch AdamW (DeepSpeed wraps it in ZeRO; no DeepSpeed optimizer, so nothing is compiled).

On CPU (tests, laptops): DeepSpeed's accelerator is forced to CPU and its shared-memory comm op
is turned off (otherwise every start compiles it for half a minute); collectives go over the
gloo group Ray Train already set up.
"""

from __future__ import annotations

import contextlib
import math
import os

from pipelines.config.train import TrainConfig

SCHEDULES = ("cosine", "linear", "constant")


def prepare_env(use_gpu: bool) -> None:
    """Call before importing deepspeed in a worker."""
    if not use_gpu:
        os.environ["DS_ACCELERATOR"] = "cpu"
    import deepspeed.ops

    if not use_gpu:
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def lr_scheduler(optimizer, *, schedule: str, total_steps: int, warmup_steps: int):
    """transformers' schedule, as the HF Trainer (the authors' SFT, TRL's GRPO) builds it: linear
    warmup from 0 (update 0 runs at lr 0) over warmup_steps, then `cosine` or `linear` decay to 0
    at total_steps, or `constant`. DeepSpeed steps it once per optimizer update."""
    from transformers import get_scheduler

    if schedule not in SCHEDULES:
        raise ValueError(f"lr schedule must be one of {SCHEDULES}, got {schedule!r}")
    name = "constant_with_warmup" if schedule == "constant" else schedule
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)


def warmup_updates(warmup_ratio: float, total_updates: int) -> int:
    """Warmup length the HF Trainer takes for a ratio: rounded up."""
    return math.ceil(warmup_ratio * total_updates)


def deepspeed_config(
    train: TrainConfig,
    *,
    dtype: str,
    micro_batch_size: int,
    accumulation: int,
    max_grad_norm: float,
) -> dict:
    """The DeepSpeed config dict: ZeRO stage, precision, batch arithmetic, clipping."""
    zero: dict = {"stage": train.zero_stage, "overlap_comm": False, "contiguous_gradients": True}
    if train.zero_stage == 3:
        # Lets the final export gather full weights on rank 0 (ZeRO-3 shards every parameter).
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": micro_batch_size * accumulation * train.num_workers,
        "gradient_clipping": max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == "bf16"},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }


def training_engine(model, cfg, optimizer, *, micro_batch_size: int, accumulation: int, total_updates: int):
    """(DeepSpeed engine, optimizer group names) for `model` in train mode, with `optimizer`'s settings
    (an OptimizerConfig: cfg.sft or cfg.grpo): gradient checkpointing if asked, the recipe's
    parameter groups (encoders frozen), ZeRO from cfg.train, the schedule over `total_updates`."""
    import modeling

    if optimizer.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    groups = modeling.trainable_parameter_groups(
        model, lr_llm=optimizer.lr_llm, lr_connector=optimizer.lr_connector, weight_decay=optimizer.weight_decay,
        no_decay=optimizer.no_decay,
    )  # fmt: skip
    ds_config = deepspeed_config(cfg.train, dtype=cfg.model.dtype, micro_batch_size=micro_batch_size,
                                 accumulation=accumulation, max_grad_norm=optimizer.max_grad_norm)  # fmt: skip
    warmup = warmup_updates(optimizer.warmup_ratio, total_updates)
    engine = initialize(model, groups, ds_config, total_steps=total_updates, warmup_steps=warmup,
                        schedule=optimizer.lr_schedule, betas=optimizer.adam_betas, eps=optimizer.adam_eps)  # fmt: skip
    return engine, [g["name"] for g in groups]


def initialize(
    model,
    param_groups: list[dict],
    ds_config: dict,
    *,
    total_steps: int,
    warmup_steps: int,
    schedule: str,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
):
    """`deepspeed.initialize` with torch AdamW over `param_groups` (each with its own `lr` and
    `weight_decay`) and `lr_scheduler`; returns the engine. DeepSpeed steps the scheduler once per
    optimizer step (after the accumulation boundary)."""
    import deepspeed
    import torch

    optimizer = torch.optim.AdamW(param_groups, betas=betas, eps=eps, foreach=False)
    scheduler = lr_scheduler(optimizer, schedule=schedule, total_steps=total_steps, warmup_steps=warmup_steps)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
    )
    return engine


@contextlib.contextmanager
def unwrapped_for_generation(engine):
    """The engine's module with whole parameters and no ZeRO-3 hooks, for `generate`.

    Under ZeRO-3 every module call gathers its parameters collectively. Ranks that sample
    completions of different lengths make different numbers of decoding forwards, so with the
    hooks on they would issue unequal collectives and hang (and a gathered parameter is
    re-partitioned after each module call, so gathering once up front does not stop it). As TRL's
    `unwrap_model_for_generation` does, gather every parameter once (one collective, the same on
    all ranks), take DeepSpeed's module hooks off for the call, and put them back before the
    parameters are partitioned again. ZeRO-1/2 keep whole parameters: the module as it is."""
    if not engine.zero_optimization_partition_weights():
        yield engine.module
        return
    import deepspeed

    offload = engine.optimizer.parameter_offload
    with deepspeed.zero.GatheredParameters(list(engine.module.parameters())):
        for param in engine.module.parameters():
            param.ds_active_sub_modules.clear()
        for hook in offload.forward_hooks + offload.backward_hooks:
            hook.remove()
        offload.forward_hooks, offload.backward_hooks = [], []
        try:
            yield engine.module
        finally:
            offload._register_deepspeed_module(offload.module)  # the hooks back, trace re-recorded
