"""The connector's grouping: VGGT tokens land on the same merged video token as Qwen's patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.connector import SpatialConnector, group_spatial_tokens
from modeling.preprocess import patchify

FRAMES, GRID_H, GRID_W, PATCH = 4, 4, 6, 14


def _coordinate_tokens() -> torch.Tensor:
    """`[1, S, P, 3]` patch tokens whose channels are (frame, patch row, patch column)."""
    f, y, x = torch.meshgrid(torch.arange(FRAMES), torch.arange(GRID_H), torch.arange(GRID_W), indexing="ij")
    return torch.stack([f, y, x], dim=-1).reshape(1, FRAMES, GRID_H * GRID_W, 3).float()


def test_grouping_is_v11_order():
    """Each grouped vector is (sh, sw, channel, frame) with the frame fastest; rows follow
    (frame pair, merged row, merged column)."""
    grouped = group_spatial_tokens(_coordinate_tokens(), GRID_H, GRID_W)
    hh, ww = GRID_H // 2, GRID_W // 2
    assert grouped.shape == (FRAMES // 2 * hh * ww, 2 * 2 * 3 * 2)
    for row in range(grouped.shape[0]):
        t, rest = divmod(row, hh * ww)
        r, c = divmod(rest, ww)
        cube = grouped[row].reshape(2, 2, 3, 2)  # [sh, sw, channel, frame]
        for sh in range(2):
            for sw in range(2):
                for f in range(2):
                    assert cube[sh, sw, :, f].tolist() == [2 * t + f, 2 * r + sh, 2 * c + sw]


def test_grouping_matches_qwen_merged_tokens():
    """Qwen merges 4 consecutive patch rows of pixel_values_videos into one LLM token; the grouped
    VGGT vector for that token must cover the same frames and patches, in the same sub-order."""
    f, y, x = np.meshgrid(
        np.arange(FRAMES), np.arange(GRID_H * PATCH), np.arange(GRID_W * PATCH), indexing="ij"
    )
    frames = np.stack([f, y // PATCH, x // PATCH], axis=1).astype(np.float32)  # [S, 3, H, W] coordinates
    rows = patchify(frames, PATCH, 2, 2)  # [t*h*w, 3*2*14*14], Qwen's layout
    grouped = group_spatial_tokens(_coordinate_tokens(), GRID_H, GRID_W)
    for token in range(grouped.shape[0]):
        cube = grouped[token].reshape(2, 2, 3, 2)
        for k in range(4):  # the merge unit: (sh, sw) in row-major order
            sh, sw = divmod(k, 2)
            patch = rows[4 * token + k].reshape(3, 2, PATCH, PATCH)  # [C, frame, ph, pw]
            for fr in range(2):
                assert patch[:, fr, 0, 0].tolist() == cube[sh, sw, :, fr].tolist()


def test_grouping_rejects_bad_grids():
    with pytest.raises(ValueError, match="cannot group"):
        group_spatial_tokens(torch.zeros(1, 3, 16, 8), 4, 4)  # odd frame count reaches the connector


def test_connector_shapes_and_names():
    connector = SpatialConnector(spatial_dim=8, out_dim=5)
    assert connector(torch.zeros(7, 64)).shape == (7, 5)
    names = {n: tuple(p.shape) for n, p in connector.named_parameters()}
    assert names == {
        "ln_q.weight": (64,), "mlp.0.weight": (64, 64), "mlp.0.bias": (64,), "mlp.2.weight": (5, 64), "mlp.2.bias": (5,),
    }  # fmt: skip
