"""Model configuration and the four presets.

`SpatialMLLMConfig` is transformers' `Qwen2_5_VLConfig` plus two fields: which spatial encoder to
attach (`"vggt"` or `"none"`) and that encoder's sizes. `build_config(preset)` is the only place
where preset numbers live; tiny and small are random-initialised, the 3B presets mirror the
released checkpoints (Qwen2.5-VL-3B-Instruct and VGGT-1B, see reference/SPATIAL_MLLM.md section 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from huggingface_hub.dataclasses import strict
from transformers import Qwen2_5_VLConfig

PRESETS = ("tiny", "small", "spatial-mllm-3b", "qwen2.5-vl-3b")
SPATIAL_ENCODERS = ("vggt", "none")
CONNECTOR_TYPES = ("mlp_add", "embedding_merger")  # release v1.1's connector, release v1.0's (connector.py)

# Qwen2.5-VL special-token ids; the tiny/small byte tokenizer has its own (see tokenizer.py).
QWEN_TOKEN_IDS = {
    "bos_token_id": 151643,  # <|endoftext|>
    "eos_token_id": 151645,  # <|im_end|>
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "image_token_id": 151655,
    "video_token_id": 151656,
}


@dataclass
class VGGTConfig:
    """Sizes of the VGGT aggregator (the spatial encoder).

    Defaults are VGGT-1B: a DINOv2 ViT-L/14 with 4 registers as patch embedding, then `depth`
    pairs of (frame attention, global attention) blocks.
    """

    img_size: int = 518  # pixels; only sets the patch embedding's learned position grid (img_size/patch)^2
    patch_size: int = 14  # pixels per patch side
    embed_dim: int = 1024  # token width; every layer output is 2 * embed_dim (frame ++ global)
    depth: int = 24  # number of (frame, global) block pairs
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4  # per frame, in both the patch embedding and the aggregator
    patch_embed_depth: int = 24  # DINOv2 blocks inside the patch embedding
    patch_embed_num_heads: int = 16
    rope_freq: float = 100.0  # base frequency of the 2D RoPE in the aggregator blocks
    init_values: float = 0.01  # LayerScale init of the aggregator blocks
    patch_embed_init_values: float = 1.0  # LayerScale init of the DINOv2 blocks

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token: 1 camera token + the register tokens come first."""
        return 1 + self.num_register_tokens

    @property
    def out_dim(self) -> int:
        """Width of each aggregator layer output (frame and global tokens concatenated)."""
        return 2 * self.embed_dim


VGGT_PRESETS = {
    "tiny": VGGTConfig(
        img_size=112, embed_dim=64, depth=2, num_heads=4, patch_embed_depth=1, patch_embed_num_heads=4
    ),
    "small": VGGTConfig(
        img_size=224, embed_dim=192, depth=4, num_heads=4, patch_embed_depth=2, patch_embed_num_heads=4
    ),
    "spatial-mllm-3b": VGGTConfig(),
    "vggt-1b": VGGTConfig(),
}


@dataclass
class VGGTHeadsConfig:
    """Sizes of VGGT's camera head and depth (DPT) head; defaults are VGGT-1B's.

    The heads read the aggregator's layers of width `2 * embed_dim`: the camera head its last
    layer's camera tokens, the depth head four layers' patch tokens (`dpt_layers`).
    """

    camera_trunk_depth: int = 4  # transformer blocks of the camera head's trunk
    camera_num_heads: int = 16
    camera_mlp_ratio: float = 4.0
    camera_init_values: float = 0.01  # LayerScale init of the trunk blocks
    camera_iterations: int = 4  # refinement passes; the last one's pose encoding is the output
    dpt_features: int = 256  # channels of the DPT fusion stages
    dpt_out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)  # per tapped layer
    dpt_layers: tuple[int, int, int, int] = (4, 11, 17, 23)  # aggregator layers the depth head taps


# Same names as VGGT_PRESETS: build_vggt(preset) pairs an aggregator with these heads.
VGGT_HEAD_PRESETS = {
    "tiny": VGGTHeadsConfig(
        camera_trunk_depth=1, camera_num_heads=4, dpt_features=16, dpt_out_channels=(8, 16, 32, 32),
        dpt_layers=(0, 0, 1, 1),
    ),  # fmt: skip
    "small": VGGTHeadsConfig(
        camera_trunk_depth=2, camera_num_heads=4, dpt_features=32, dpt_out_channels=(16, 32, 64, 64),
        dpt_layers=(0, 1, 2, 3),
    ),  # fmt: skip
    "spatial-mllm-3b": VGGTHeadsConfig(),
    "vggt-1b": VGGTHeadsConfig(),
}


@strict
class SpatialMLLMConfig(Qwen2_5_VLConfig):
    """Qwen2.5-VL config plus the spatial encoder.

    spatial_encoder: `"vggt"` attaches the VGGT aggregator and the connector; `"none"` is plain
        Qwen2.5-VL (the paper's baseline).
    spatial_config: the `VGGTConfig` fields as a dict (ignored when `spatial_encoder == "none"`).
    connector_type: `"mlp_add"` (release v1.1, the default) or `"embedding_merger"` (release v1.0);
        see connector.py.
    spatial_layer: which aggregator layer's patch tokens the connector reads (the releases'
        `spatial_embeds_layer_idx`; -1 = the last, the only value the releases use).
    preset: the preset this config was built from, for logs and `meta.json`; informational only.
    """

    model_type = "spatial_mllm"

    spatial_encoder: str = "vggt"
    spatial_config: dict | None = None
    connector_type: str = "mlp_add"
    spatial_layer: int = -1
    preset: str | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.spatial_encoder not in SPATIAL_ENCODERS:
            raise ValueError(
                f"spatial_encoder must be one of {SPATIAL_ENCODERS}, got {self.spatial_encoder!r}"
            )
        if self.spatial_encoder == "vggt" and self.spatial_config is None:
            self.spatial_config = dataclasses.asdict(VGGTConfig())
        if self.connector_type not in CONNECTOR_TYPES:
            raise ValueError(f"connector_type must be one of {CONNECTOR_TYPES}, got {self.connector_type!r}")
        if self.spatial_encoder == "vggt" and not -self.vggt.depth <= self.spatial_layer < self.vggt.depth:
            raise ValueError(
                f"spatial_layer (spatial_embeds_layer_idx) {self.spatial_layer} is not a layer of the "
                f"{self.vggt.depth}-layer spatial encoder"
            )

    @property
    def vggt(self) -> VGGTConfig:
        """The spatial encoder's sizes as a typed object."""
        return VGGTConfig(**(self.spatial_config or {}))


def _qwen_3b_kwargs() -> dict:
    """Qwen2.5-VL-3B-Instruct's architecture (reference section 1)."""
    return {
        "text_config": {
            "vocab_size": 151936,
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            # As the releases' config.json (transformers 4.51.3) has them: rope type "default" with
            # the mrope sections, and no pad_token_id (which would freeze that embedding row).
            "rope_scaling": {"type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
            "sliding_window": 32768,
            "max_window_layers": 70,
            "bos_token_id": QWEN_TOKEN_IDS["bos_token_id"],
            "eos_token_id": QWEN_TOKEN_IDS["eos_token_id"],
        },
        "vision_config": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "tokens_per_second": 2,
        },
        "tie_word_embeddings": True,
        **{k: v for k, v in QWEN_TOKEN_IDS.items() if k not in ("bos_token_id", "eos_token_id")},
    }


def _toy_kwargs(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vision: dict) -> dict:
    """Tiny/small Qwen2.5-VL shapes with the byte tokenizer's vocabulary and token ids."""
    from modeling.tokenizer import TOY_TOKEN_IDS, TOY_VOCAB_SIZE

    head_dim = hidden // heads
    # mrope splits head_dim/2 rotary frequencies into (t, h, w) sections, Qwen's 16:24:24 ratio.
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    mrope_section = [t, h, half - t - h]
    return {
        "text_config": {
            "vocab_size": TOY_VOCAB_SIZE,
            "hidden_size": hidden,
            "intermediate_size": ffn,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_scaling": {"type": "mrope", "mrope_section": mrope_section, "rope_theta": 1000000.0},
            "bos_token_id": TOY_TOKEN_IDS["bos_token_id"],
            "eos_token_id": TOY_TOKEN_IDS["eos_token_id"],
            "pad_token_id": TOY_TOKEN_IDS["pad_token_id"],
        },
        "vision_config": {
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "tokens_per_second": 2,
            "out_hidden_size": hidden,
            **vision,
        },
        "tie_word_embeddings": True,
        **{
            k: v
            for k, v in TOY_TOKEN_IDS.items()
            if k not in ("bos_token_id", "eos_token_id", "pad_token_id")
        },
    }


def build_config(preset: str, *, spatial_encoder: str | None = None) -> SpatialMLLMConfig:
    """The config of a preset: `tiny`, `small`, `spatial-mllm-3b` or `qwen2.5-vl-3b`.

    spatial_encoder: override the preset's choice (`"vggt"` or `"none"`); e.g. `build_config("tiny",
        spatial_encoder="none")` is the tiny plain-Qwen baseline. `qwen2.5-vl-3b` with `"vggt"`
        equals `spatial-mllm-3b`.
    """
    if preset == "tiny":
        kwargs = _toy_kwargs(
            hidden=64, layers=2, heads=4, kv_heads=2, ffn=256,
            vision={"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4,
                    "fullatt_block_indexes": [1]},
        )  # fmt: skip
        default_encoder, vggt = "vggt", VGGT_PRESETS["tiny"]
    elif preset == "small":
        kwargs = _toy_kwargs(
            hidden=512, layers=6, heads=8, kv_heads=2, ffn=1536,
            vision={"depth": 4, "hidden_size": 256, "intermediate_size": 768, "num_heads": 4,
                    "fullatt_block_indexes": [1, 3]},
        )  # fmt: skip
        default_encoder, vggt = "vggt", VGGT_PRESETS["small"]
    elif preset in ("spatial-mllm-3b", "qwen2.5-vl-3b"):
        kwargs = _qwen_3b_kwargs()
        default_encoder = "vggt" if preset == "spatial-mllm-3b" else "none"
        vggt = VGGT_PRESETS["spatial-mllm-3b"]
    else:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {PRESETS}")
    encoder = spatial_encoder or default_encoder
    return SpatialMLLMConfig(
        spatial_encoder=encoder,
        spatial_config=dataclasses.asdict(vggt) if encoder == "vggt" else None,
        preset=preset,
        **kwargs,
    )
