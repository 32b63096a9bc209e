"""Evaluation settings (the `eval` section of the run config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    split: str = Field("val")
    """Dataset split to evaluate (train or val)."""
