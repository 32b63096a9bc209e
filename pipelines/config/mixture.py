"""The training mixture (the `data.mixture` section): which sources SFT and GRPO read, how much of
each, and how frames are picked from videos that name none.

    data:
      mixture:
        sources:
          - {name: mix133k, format: qwen_vl, annotation: /data/annotations/spatial-mllm-mix-133k.jsonl,
             media_root: /data/visuals}
          - {name: routeplan, format: qwen_vl, annotation: /data/annotations/routeplan-2k.jsonl,
             media_root: /data/visuals, rate: 100%}

An empty `sources` list is our built dataset alone (SFT: its train split, GRPO: `grpo.split`), as
before mixtures existed. `rate` is qwen-vl-finetune's `name%50`: a percent of the source's records,
or a count; `shares` (or the `spatial_mllm_120k` preset) sizes the sources as percents of the whole
mixture instead.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SOURCE_FORMATS = ("built", "qwen_vl", "scanqa", "sqa3d")
# Spatial-MLLM-120k (reference §3): ScanQA train 21.26%, SQA3D 21.27%, self-made 57.47%, by format.
# The self-made part's own split by question type is the build's mix (data.build.mix, PAPER_MIX).
MIXTURE_PRESETS: dict[str, dict[str, float]] = {
    "spatial_mllm_120k": {"scanqa": 21.26, "sqa3d": 21.27, "built": 57.47},
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    name: str
    """Unique name of the source in the mixture (it prefixes the ids of its records, e.g. `scanqa/123`)."""
    format: Literal["built", "qwen_vl", "scanqa", "sqa3d"]
    """`built`: our dataset, run_dir/dataset/<split>; `qwen_vl`: Qwen-VL finetune records (a JSON
    list or JSON Lines: `video` or `image`, `conversations`); `scanqa`: ScanQA_v1.0_{train,val}.json;
    `sqa3d`: SQA3D's v1_balanced_questions_<split>_scannetv2.json (+ its sqa_annotations file)."""
    annotation: str | None = None
    """The annotation file (qwen_vl, scanqa; for sqa3d the questions file); unused for built."""
    answers: str | None = None
    """sqa3d only: the v1_balanced_sqa_annotations_<split>_scannetv2.json file; null = the questions
    file's name with `questions` replaced by `sqa_annotations`, in the same folder."""
    media_root: str | None = None
    """Folder the records' media paths are relative to: for qwen_vl its `video` / `image` paths
    (null = the annotation file's folder); for scanqa and sqa3d the ScanNet scans (<scene_id>/ in
    ScanNet layout; null = data.scans_dir, else run_dir/scans); unused for built (data.scans_dir)."""
    split: str = "train"
    """built only: the dataset split to read (GRPO with an empty mixture reads grpo.split)."""
    rate: str | int = "100%"
    """How much of the source: "N%" = that percent of its records (qwen-vl-finetune's `name%N`;
    above 100% repeats them), an integer = that many records. Records are drawn in a seeded hash
    order (data order does not matter). Ignored for a source that data.mixture.shares sizes."""
    frame_indices_file: str | None = None
    """Space-aware frame indices per video or scan, {"<key>": [frame index, ...]}, key = the media
    path relative to media_root without its suffix (`scannet/scene0000_00` for
    scannet/scene0000_00.mp4; the scene id for a scan): used for records that name no frames when
    <stage>.frame_sampling is space_aware. Null = none."""

    @field_validator("rate")
    @classmethod
    def _rate(cls, rate: str | int) -> str | int:
        if isinstance(rate, int):
            if rate < 1:
                raise ValueError(f"rate {rate}: a count must be >= 1")
            return rate
        if _RATE.match(rate) is None or float(_RATE.match(rate).group(1)) <= 0:
            raise ValueError(f"rate {rate!r}: write a percent like '50%' or a count like 2000")
        return rate

    @model_validator(mode="after")
    def _needs_a_file(self) -> SourceConfig:
        if self.format != "built" and not self.annotation:
            raise ValueError(f"source {self.name!r} ({self.format}) needs `annotation`, its annotation file")
        if self.answers and self.format != "sqa3d":
            raise ValueError(f"source {self.name!r}: `answers` is for sqa3d sources only")
        return self

    def percent(self) -> float | None:
        """The rate as a percent of the source, or None when it is a count."""
        return None if isinstance(self.rate, int) else float(_RATE.match(self.rate).group(1))


class MixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    sources: list[SourceConfig] = Field(default_factory=list)
    """The sources SFT and GRPO train on, mixed into one record list; empty = our built dataset
    alone (SFT: the train split, GRPO: grpo.split)."""
    preset: Literal["spatial_mllm_120k"] | None = None
    """Fill `shares` by source format as a paper's mix: spatial_mllm_120k = ScanQA 21.26%, SQA3D
    21.27%, our built dataset 57.47% (its own question-type split is data.build.mix). Each of those
    formats must be one source. Null = none."""
    shares: dict[str, float] = Field(default_factory=dict)
    """Percent of the whole mixture per source name (the rest keep their `rate`): the shared sources
    get the largest total in these proportions that none of them has to repeat records for (or
    `total`). Empty = every source by its rate."""
    total: int = Field(0, ge=0)
    """Records the shared sources make together (at most what they hold); 0 = as many as the shares allow."""
    video_min_frames: int | None = Field(None, ge=1)
    """Fewest frames taken from a video that names none (qwen-vl-finetune's video_min_frames, default 4
    there); null = the stage's num_frames, so every video gives exactly num_frames evenly spread
    frames, as the Spatial-MLLM v1.1 recipe (video_min_frames = video_max_frames = 16)."""
    video_interval_s: float = Field(2.0, gt=0)
    """One frame per this many seconds of video before clamping to [video_min_frames, num_frames]
    (qwen-vl-finetune's base_interval, default 2), seconds."""
    image_lists: Literal["video", "images"] = "video"
    """How a record with a list of images (a Qwen-VL `image` list) is shown: `video` = the images in
    order as one video (one vision block, no timing); `images` = each image its own vision block
    (a one-pair block of the image repeated, temporal position 0), VGGT seeing all of the record's
    images as one sequence: the authors' loader. `images` is for SFT: GRPO refuses it, evaluation
    reads an image list as one video."""
    video_fps: float | None = Field(None, gt=0)
    """Frame rate that second_per_grid_ts = temporal_patch_size / fps is made from for video
    sources, frames per second; null = the sampled frames' own rate (frames / video duration), as
    qwen-vl-finetune computes it. Scans, frame folders and images have no timing: they keep the
    model's default (1 s per temporal patch)."""

    @model_validator(mode="after")
    def _names_and_shares(self) -> MixtureConfig:
        names = [s.name for s in self.sources]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"data.mixture.sources: name(s) {repeated} used twice")
        if self.preset and self.shares:
            raise ValueError("data.mixture: set either preset or shares, not both")
        unknown = sorted(set(self.shares) - set(names))
        if unknown:
            raise ValueError(f"data.mixture.shares names no source {unknown}; sources: {names}")
        if any(v <= 0 for v in self.shares.values()):
            raise ValueError("data.mixture.shares must be > 0")
        if self.preset:
            by_format = {s.format: s.name for s in self.sources}
            wanted = MIXTURE_PRESETS[self.preset]
            lacking = [f for f in wanted if f not in by_format]
            counts = {f: sum(s.format == f for s in self.sources) for f in wanted}
            if lacking or any(c > 1 for c in counts.values()):
                raise ValueError(f"data.mixture.preset={self.preset} needs exactly one source of each format "
                                 f"{sorted(wanted)}; formats given: {[s.format for s in self.sources]}")  # fmt: skip
        return self

    def source_shares(self) -> dict[str, float]:
        """Percent of the mixture per source name (the preset's, by format, or `shares`)."""
        if self.preset:
            by_format = {s.format: s.name for s in self.sources}
            return {by_format[f]: v for f, v in MIXTURE_PRESETS[self.preset].items()}
        return dict(self.shares)
