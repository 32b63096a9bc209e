"""The optimizer settings both training stages share (`sft.*` and `grpo.*` extend this model): AdamW
over the recipe's parameter groups, the warmup + decay schedule, gradient clipping. Defaults are
SFT's (release v1.1); GRPO's section overrides the ones the paper sets differently."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    lr_llm: float = Field(7e-6, ge=0)
    """Peak learning rate of the language model (SFT: release v1.1 7e-6, paper 1e-5); 0 = a control
    run that never moves."""
    lr_connector: float = Field(2e-5, ge=0)
    """Peak learning rate of the spatial connector and Qwen's patch merger (SFT: release 2e-5, paper 1e-5)."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW decoupled weight decay, on the parameters no_decay does not exempt."""
    no_decay: Literal["biases_and_norms", "biases_and_layernorm"] = "biases_and_norms"
    """Parameters without weight decay: `biases_and_norms` = biases and every 1-D weight (all norm
    weights); `biases_and_layernorm` = biases and nn.LayerNorm weights only, so Qwen's RMSNorm
    weights decay (the authors' trainer: transformers' ALL_LAYERNORM_LAYERS)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2)."""
    adam_eps: float = Field(1e-8, gt=0)
    """AdamW epsilon."""
    max_grad_norm: float = Field(1.0, ge=0)
    """Clip the global gradient L2 norm to this; 0 = no clipping."""
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup, to 0 at the last optimizer update (SFT: release cosine, paper linear), or constant."""
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    """Linear warmup to the peak lr over this share of the optimizer updates, fraction; as in the HF
    Trainer: w = ceil(ratio x updates) warmup updates, update i < w at i/w of the peak (update 0 at 0)."""
    gradient_checkpointing: bool = False
    """Recompute the LLM's activations in backward (less memory, ~30% more compute); GRPO's generation runs
    in eval mode, so it keeps its KV cache."""
