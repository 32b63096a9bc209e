"""The processor: chat template, text with expanded video placeholders, and frames for both encoders.

    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    batch = processor(text=[text], videos=[frames], return_tensors="pt")
    model.generate(**batch, max_new_tokens=64)

`batch` holds `input_ids`, `attention_mask` `[B, L]`, `mm_token_type_ids` `[B, L]` (2 at video
tokens: what 3D RoPE groups by), `pixel_values_videos` and `spatial_pixel_values`
`[sum t*h*w, 1176]`, `video_grid_thw` `[num_videos, 3]`, and `second_per_grid_ts` when `fps` is
given. Each `<|video_pad|>` in the text becomes t*h*w/4 copies, in the order of `videos`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from transformers import BatchFeature

from modeling.preprocess import FrameSpec, patch_rows, pixel_values
from modeling.tokenizer import CHAT_TEMPLATE

PREPROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_CLASS = "SpatialMLLMProcessor"


class SpatialMLLMProcessor:
    """Tokenizer + frame preprocessing for Spatial-MLLM (and plain Qwen2.5-VL).

    tokenizer: a transformers tokenizer with Qwen's special tokens.
    frames: sizing and normalisation of frames (per-frame pixel bounds, patch sizes).
    chat_template: Jinja template; defaults to the tokenizer's, else Qwen2.5-VL's (tokenizer.py).
    """

    video_token = "<|video_pad|>"
    image_token = "<|image_pad|>"

    def __init__(self, tokenizer, frames: FrameSpec | None = None, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.frames = frames or FrameSpec()
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None) or CHAT_TEMPLATE
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        if self.video_token_id is None or self.video_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {self.video_token} token")

    def apply_chat_template(
        self, conversation: list, add_generation_prompt: bool = False, **kwargs
    ) -> str | list[str]:
        """Render HF-style messages (`content` a string or a list of `{"type": "video"}` /
        `{"type": "text", "text": ...}` items) as text; a list of conversations gives a list."""
        batched = bool(conversation) and isinstance(conversation[0], list)
        conversations = conversation if batched else [conversation]
        kwargs.setdefault("tokenize", False)
        texts = [
            self.tokenizer.apply_chat_template(
                conv, chat_template=self.chat_template, add_generation_prompt=add_generation_prompt, **kwargs
            )
            for conv in conversations
        ]
        return texts if batched else texts[0]

    def _expand_placeholders(self, texts: list[str], counts: list[int]) -> list[str]:
        """Replace the i-th `<|video_pad|>` (across the batch) by counts[i] copies."""
        found = sum(t.count(self.video_token) for t in texts)
        if found != len(counts):
            raise ValueError(
                f"text holds {found} {self.video_token} placeholders but {len(counts)} videos were given"
            )
        it = iter(counts)
        out = []
        for text in texts:
            parts = text.split(self.video_token)
            pieces = [parts[0]]
            for part in parts[1:]:
                pieces.append(self.video_token * next(it))
                pieces.append(part)
            out.append("".join(pieces))
        return out

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos: list | None = None,
        *,
        return_tensors: str | None = "pt",
        padding: bool | str = True,
        padding_side: str | None = None,
        fps: float | list[float] | None = None,
        pixel_rows: bool = False,
        **tokenizer_kwargs,
    ) -> BatchFeature:
        """Tokenise `text` and preprocess `videos` (one per `<|video_pad|>`, each a list of HxWx3
        uint8 frames); the caller picks the frames. `padding_side="left"` for generation batches.
        `fps`: frames per second of the given frames, per video or one for all; sets
        `second_per_grid_ts` (Qwen's temporal RoPE spacing; without it the model assumes 1 s).
        `pixel_rows=True`: return the videos as `video_pixel_rows` (uint8, a quarter of the bytes of
        one float tensor) instead of both float tensors; `self.pixel_values(rows)` makes those.
        """
        if text is None:
            raise ValueError("text is required")
        texts = [text] if isinstance(text, str) else list(text)
        data: dict = {}
        counts: list[int] = []
        if videos:
            per_video = [patch_rows(v, self.frames) for v in videos]
            grids = np.stack([grid for _, grid in per_video])
            counts = [int(g.prod()) // self.frames.merge_size**2 for g in grids]
            rows = np.concatenate([r for r, _ in per_video])
            data.update({"video_pixel_rows": rows} if pixel_rows else self.pixel_values(rows))
            data["video_grid_thw"] = grids
            if fps is not None:
                rates = [fps] * len(per_video) if isinstance(fps, (int, float)) else list(fps)
                data["second_per_grid_ts"] = np.asarray(
                    [self.frames.temporal_patch_size / r for r in rates], dtype=np.float32
                )
        texts = self._expand_placeholders(texts, counts)
        if padding_side is not None:
            tokenizer_kwargs["padding_side"] = padding_side
        enc = self.tokenizer(texts, padding=padding, return_tensors=None, **tokenizer_kwargs)
        ids = enc["input_ids"]
        types = [
            [2 if t == self.video_token_id else 1 if t == self.image_token_id else 0 for t in row]
            for row in ids
        ]
        data = {"input_ids": ids, "attention_mask": enc["attention_mask"], "mm_token_type_ids": types, **data}
        return BatchFeature(data=data, tensor_type=return_tensors)

    def pixel_values(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """`video_pixel_rows` -> `pixel_values_videos`, `spatial_pixel_values` (float32 arrays)."""
        return pixel_values(rows, self.frames)

    def batch_decode(self, *args, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs) -> str:
        return self.tokenizer.decode(*args, **kwargs)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the tokenizer files, the chat template and `preprocessor_config.json`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.chat_template = self.chat_template
        self.tokenizer.save_pretrained(path)
        spec = dataclasses.asdict(self.frames)
        config = {
            "processor_class": PROCESSOR_CLASS,
            # Qwen2VLImageProcessor-compatible keys, so other tools read the same sizes.
            "image_processor_type": "Qwen2VLImageProcessor",
            **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
        }
        (path / PREPROCESSOR_FILE).write_text(json.dumps(config, indent=2) + "\n")

    @staticmethod
    def read_frame_spec(path: str | os.PathLike, default: FrameSpec) -> FrameSpec:
        """The FrameSpec saved by `save_pretrained`; for a Qwen release, its patch sizes and
        statistics with `default`'s per-frame pixel bounds (its own bounds are for images)."""
        file = Path(path) / PREPROCESSOR_FILE
        if not file.exists():
            return default
        raw = json.loads(file.read_text())
        fields = {f.name for f in dataclasses.fields(FrameSpec)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in fields}
        if raw.get("processor_class") != PROCESSOR_CLASS:
            values.pop("min_pixels", None)
            values.pop("max_pixels", None)
        return dataclasses.replace(default, **values)
