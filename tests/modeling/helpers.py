"""Test helpers: random frames and chat prompts."""

from __future__ import annotations

import numpy as np


def random_video(seed: int, frames: int, height: int = 112, width: int = 112) -> list[np.ndarray]:
    """`frames` random HxWx3 uint8 RGB frames."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(frames)]


def video_prompt(
    processor, question: str = "How many chairs are in this room?", answer: str | None = None
) -> str:
    """A one-video user turn (plus an assistant answer when given), rendered by the chat template."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return processor.apply_chat_template(messages, add_generation_prompt=answer is None)
