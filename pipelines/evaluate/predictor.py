"""The two Ray Data steps of an evaluation: decode a video once, then answer all of its questions.

    group row {"group", "video", "frames" (spec JSON), "questions" (JSON)}
      -> decode_group (CPU task)   + "frames_array" [N, H, W, 3] uint8, "fps" (NaN = unknown),
                                     "error" ("" = decoded)
      -> Predictor (actor)         one row per question: "index", "prediction", "error"

A group is one video (or scan, or frame folder) with one frame-id set (`inputs.frame_groups`):
its frames are decoded once and travel once. The replica preprocesses them once, runs both
encoders once (`model.encode_videos`), and answers every question of the video from those
embeddings, `batch_size` questions at a time. With eval.shared_prefix (the default) the language
model also computes what the prompts share (system turn and video) once per video and decodes each
batch of questions from it (`shared_answers.py`); otherwise each batch is a greedy `generate` call
over full prompts. A video that cannot be read fails only its own questions: they come back with
`error` set and no prediction.
"""

from __future__ import annotations

import json

import numpy as np

from data_gen.errors import InputError
from pipelines import prompting
from pipelines.evaluate.inputs import frames_fps, load_frames
from pipelines.evaluate.shared_answers import shared_prefix_answers

NO_FRAMES = np.zeros((0, 1, 1, 3), dtype=np.uint8)


def decode_group(row: dict) -> dict:
    """Ray Data map step: the group's frames as one [N, H, W, 3] uint8 array, or its error. Any
    failure to read them is this group's error, never the run's: the questions of a bad video
    score 0 and the run goes on (up to eval.max_bad_video_fraction)."""
    spec = json.loads(row["frames"])
    fps = None
    try:
        frames, error = np.stack(load_frames(spec)), ""
        fps = frames_fps(spec, len(frames))
    except InputError as e:  # VideoError, RecordError: the message names the file
        frames, error = NO_FRAMES, str(e)
    except Exception as e:  # noqa: BLE001 - a decoder's unexpected failure on one file
        frames, error = NO_FRAMES, f"{spec['path']}: cannot be read ({type(e).__name__}: {e})"
    return {**row, "frames_array": frames, "fps": np.nan if fps is None else float(fps), "error": error}


class Predictor:
    """A model replica (a Ray Data actor). GPU when the actor was given one, else CPU.

    `source`: a `models.ModelSource` (which weights, how to ask); `max_new_tokens`: the greedy
    budget; `batch_size`: questions decoded together; `shared_prefix`: compute a video's prompt
    once for all of its questions; `generation`: generate's settings (`EvalConfig.generation_kwargs`;
    default greedy with max_new_tokens); `frame_timing`: `sampled` (each video's frame rate) or
    `processor_default` (none given: 1.0 s per frame pair)."""

    def __init__(self, source, dtype: str, max_new_tokens: int, seed: int, batch_size: int,
                 shared_prefix: bool = True, generation: dict | None = None,
                 frame_timing: str = "sampled"):  # fmt: skip
        import torch

        from pipelines.evaluate.models import load_model

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, processor = load_model(source, dtype=dtype, device=device, seed=seed)
        self._hold(model, processor, source, max_new_tokens, batch_size, seed, shared_prefix, generation, frame_timing)

    def _hold(self, model, processor, source, max_new_tokens, batch_size, seed, shared_prefix, generation,
              frame_timing) -> None:  # fmt: skip
        self.model, self.processor, self.source = model, processor, source
        self.device = str(next(model.parameters()).device)
        self.max_new_tokens, self.batch_size, self.seed = max_new_tokens, batch_size, seed
        self.shared_prefix = shared_prefix
        self.generation = generation or {"do_sample": False, "max_new_tokens": max_new_tokens}
        self.frame_timing = frame_timing

    @classmethod
    def around(cls, model, processor, source, *, max_new_tokens: int, batch_size: int = 4, seed: int = 0,
               shared_prefix: bool = True, generation: dict | None = None, frame_timing: str = "sampled"):  # fmt: skip
        """A replica around an already loaded model (no second copy): what a tool that holds the
        model uses to answer exactly as the evaluation does."""
        replica = cls.__new__(cls)
        replica._hold(model, processor, source, max_new_tokens, batch_size, seed, shared_prefix, generation, frame_timing)
        return replica

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        index, prediction, error = [], [], []
        for g in range(len(batch["group"])):
            questions = json.loads(str(batch["questions"][g]))
            failed = str(batch["error"][g])
            fps = float(batch["fps"][g]) if self.frame_timing == "sampled" else float("nan")
            answers = [""] * len(questions) if failed else self.answer(batch["frames_array"][g], questions,
                                                                        None if np.isnan(fps) else fps)  # fmt: skip
            index += [q["index"] for q in questions]
            prediction += answers
            error += [failed] * len(questions)
        return {
            "index": np.asarray(index, dtype=np.int64),
            "prediction": np.asarray(prediction, dtype=object),
            "error": np.asarray(error, dtype=object),
        }

    def prompts(self, questions: list[dict]) -> list[str]:
        src = self.source
        return [prompting.prompt_text(self.processor, q, think=src.think, style=src.style) for q in questions]

    def answer(self, frames: np.ndarray, questions: list[dict], fps: float | None = None) -> list[str]:
        """Greedy completions (special tokens dropped) for the questions of one video, [N, H, W, 3]
        sampled at `fps` frames per second (None: unknown, the model's 1 s per frame pair)."""
        import torch

        import modeling

        texts = self.prompts(questions)
        video = self.processor(text=texts[:1], videos=[list(frames)], return_tensors="pt", fps=fps).to(self.device)
        merge = self.model.config.vision_config.spatial_merge_size
        tokens = int(video["video_grid_thw"].prod()) // merge**2  # <|video_pad|> tokens of this video
        pad = self.processor.video_token
        seconds = video["second_per_grid_ts"] if fps else None  # [1]
        expanded = [t.replace(pad, pad * tokens) for t in texts]
        if self.generation.get("do_sample"):  # sampling (the authors' settings): the same draws on every run
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            embeds = self.model.encode_videos(  # both encoders, once per video: [tokens, hidden]
                video["pixel_values_videos"], video["video_grid_thw"], video.get("spatial_pixel_values")
            )
            if self.shared_prefix:
                answers = shared_prefix_answers(
                    self.model, self.processor.tokenizer, expanded, embeds, video["video_grid_thw"], seconds,
                    batch_size=self.batch_size, generation=self.generation,
                )  # fmt: skip
                if answers is not None:
                    return self.processor.batch_decode(answers, skip_special_tokens=True)
            out: list[str] = []
            for start in range(0, len(texts), self.batch_size):
                chunk = expanded[start : start + self.batch_size]
                enc = self.processor.tokenizer(chunk, padding=True, padding_side="left", return_tensors="pt")
                enc = enc.to(self.device)
                rows_embeds, rows_grid = modeling.expand_video_inputs(embeds, video["video_grid_thw"], len(chunk), merge)
                timing = {"second_per_grid_ts": seconds.repeat(len(chunk))} if fps else {}  # [B]
                generated = self.model.generate(
                    input_ids=enc["input_ids"],
                    attention_mask=enc["attention_mask"],
                    video_grid_thw=rows_grid,  # [B, 3]
                    video_embeds=rows_embeds,  # [B * tokens, hidden]
                    **self.generation,
                    **timing,
                )
                new_tokens = generated[:, enc["input_ids"].shape[1] :]  # [B, T_new]: left padding aligns prompts
                out += self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return out
