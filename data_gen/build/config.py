"""Settings of the dataset build (splits, rebalancing, sharding, failure budget)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Spatial-MLLM-120k self-made mix (percent of questions per group), reference §3.
PAPER_MIX = {
    "rel_direction": 31.64,
    "distance": 30.95,
    "size": 16.09,
    "appearance_order": 15.82,
    "counting": 5.5,
}

# Which VSI-Bench question types make up each mix group.
MIX_GROUPS = {
    "rel_direction": ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"),
    "distance": ("object_rel_distance", "object_abs_distance"),
    "size": ("object_size_estimation", "room_size_estimation"),
    "appearance_order": ("obj_appearance_order",),
    "counting": ("object_counting",),
    # Not in the paper's self-made mix (share 0 unless set): routes (its v1.1-135K mixture adds
    # VLM-3R's 2k ScanNet route plans to 133k questions, 1.5%) and, beyond VSI-Bench, how the camera moves.
    "route_planning": ("route_planning",),
    "camera_motion": ("camera_displacement", "camera_movement_direction", "camera_obj_abs_distance",
                      "camera_obj_rel_distance", "obj_obj_rel_position"),
}


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="share of scenes (not questions) in the val split")
    target_total: int = Field(
        0, ge=0, description="questions to keep over both splits after rebalancing; 0 = as many as the mix allows"
    )
    mix: dict[str, float] = Field(
        default_factory=lambda: dict(PAPER_MIX),
        description="target share (percent) per question group: " + ", ".join(MIX_GROUPS),
    )
    max_reject_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="fail the build when more than this share of scenes is rejected"
    )
    shard_rows: int = Field(5000, ge=1, description="records per Parquet shard")
    num_cpus_per_scene: float = Field(
        1.0,
        gt=0,
        description="Ray CPUs reserved per scene task (fractional allowed). A scene is one single-threaded "
        "CPU-bound task: below 1 runs more scene processes than cores (more memory, and Ray starts extra "
        "worker processes, each importing the stack), for no gain in throughput",
    )

    @field_validator("mix")
    @classmethod
    def _known_groups(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(mix) - set(MIX_GROUPS))
        if unknown:
            raise ValueError(f"unknown mix group(s) {unknown}; known: {sorted(MIX_GROUPS)}")
        if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("mix shares must be >= 0 and not all zero")
        return mix
