"""Video inputs of the model besides pixels: encoded embeddings per video and per row, and the
frozen encoders' outputs that a GRPO step computes once and reuses in every pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling


def video_token_counts(video_grid_thw: torch.Tensor, spatial_merge: int) -> list[int]:
    """Merged (LLM) tokens per video: t * h * w / merge^2."""
    return (video_grid_thw.prod(-1) // spatial_merge**2).tolist()


def video_encoder_outputs(
    video_embeds: torch.Tensor, video_grid_thw: torch.Tensor, spatial_merge: int = 2
) -> dict:
    """Wrap fused video embeddings as transformers' `mm_encoder_outputs` (one tensor per video)."""
    counts = video_token_counts(video_grid_thw, spatial_merge)
    if sum(counts) != video_embeds.shape[0]:
        raise ValueError(
            f"video_embeds has {video_embeds.shape[0]} rows but video_grid_thw {video_grid_thw.tolist()} "
            f"needs {sum(counts)} video tokens"
        )
    return {"video": BaseModelOutputWithPooling(pooler_output=tuple(torch.split(video_embeds, counts)))}


def videos_for_rows(
    video_embeds: torch.Tensor, video_grid_thw: torch.Tensor, video_of_row: list[int], spatial_merge: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, grids) for a batch whose row r shows encoded video `video_of_row[r]` (each row
    one video): the videos' token blocks picked and concatenated in row order; gradients flow back
    to `video_embeds`."""
    per_video = torch.split(video_embeds, video_token_counts(video_grid_thw, spatial_merge))
    embeds = torch.cat([per_video[v] for v in video_of_row], dim=0)  # [sum tokens of the rows, H]
    return embeds, video_grid_thw[video_of_row]  # [rows, 3]


def expand_video_inputs(
    video_embeds: torch.Tensor, video_grid_thw: torch.Tensor, repeats: int, spatial_merge: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat each video's embeddings `repeats` times in place ([A, B] -> [A, A, B, B]), matching
    `input_ids.repeat_interleave(repeats, 0)` when every sample holds one video."""
    video_of_row = [v for v in range(video_grid_thw.shape[0]) for _ in range(repeats)]
    return videos_for_rows(video_embeds, video_grid_thw, video_of_row, spatial_merge)


@dataclass
class FrozenVideoFeatures:
    """What the frozen encoders give for a batch of videos (`SpatialMLLMModel.frozen_video_features`),
    one row per merged video token in `video_grid_thw` order: `merge_units` `[tokens, 4 x vision
    width]`, Qwen's vision-tower output grouped as its merger reads it; `spatial` `[tokens, 8 x 2 x
    VGGT width]`, the aggregator's patch tokens grouped as the connector reads them (None without
    a spatial encoder). The trained merger and connector turn them into `video_embeds`
    (`fuse_frozen`), so a step computes them once for its generation, reference and update passes."""

    merge_units: torch.Tensor
    spatial: torch.Tensor | None
    video_grid_thw: torch.Tensor

    def select(self, videos: list[int], spatial_merge: int = 2) -> FrozenVideoFeatures:
        """The rows of videos `videos` (in that order; repeats allowed)."""
        counts = video_token_counts(self.video_grid_thw, spatial_merge)
        units = torch.split(self.merge_units, counts)
        spatial = None if self.spatial is None else torch.split(self.spatial, counts)
        return FrozenVideoFeatures(
            torch.cat([units[v] for v in videos]),
            None if spatial is None else torch.cat([spatial[v] for v in videos]),
            self.video_grid_thw[videos],
        )

    def to(self, device) -> FrozenVideoFeatures:
        spatial = None if self.spatial is None else self.spatial.to(device)
        return FrozenVideoFeatures(self.merge_units.to(device), spatial, self.video_grid_thw.to(device))
