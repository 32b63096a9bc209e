"""The spatial encoder's patch tokens for the connector: each video's frames through VGGT's
aggregator (the configured layer, special tokens dropped), grouped per merged video token by the
connector's own order. A sample's image blocks go through as one sequence."""

from __future__ import annotations

import torch

from modeling.preprocess import unpatchify


def spatial_groups(
    model, spatial_pixel_values: torch.Tensor, video_grid_thw: torch.Tensor, videos_per_sample=None
) -> list[torch.Tensor]:
    """The spatial encoder's patch tokens grouped per merged video token, `[t*h*w/4, 8*2*dim]`
    per video: the connector's input. `videos_per_sample` (default one each): consecutive videos
    of one sample (its image blocks) go through the encoder as one sequence of frames, as the
    authors' model feeds a record's images; they must share one frame size.

    spatial_pixel_values: `[sum t*h*w, 3*2*14*14]` frames in [0, 1], patchified exactly like
    `pixel_values_videos` (see preprocess.py). The encoder runs once per sample, whatever the
    frame shapes: under ZeRO-3 each call gathers its parameters collectively, so every rank must
    make as many calls as it has samples (the same on all ranks), never one per shape group.
    """
    vision = model.config.vision_config
    tm, sm, patch = vision.temporal_patch_size, vision.spatial_merge_size, vision.patch_size
    rows = video_grid_thw.prod(-1).tolist()
    if sum(rows) != spatial_pixel_values.shape[0]:
        raise ValueError(
            f"spatial_pixel_values has {spatial_pixel_values.shape[0]} patch rows but video_grid_thw "
            f"{video_grid_thw.tolist()} needs {sum(rows)}"
        )
    dtype = next(model.spatial_encoder.parameters()).dtype
    # Frozen encoder: skip autograd bookkeeping unless someone unfroze it.
    needs_grad = torch.is_grad_enabled() and any(
        p.requires_grad for p in model.spatial_encoder.parameters()
    )
    layer = model.config.spatial_layer % model.spatial_encoder.config.depth  # the releases' -1: the last
    grids = video_grid_thw.tolist()
    videos = [unpatchify(chunk, tuple(grid), patch, sm, tm).to(dtype)  # [S, 3, H, W] each
              for chunk, grid in zip(torch.split(spatial_pixel_values, rows), grids, strict=True)]  # fmt: skip
    per_sample = [1] * len(videos) if videos_per_sample is None else [int(n) for n in videos_per_sample]
    if sum(per_sample) != len(videos):
        raise ValueError(f"videos_per_sample {per_sample} does not add up to the {len(videos)} videos")
    grouped, first = [], 0
    with torch.set_grad_enabled(needs_grad):
        for count in per_sample:
            mine = videos[first : first + count]
            first += count
            if len({v.shape[-2:] for v in mine}) > 1:
                raise ValueError(f"the {count} image blocks of one sample must share one size to go through the "
                                 f"spatial encoder together, got {[tuple(v.shape[-2:]) for v in mine]}")  # fmt: skip
            frames = torch.cat(mine)  # [sum S, 3, H, W]: one sequence
            h, w = frames.shape[-2:]
            tokens = model.spatial_encoder.selected_layers(frames[None], [layer])[layer]  # [1, sum S, 5 + P, 2*dim]
            patches = tokens[:, :, model.spatial_encoder.patch_start_idx :]  # special tokens dropped
            for part in torch.split(patches, [v.shape[0] for v in mine], dim=1):
                grouped.append(model.connector.group(part, h // patch, w // patch))  # [n, 8*2*dim]
    return grouped
