"""One model replica of the evaluation's Ray Data actor pool: frames in, greedy completions out.

`Predictor(preset_or_path, path, dtype, max_new_tokens, seed, think)` loads the model once; each
call takes a numpy batch of items (pipelines.evaluate.inputs) holding their `frames`, asks each
question the way training did (`pipelines.prompting`), and returns `index` and `prediction` (the
decoded completion, special tokens dropped).
"""

from __future__ import annotations

import numpy as np

from pipelines import prompting
from pipelines.evaluate.inputs import load_frames

PROMPT_FIELDS = ("question", "options", "problem_type")


def with_frames(row: dict) -> dict:
    """Ray Data map step: what the prompt needs plus the decoded frames, [N, H, W, 3] uint8."""
    return {"index": row["index"], **{k: row[k] for k in PROMPT_FIELDS}, "frames": np.stack(load_frames(row))}


class Predictor:
    """A model replica (a Ray Data actor). GPU when the actor was given one, else CPU."""

    def __init__(
        self,
        preset_or_path: str,
        path: str | None,
        dtype: str,
        max_new_tokens: int,
        seed: int,
        think: bool,
        spatial_weights: str | None = None,
    ):
        import torch

        import modeling

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model, self.processor = modeling.load(
            preset_or_path, path=path, spatial_weights=spatial_weights, dtype=dtype, device=self.device, seed=seed
        )
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        self.think = think

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        n = len(batch["index"])
        items = [
            {"question": str(batch["question"][i]), "options": [str(o) for o in batch["options"][i]],
             "problem_type": str(batch["problem_type"][i])}
            for i in range(n)
        ]  # fmt: skip
        texts = [prompting.prompt_text(self.processor, it, think=self.think) for it in items]
        videos = [list(batch["frames"][i]) for i in range(n)]  # each: N frames [H, W, 3] uint8
        inputs = self.processor(text=texts, videos=videos, return_tensors="pt", padding_side="left")
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]  # [B, T_new]: left padding keeps prompts aligned
        completions = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return {"index": batch["index"], "prediction": np.asarray(completions, dtype=object)}
