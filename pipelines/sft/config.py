"""SFT settings (the `sft` section of the run config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    max_steps: int = Field(50, ge=-1)
    """Optimizer steps; -1 = one full epoch."""
