"""The `grpo.reward_pool` config section, apart from the pool itself so that reading a config
(and `--help`) never imports Ray."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RewardPoolConfig(BaseModel):
    """Size and limits of the reward actor pool (the `grpo.reward_pool` section)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    num_actors: int = Field(2, ge=1)
    """Reward actors (one Ray worker process each)."""
    num_cpus: float = Field(0.5, gt=0.0)
    """CPUs reserved per actor; fractional values pack several actors on one core."""
    batch_size: int = Field(50, ge=1)
    """Completions per actor call."""
    max_inflight: int = Field(4, ge=1)
    """Batches queued per actor at once (hides the call round trip)."""
    timeout_s: float = Field(30.0, gt=0.0)
    """Seconds one batch may run once at the head of its actor's queue; then the actor is replaced."""
    startup_timeout_s: float = Field(120.0, gt=0.0)
    """Seconds a fresh actor may take to start before it is replaced (counts as a failed attempt)."""
    max_retries: int = Field(2, ge=0)
    """Extra attempts for a batch that timed out or lost its actor; after that it scores 0. Also:
    after max_retries + 1 actors in a row fail to start, `score` raises."""
