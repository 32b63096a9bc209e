"""GRPO settings (the `grpo` section of the run config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    max_steps: int = Field(20, ge=-1)
    """Optimizer steps; -1 = one full epoch."""
