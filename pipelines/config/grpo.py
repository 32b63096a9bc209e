"""GRPO settings (the `grpo` section of the run config). Defaults are the Spatial-MLLM recipe
(reference §3): 8 rollouts per question at temperature 1.0, k3 KL to a frozen reference with
beta 0.04, clip epsilon 0.2, lr 1e-6, reward = format + accuracy (weight 1 each). Scaling and
ZeRO live in the shared `train` section.

One GRPO step = every worker takes `prompts_per_step` prompts, samples `num_generations`
completions for each, scores them, and makes `num_iterations` optimizer updates on them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipelines.config.optimizer import OptimizerConfig
from pipelines.config.reward_pool import RewardPoolConfig
from pipelines.rewards import RewardConfig


class GRPOConfig(OptimizerConfig):
    """The optimizer fields come from OptimizerConfig; those the paper sets differently for GRPO
    are redeclared below with GRPO's defaults."""

    max_steps: int = Field(20, ge=-1)
    """GRPO steps (each: generate, score, num_iterations optimizer updates); -1 = one pass over the
    train prompts."""
    init_from: str | None = None
    """Policy to start from (a save_pretrained directory); null = run_dir/sft/final when it exists,
    else model.path / the preset."""
    split: str = "train"
    """Dataset split the prompts come from (run_dir/dataset/<split>) when data.mixture lists no sources."""
    open_ended: Literal["skip", "exact_match"] = "skip"
    """Records with a free-form answer (ScanQA, SQA3D, open-ended file records): `skip` leaves them
    out of GRPO, counted in the start line; `exact_match` rewards an answer equal to any accepted
    answer after normalisation (lower case, punctuation and the articles a/an/the dropped, spaces
    collapsed). Multi-turn records are always left out (GRPO asks one question)."""
    skip_bad_records: bool = False
    """Bad records (a malformed line, missing or unreadable media) are skipped and counted instead of
    stopping the job, up to train.max_bad_record_fraction of the records."""
    prompts_per_step: int = Field(2, ge=1)
    """Prompts per worker per GRPO step, count; each gets num_generations rollouts, so one step
    trains on train.num_workers x prompts_per_step x num_generations completions."""
    micro_batch_prompts: int = Field(1, ge=1)
    """Prompts per forward/backward of the update (their rollouts go together), count; must
    divide prompts_per_step (the quotient is the gradient accumulation)."""
    logprob_batch_size: int = Field(8, ge=1)
    """Rollouts per no-grad log-prob forward (old and reference passes), count: bounds memory (the
    logits of one pass are this x completion length x vocabulary)."""
    shared_prefix: bool = True
    """Compute each prompt once for its num_generations completions: generation prefills it once
    and decodes the G completions from that one KV cache; the old-policy, reference and update
    passes pack the G completions after one copy of the prompt under a block attention mask
    (modeling/shared_prefix.py). Same samples, log-probs and update as false up to float summation
    order; false repeats the prompt G times in every pass (transformers' generate with
    num_return_sequences), for comparison or as a fallback."""
    num_generations: int = Field(8, ge=1)
    """Completions sampled per prompt (G, the group size), count. Paper: 8."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature; log-probs are computed from logits divided by it (as TRL). Paper: 1.0."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass; 1.0 = off."""
    top_k: int = Field(0, ge=0)
    """Sample only among the k likeliest tokens; 0 = off."""
    max_completion_length: int = Field(512, ge=1)
    """Longest completion, tokens; a completion that reaches it without `<|im_end|>` is truncated
    (counted in train/completions/clipped_ratio) and still trained on."""
    num_iterations: int = Field(1, ge=1)
    """Optimizer updates per batch of rollouts (TRL's num_iterations, mu); > 1 keeps the log-probs
    of the generating policy as the ratio's denominator."""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "grpo"
    """Loss reduction with TRL's meanings: grpo = mean per sequence then over sequences; bnpo = mean
    over all active tokens of a micro-batch; dr_grpo = sum / (completions x max_completion_length);
    dapo = sum / active tokens of the whole optimizer step."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Advantage = (r - group mean) / (std + 1e-4) with the std of the group, of the whole batch, or
    no division (`none`, Dr. GRPO)."""
    epsilon: float = Field(0.2, ge=0)
    """Lower clip of the probability ratio: ratios below 1 - epsilon get no gradient. Paper: 0.2."""
    epsilon_high: float | None = Field(None, ge=0)
    """Upper clip: 1 + epsilon_high (DAPO's clip-higher, e.g. 0.28); null = epsilon."""
    beta: float = Field(0.04, ge=0)
    """Weight of the k3 KL penalty to the frozen reference policy; 0 = no KL and no reference
    model is loaded. Paper: 0.04."""
    lr_llm: float = Field(1e-6, ge=0)
    """Peak learning rate of the language model (paper: 1e-6); 0 = a control run that never moves."""
    lr_connector: float = Field(1e-6, ge=0)
    """Peak learning rate of the spatial connector and Qwen's patch merger."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW decoupled weight decay (TRL's default 0); never applied to biases and norm weights."""
    lr_schedule: Literal["cosine", "linear", "constant"] = "constant"
    """Decay after warmup, to 0 at the last optimizer update (or constant)."""
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    """Linear warmup from 0 over this share of the optimizer updates, fraction."""
    num_frames: int = Field(16, ge=1)
    """Frames per prompt, count; a record with more gets an evenly spread subset. Paper: 16."""
    frame_sampling: Literal["space_aware", "uniform"] = "space_aware"
    """Which record column picks the frames: frame_indices (space-aware: ours, or a source's
    frame_indices_file) or uniform_indices; a record listing none gets data.mixture's video rule."""
    think_format: bool = True
    """Ask for `<think>...</think><answer>...</answer>` in the prompt (the format reward expects it)."""
    prompt_style: Literal["spatial_mllm", "vsi_bench"] = "spatial_mllm"
    """Wording of the question turn (pipelines/prompting.py), as sft.prompt_style; with
    think_format the post-prompt is the think/answer instruction."""
    shuffle: bool = True
    """Shuffle the prompts each epoch (a pure function of seed and epoch); false = file order."""
    reward: RewardConfig = Field(default_factory=RewardConfig)
    """Reward weights and Video-R1's optional length bonus."""
    reward_pool: RewardPoolConfig = Field(default_factory=RewardPoolConfig)
    """Reward actors owned by each training worker: count, CPUs, batch size, timeouts."""
    log_every: int = Field(1, ge=1)
    """Write metrics every this many steps, steps."""
    sample_every: int = Field(10, ge=0)
    """Log a table of sample completions (prompt, completion, rewards) to W&B and samples.jsonl
    every this many steps, steps; 0 = never."""
    num_samples: int = Field(4, ge=1)
    """Completions per sample table, count (rank 0's first rollouts)."""
    save_steps: int = Field(10, ge=0)
    """Checkpoint every this many GRPO steps, steps; 0 = only when stopping early."""
    stop_at_step: int = Field(-1, ge=-1)
    """Checkpoint and stop after this many steps without changing the schedule (a time-boxed job;
    re-running resumes), steps; -1 = run to the end."""

    @property
    def upper_epsilon(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    @property
    def accumulation(self) -> int:
        """Micro-batches per optimizer update on one worker."""
        return self.prompts_per_step // self.micro_batch_prompts

    @model_validator(mode="after")
    def _micro_batches_divide(self) -> GRPOConfig:
        if self.prompts_per_step % self.micro_batch_prompts:
            raise ValueError(
                f"grpo.micro_batch_prompts={self.micro_batch_prompts} must divide "
                f"grpo.prompts_per_step={self.prompts_per_step}"
            )
        return self
