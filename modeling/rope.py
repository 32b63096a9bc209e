"""3D RoPE position ids by Qwen2.5-VL's original rule (Qwen's reference code, transformers 4.51.3).

Each token gets three positions (temporal, height, width). Text tokens get the same value in all
three, one more than the largest position before them. A video's merged tokens get

    temporal = start + int(frame_pair * second_per_grid_t * tokens_per_second)
    height   = start + row,   width = start + column          (merged grid)

and an image is a one-pair video with temporal 0. The text after a medium starts at the largest
position so far + 1, **temporal included**. transformers 5.24's `get_rope_index` starts it at
`start + max(rows, columns)` instead, which differs whenever a video's temporal extent exceeds its
spatial one (16 frames of a 60 s video: temporal ~105 against ~20 spatially). Qwen2.5-VL and both
Spatial-MLLM releases were trained with the original rule, so `SpatialMLLMModel.get_rope_index`
uses this module, and the shared-prefix paths build their positions from it too.

`deltas` follow transformers 5.24's convention: largest position + 1 - the row's unpadded length,
so that decoded token k (0-based) of row b sits at `prompt largest + 1 + k`.
"""

from __future__ import annotations

import torch

TEXT, IMAGE, VIDEO = 0, 1, 2  # mm_token_type_ids values


def media_positions(
    grid_thw: list[int], start: int, spatial_merge: int, seconds_per_pair, tokens_per_second
) -> torch.Tensor:
    """`[3, t*h*w/merge^2]` positions of one medium's merged tokens (row-major over pair, row,
    column), offset by `start`. `seconds_per_pair` 0 for an image."""
    t, h, w = grid_thw[0], grid_thw[1] // spatial_merge, grid_thw[2] // spatial_merge
    # The reference's order of operations (pair * seconds, then * tokens_per_second), truncated.
    temporal = (torch.arange(t).view(-1, 1).expand(-1, h * w) * seconds_per_pair * tokens_per_second).long()
    height = torch.arange(h).view(1, -1, 1).expand(t, -1, w)
    width = torch.arange(w).view(1, 1, -1).expand(t, h, -1)
    return torch.stack([temporal.flatten(), height.flatten(), width.flatten()]) + start  # [3, n]


def qwen_position_ids(
    mm_token_type_ids: torch.Tensor,
    *,
    spatial_merge: int,
    tokens_per_second: float,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(position_ids `[3, B, L]`, deltas `[B, 1]`) for token types `[B, L]` (0 text, 1 image, 2
    video). Images and videos are taken in order across the batch, one grid each; padding
    (attention_mask 0) gets position 0 and is skipped. `second_per_grid_ts` `[videos]`: each
    video's seconds per frame pair, default 1.0."""
    B, L = mm_token_type_ids.shape
    device = mm_token_type_ids.device
    grids = {
        IMAGE: [] if image_grid_thw is None else image_grid_thw.tolist(),
        VIDEO: [] if video_grid_thw is None else video_grid_thw.tolist(),
    }
    used = {IMAGE: 0, VIDEO: 0}
    seconds = second_per_grid_ts.cpu() if second_per_grid_ts is not None else None
    position_ids = torch.zeros(3, B, L, dtype=torch.long)
    deltas = []
    for b in range(B):
        valid = torch.ones(L, dtype=torch.bool) if attention_mask is None else attention_mask[b].bool().cpu()
        types = mm_token_type_ids[b].cpu()[valid].tolist()
        parts, i, next_start = [], 0, 0
        while i < len(types):
            kind = types[i]
            if kind == TEXT:
                j = i
                while j < len(types) and types[j] == TEXT:
                    j += 1
                parts.append(torch.arange(j - i).view(1, -1).expand(3, -1) + next_start)
            else:
                index = used[kind]
                if index >= len(grids[kind]):
                    name = "image_grid_thw" if kind == IMAGE else "video_grid_thw"
                    raise ValueError(f"row {b} has more {'images' if kind == IMAGE else 'videos'} than {name} lists")
                grid = grids[kind][index]
                used[kind] += 1
                pair_seconds = 0 if kind == IMAGE else (1.0 if seconds is None else seconds[index])
                block = media_positions(grid, next_start, spatial_merge, pair_seconds, tokens_per_second)
                j = i + block.shape[1]
                if j > len(types) or any(k != kind for k in types[i:j]):
                    raise ValueError(
                        f"row {b}: a medium of grid {grid} needs {block.shape[1]} consecutive placeholder tokens "
                        f"from token {i}"
                    )
                parts.append(block)
            next_start = int(parts[-1].max()) + 1
            i = j
        row = torch.cat(parts, dim=1) if parts else torch.zeros(3, 0, dtype=torch.long)
        position_ids[:, b, valid] = row
        deltas.append((int(row.max()) + 1 if row.numel() else 0) - row.shape[1])
    return position_ids.to(device), torch.tensor(deltas, device=device).view(B, 1)


def prompt_positions(
    config,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    video_grid_thw: torch.Tensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    image_grid_thw: torch.Tensor | None = None,
) -> torch.Tensor:
    """`[3, B, L]` positions of left-padded token rows for a model of `config` (a Qwen2.5-VL or
    Spatial-MLLM config): media found by their placeholder ids."""
    types = torch.zeros_like(input_ids)
    types[input_ids == config.image_token_id] = IMAGE
    types[input_ids == config.video_token_id] = VIDEO
    positions, _ = qwen_position_ids(
        types, spatial_merge=config.vision_config.spatial_merge_size,
        tokens_per_second=config.vision_config.tokens_per_second, image_grid_thw=image_grid_thw,
        video_grid_thw=video_grid_thw, second_per_grid_ts=second_per_grid_ts, attention_mask=attention_mask,
    )  # fmt: skip
    return positions

