"""Spatial-MLLM: Qwen2.5-VL + a VGGT spatial encoder + connector (transformers 5.24).

Public API:
- `build_config(preset)`, `PRESETS`, `SpatialMLLMConfig`
- `SpatialMLLMForConditionalGeneration` (`.spatial_encoder`, `.connector`, `.encode_videos`)
- `load(preset_or_path, ...) -> (model, processor)`; `load_processor(...)` (no model); `SpatialMLLMProcessor`
- `build_spatial_encoder(preset)`, `load_spatial_encoder_weights(encoder, file)`
- `build_vggt(preset)`, `load_vggt(preset, path=...)`: VGGT with its camera and depth heads;
  `pose_encoding_to_cameras(pose_enc, (H, W))`, `depth_to_world_points(depth, extrinsics, intrinsics)`
- `trainable_parameter_groups(model, ...)`, `parameter_names_by_role(model)`
- `expand_video_inputs(video_embeds, video_grid_thw, repeats)` for reusing encoded videos.
"""

from modeling.cameras import depth_to_world_points, pose_encoding_to_cameras
from modeling.config import PRESETS, SpatialMLLMConfig, VGGTConfig, VGGTHeadsConfig, build_config
from modeling.loading import load, load_processor
from modeling.model import SpatialMLLMForConditionalGeneration, expand_video_inputs, video_encoder_outputs
from modeling.preprocess import FRAME_PRESETS, FrameSpec, preprocess_video
from modeling.processor import SpatialMLLMProcessor
from modeling.tokenizer import build_byte_tokenizer
from modeling.trainable import parameter_names_by_role, trainable_parameter_groups
from modeling.vggt import VGGTAggregator, build_spatial_encoder, load_spatial_encoder_weights
from modeling.vggt_model import VGGT, build_vggt, load_vggt, load_vggt_weights

__all__ = [
    "FRAME_PRESETS",
    "PRESETS",
    "FrameSpec",
    "SpatialMLLMConfig",
    "SpatialMLLMForConditionalGeneration",
    "SpatialMLLMProcessor",
    "VGGT",
    "VGGTAggregator",
    "VGGTConfig",
    "VGGTHeadsConfig",
    "build_byte_tokenizer",
    "build_config",
    "build_spatial_encoder",
    "build_vggt",
    "depth_to_world_points",
    "expand_video_inputs",
    "load",
    "load_processor",
    "load_spatial_encoder_weights",
    "load_vggt",
    "load_vggt_weights",
    "parameter_names_by_role",
    "pose_encoding_to_cameras",
    "preprocess_video",
    "trainable_parameter_groups",
    "video_encoder_outputs",
]
