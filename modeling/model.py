"""Spatial-MLLM: transformers' Qwen2.5-VL with a VGGT spatial encoder fused into its video tokens.

The fusion sits in the inner model's `get_video_features`, the seam transformers 5.24 uses both in
`forward` and in `generate`: Qwen's vision tower and merger give one embedding per merged video
token; the spatial encoder sees the same resized frames, its patch tokens are grouped per merged
token and sent through the connector; the sum fills the `<|video_pad|>` positions. 3D RoPE
positions follow Qwen's original rule (`rope.py`), not transformers 5.24's `get_rope_index`.

Encoders once, reused (GRPO and evaluation): `encode_videos(pixels...)` gives `video_embeds`
`[total video tokens, hidden]` (videos in `video_grid_thw` order), which `forward` and `generate`
take instead of pixels; `frozen_video_features` + `fuse_frozen` split that into the frozen
encoders' part (computed once per GRPO step) and the trained merger + connector
(`video_features.py`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLModel,
    Qwen2_5_VLPreTrainedModel,
    Qwen2_5_VLTextModel,
)
from transformers.vision_utils import get_vision_window_index

from modeling.config import SpatialMLLMConfig
from modeling.connector import build_connector
from modeling.rope import prompt_positions, qwen_position_ids
from modeling.spatial_tokens import spatial_groups
from modeling.vggt import VGGTAggregator
from modeling.video_features import (  # noqa: F401 - re-exported: callers import them from here
    FrozenVideoFeatures,
    expand_video_inputs,
    video_encoder_outputs,
    video_token_counts,
    videos_for_rows,
)


class SpatialMLLMModel(Qwen2_5_VLModel):
    """Qwen2.5-VL's inner model plus `spatial_encoder` and `connector` (both None for plain Qwen)."""

    config: SpatialMLLMConfig

    def __init__(self, config: SpatialMLLMConfig):
        # Same body as Qwen2_5_VLModel.__init__ (not called, to build and initialise each part once).
        Qwen2_5_VLPreTrainedModel.__init__(self, config)
        self.visual = Qwen2_5_VisionTransformerPretrainedModel._from_config(config.vision_config)
        self.language_model = Qwen2_5_VLTextModel._from_config(config.text_config)
        self.rope_deltas = None
        self.spatial_encoder: VGGTAggregator | None = None
        self.connector: nn.Module | None = None  # connector.py: SpatialConnector (v1.1) or EmbeddingMergerConnector (v1.0)
        if config.spatial_encoder == "vggt":
            vggt = config.vggt
            vision = config.vision_config
            if vggt.patch_size != vision.patch_size:
                raise ValueError(f"VGGT patch {vggt.patch_size} must equal Qwen's patch {vision.patch_size}")
            self.spatial_encoder = VGGTAggregator(vggt)
            self.connector = build_connector(
                config.connector_type,
                vggt.out_dim,
                config.text_config.hidden_size,
                vision.temporal_patch_size,
                vision.spatial_merge_size,
            )
        self.post_init()

    def get_rope_index(
        self,
        input_ids: torch.LongTensor,
        mm_token_type_ids: torch.IntTensor,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(position_ids `[3, B, L]`, rope deltas `[B, 1]`) by Qwen's original rule (see rope.py);
        transformers calls this for forward and for generation's prompt."""
        return qwen_position_ids(
            mm_token_type_ids,
            spatial_merge=self.config.vision_config.spatial_merge_size,
            tokens_per_second=self.config.vision_config.tokens_per_second,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            attention_mask=attention_mask,
        )

    def spatial_video_features(
        self, spatial_pixel_values: torch.Tensor, video_grid_thw: torch.Tensor, videos_per_sample=None
    ) -> list[torch.Tensor]:
        """Connector outputs per video, `[t*h*w/4, hidden]` each, in Qwen's merged-token order."""
        connector_dtype = next(self.connector.parameters()).dtype
        groups = self.spatial_groups(spatial_pixel_values, video_grid_thw, videos_per_sample)
        return [self.connector(g.to(connector_dtype)) for g in groups]

    def spatial_groups(
        self, spatial_pixel_values: torch.Tensor, video_grid_thw: torch.Tensor, videos_per_sample=None
    ) -> list[torch.Tensor]:
        """The connector's input per video (`spatial_tokens.spatial_groups`)."""
        return spatial_groups(self, spatial_pixel_values, video_grid_thw, videos_per_sample)

    @torch.no_grad()
    def frozen_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_grid_thw: torch.LongTensor,
        spatial_pixel_values: torch.Tensor | None = None,
    ) -> FrozenVideoFeatures:
        """The frozen encoders' outputs (Qwen's vision blocks, VGGT's aggregator), without grad:
        reusable for as long as those stay frozen, as the recipe keeps them (`trainable.py`)."""
        visual = self.visual
        hidden = visual(pixel_values_videos.type(visual.dtype), grid_thw=video_grid_thw).last_hidden_state
        window_index, _ = get_vision_window_index(
            video_grid_thw, spatial_merge_size=visual.spatial_merge_size, window_size=visual.window_size,
            patch_size=visual.patch_size,
        )  # fmt: skip
        units = hidden.view(-1, visual.spatial_merge_unit * hidden.shape[-1])[torch.argsort(window_index)]
        spatial = None
        if self.spatial_encoder is not None:
            if spatial_pixel_values is None:
                raise ValueError("this model has a spatial encoder: pass spatial_pixel_values")
            spatial = torch.cat(self.spatial_groups(spatial_pixel_values, video_grid_thw))
        return FrozenVideoFeatures(units, spatial, video_grid_thw)

    def fuse_frozen(self, frozen: FrozenVideoFeatures) -> torch.Tensor:
        """`video_embeds` `[tokens, hidden]` from frozen features: Qwen's merger plus the connector
        (with grad when enabled: they are what trains). Equals `get_video_features`'s fusion."""
        merger = self.visual.merger
        units = frozen.merge_units.to(next(merger.parameters()).dtype)
        embeds = merger(units.view(-1, units.shape[-1] // self.visual.spatial_merge_unit))  # [tokens, hidden]
        if self.connector is None:
            return embeds
        if frozen.spatial is None:
            raise ValueError("this model has a spatial encoder: the frozen features lack its tokens")
        return embeds + self.connector(frozen.spatial.to(next(self.connector.parameters()).dtype)).to(embeds.dtype)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_grid_thw: torch.LongTensor | None = None,
        spatial_pixel_values: torch.Tensor | None = None,
        videos_per_sample=None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """Qwen's video embeddings plus, with a spatial encoder, the connector's output (per video)."""
        return_dict = kwargs.pop("return_dict", True)
        outputs = super().get_video_features(pixel_values_videos, video_grid_thw, return_dict=True, **kwargs)
        if self.spatial_encoder is not None:
            if spatial_pixel_values is None:
                raise ValueError(
                    "this model has a spatial encoder: pass spatial_pixel_values (the processor returns them) "
                    "together with pixel_values_videos, or precomputed video_embeds"
                )
            spatial = self.spatial_video_features(spatial_pixel_values, video_grid_thw, videos_per_sample)
            fused = []
            for i, (qwen, extra) in enumerate(zip(outputs.pooler_output, spatial, strict=True)):
                if qwen.shape[0] != extra.shape[0]:
                    raise ValueError(
                        f"video {i}: Qwen's merger gave {qwen.shape[0]} tokens but the spatial encoder "
                        f"{extra.shape[0]} (grid {video_grid_thw[i].tolist()}); both must see the same frames"
                    )
                fused.append(qwen + extra.to(qwen.dtype))
            outputs.pooler_output = tuple(fused)
        return outputs if return_dict else outputs.to_tuple()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        spatial_pixel_values: torch.Tensor | None = None,
        mm_encoder_outputs: dict | None = None,
        videos_per_sample=None,
        **kwargs,
    ):
        """Qwen2_5_VLModel.forward, with media encoded here so the spatial pixels reach the fusion."""
        mm = dict(mm_encoder_outputs or {})
        if pixel_values_videos is not None:
            if mm.get("video") is not None:
                raise ValueError("pass either pixel_values_videos or precomputed video features, not both")
            mm["video"] = self.get_video_features(
                pixel_values_videos,
                video_grid_thw,
                spatial_pixel_values=spatial_pixel_values,
                videos_per_sample=videos_per_sample,
                return_dict=True,
            )
        if pixel_values is not None:
            if mm.get("image") is not None:
                raise ValueError("pass either pixel_values or precomputed image features, not both")
            mm["image"] = self.get_image_features(pixel_values, image_grid_thw, return_dict=True)
        return super().forward(
            input_ids=input_ids,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            mm_encoder_outputs=mm or None,
            **kwargs,
        )


class SpatialMLLMForConditionalGeneration(Qwen2_5_VLForConditionalGeneration):
    """Spatial-MLLM with an LM head; `spatial_encoder: none` in the config gives plain Qwen2.5-VL.

    Inputs are the processor's: `input_ids`, `attention_mask`, `mm_token_type_ids`,
    `pixel_values_videos`, `video_grid_thw`, `spatial_pixel_values`; or `video_embeds` from
    `encode_videos` instead of the two pixel tensors. `labels` (-100 = ignored) give the
    causal-LM loss. `mm_token_type_ids` is derived from `input_ids` when left out, so 3D RoPE is
    never silently replaced by 1D positions.
    """

    config: SpatialMLLMConfig
    config_class = SpatialMLLMConfig

    def __init__(self, config: SpatialMLLMConfig):
        Qwen2_5_VLPreTrainedModel.__init__(self, config)
        self.model = SpatialMLLMModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @property
    def spatial_encoder(self) -> VGGTAggregator | None:
        return self.model.spatial_encoder

    @property
    def connector(self) -> nn.Module | None:
        return self.model.connector

    def mm_token_type_ids(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        """0 for text, 1 for `<|image_pad|>`, 2 for `<|video_pad|>` (what 3D RoPE groups by)."""
        types = torch.zeros_like(input_ids)
        types[input_ids == self.config.image_token_id] = 1
        types[input_ids == self.config.video_token_id] = 2
        return types

    def prompt_positions(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
    ) -> torch.LongTensor:
        """3D RoPE position ids `[3, B, L]` of left-padded prompts (Qwen's rule, `rope.py`): what
        forward computes for them, for callers that pass positions explicitly (shared prefixes)."""
        return prompt_positions(self.config, input_ids, attention_mask, video_grid_thw, second_per_grid_ts, image_grid_thw)

    def encode_videos(
        self,
        pixel_values_videos: torch.Tensor,
        video_grid_thw: torch.LongTensor,
        spatial_pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Both encoders and the fusion, once: `[total video tokens, hidden]`, the rows that fill the
        `<|video_pad|>` positions (videos in `video_grid_thw` order).

        Pass the result as `video_embeds=` to `forward`/`generate`. Gradients reach the merger and
        connector only if this runs with grad enabled; run it under `torch.no_grad()` for rollouts.
        """
        out = self.model.get_video_features(
            pixel_values_videos, video_grid_thw, spatial_pixel_values=spatial_pixel_values, return_dict=True
        )
        return torch.cat(out.pooler_output, dim=0)

    def frozen_video_features(self, pixel_values_videos, video_grid_thw, spatial_pixel_values=None) -> FrozenVideoFeatures:
        """The frozen encoders' outputs for these videos, once (see `FrozenVideoFeatures`)."""
        return self.model.frozen_video_features(pixel_values_videos, video_grid_thw, spatial_pixel_values)

    def fuse_frozen(self, frozen: FrozenVideoFeatures) -> torch.Tensor:
        """`video_embeds` from frozen features (merger + connector; grad when enabled)."""
        return self.model.fuse_frozen(frozen)

    def _media_kwargs(self, input_ids, video_grid_thw, video_embeds, kwargs: dict) -> dict:
        """Turn `video_embeds` into `mm_encoder_outputs` and fill in `mm_token_type_ids`."""
        if video_embeds is not None:
            if kwargs.get("pixel_values_videos") is not None:
                raise ValueError("pass either pixel_values_videos or video_embeds, not both")
            if video_grid_thw is None:
                raise ValueError("video_embeds needs video_grid_thw (for the token counts and 3D RoPE)")
            mm = dict(kwargs.get("mm_encoder_outputs") or {})
            mm.update(
                video_encoder_outputs(
                    video_embeds, video_grid_thw, self.config.vision_config.spatial_merge_size
                )
            )
            kwargs["mm_encoder_outputs"] = mm
        has_media = video_grid_thw is not None or kwargs.get("image_grid_thw") is not None
        if kwargs.get("mm_token_type_ids") is None and input_ids is not None and has_media:
            kwargs["mm_token_type_ids"] = self.mm_token_type_ids(input_ids)
        return kwargs

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict | None = None,
        spatial_pixel_values: torch.Tensor | None = None,
        video_embeds: torch.Tensor | None = None,
        video_repeats: int | None = None,
        frozen_video: FrozenVideoFeatures | None = None,
        **kwargs,
    ):
        """Qwen2_5_VLForConditionalGeneration.forward plus `spatial_pixel_values`, `video_embeds`,
        `frozen_video` and `video_repeats`. `frozen_video`: the videos' frozen encoder outputs,
        fused here by the merger and connector (with grad in training, inside this forward, so
        ZeRO-3 gathers them); it replaces the pixels. `video_repeats`: the pixels and
        `video_grid_thw` are one per video, the videos are encoded once and each video's embeddings
        fill `video_repeats` consecutive samples (GRPO's G rollouts of a prompt) in one forward, the
        encoding inside it (ZeRO-3 hooks see one call)."""
        if frozen_video is not None:
            if pixel_values_videos is not None or video_embeds is not None:
                raise ValueError("pass frozen_video instead of pixel_values_videos or video_embeds, not with them")
            video_embeds = self.model.fuse_frozen(frozen_video)
            video_grid_thw = frozen_video.video_grid_thw if video_grid_thw is None else video_grid_thw
        if video_repeats is not None:
            if video_embeds is None:
                video_embeds = self.encode_videos(pixel_values_videos, video_grid_thw, spatial_pixel_values)
                pixel_values_videos = spatial_pixel_values = None
            video_embeds, video_grid_thw = expand_video_inputs(
                video_embeds, video_grid_thw, video_repeats, self.config.vision_config.spatial_merge_size
            )
        media = self._media_kwargs(
            input_ids,
            video_grid_thw,
            video_embeds,
            {
                "mm_encoder_outputs": mm_encoder_outputs,
                "pixel_values_videos": pixel_values_videos,
                "image_grid_thw": image_grid_thw,
                "mm_token_type_ids": mm_token_type_ids,
            },
        )
        if spatial_pixel_values is not None:
            kwargs["spatial_pixel_values"] = spatial_pixel_values
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            pixel_values=pixel_values,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            logits_to_keep=logits_to_keep,
            **media,
            **kwargs,
        )

    def generate(
        self, inputs: torch.Tensor | None = None, *, video_embeds: torch.Tensor | None = None, **kwargs
    ):
        """transformers' generate; also takes `video_embeds` (see module docstring) instead of pixels."""
        input_ids = inputs if inputs is not None else kwargs.get("input_ids")
        kwargs = self._media_kwargs(input_ids, kwargs.get("video_grid_thw"), video_embeds, kwargs)
        return super().generate(inputs, **kwargs)
