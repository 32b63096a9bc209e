"""Question-generation settings (QAConfig). Placeholder: the dataset issue fills in the fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    num_frames: int = Field(16, ge=1, description="frames per record (space-aware and uniform)")
