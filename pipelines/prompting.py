"""A QA record as the model sees it: chat messages, prompt text, target text, and its frames.

Shared by SFT, GRPO and evaluation, so a model is asked at test time in the words it was trained on:

    system: You are a helpful assistant.
    user:   <video> [These are frames of a video.\n]{question}\n[Options:\nA. ...\nB. ...\n]{post-prompt}
    assistant (the target): {answer}  or  <think>{rationale}</think><answer>{answer}</answer>

Prompt styles (`sft.prompt_style`, `grpo.prompt_style`, `eval.prompt_style`):
- `spatial_mllm` (the default): the Spatial-MLLM authors' eval script: question, options, then
  VSI-Bench's post-prompt (`POST_PROMPT`: "Answer with the option's letter from the given choices
  directly." / "Please answer the question using a single word or phrase.");
- `vsi_bench`: VSI-Bench's own harness (thinking-in-space lmms-eval task): the same, after the line
  "These are frames of a video.";
- `think`: the think/answer format GRPO trains: question, options, then `THINK_POST_PROMPT` (how
  to answer, then reasoning in <think> </think> and the answer in <answer> </answer>). `think=True`
  (the stages' `think_format`) asks for it whatever the style; the `vsi_bench` line is kept then.

Frames are the record's `frame_indices` (space-aware) or `uniform_indices`, thinned to an evenly
spread subset when the record lists more than asked for.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions

SYSTEM_PROMPT = "You are a helpful assistant."
PROMPT_STYLES = ("spatial_mllm", "vsi_bench", "think")
DEFAULT_STYLE = "spatial_mllm"
VIDEO_PREAMBLE = "These are frames of a video."  # the first line of VSI-Bench's harness prompt
# VSI-Bench's post-prompts (its harness and the authors' eval script use the same two).
POST_PROMPT = {
    "multiple_choice": "Answer with the option's letter from the given choices directly.",
    "numerical": "Please answer the question using a single word or phrase.",
}
THINK_FORMAT = (
    "Think about the question first, then give the answer: output the thinking process in "
    "<think> </think> and the final answer in <answer> </answer> tags."
)
# The think style's post-prompts: how to answer, then the format GRPO's format reward checks.
THINK_POST_PROMPT = {
    "multiple_choice": "Answer with the option's letter from the given choices. " + THINK_FORMAT,
    "numerical": "Answer with a single number. " + THINK_FORMAT,
}
SAMPLINGS = ("space_aware", "uniform")


class RecordError(InputError):
    """A record that cannot be turned into a sample (missing scene or frames); names the record."""


def check_style(style: str) -> str:
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style must be one of {PROMPT_STYLES}, got {style!r}")
    return style


def user_text(record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> str:
    """The user turn's text in `style`: [the VSI-Bench line,] the question, the options one per
    line after "Options:" (multiple choice), then the post-prompt (the think/answer instruction
    when `think` or style `think`)."""
    check_style(style)
    think = think or style == "think"
    lines = [VIDEO_PREAMBLE] if style == "vsi_bench" else []
    lines.append(str(record["question"]))
    options = list(record.get("options") or [])
    if options:
        lines.append("Options:\n" + "\n".join(str(o) for o in options))
    lines.append((THINK_POST_PROMPT if think else POST_PROMPT)[record["problem_type"]])
    return "\n".join(lines)


def messages(record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> list[dict]:
    """System turn, then one user turn holding the video and the question (no assistant turn)."""
    text = user_text(record, think=think, style=style)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]},
    ]


def prompt_text(processor, record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> str:
    """The rendered prompt, ending with the assistant header the model continues from."""
    return processor.apply_chat_template(messages(record, think=think, style=style), add_generation_prompt=True)


def target_text(record: dict[str, Any], *, think: bool) -> str:
    """What the assistant should say: the ground truth, or rationale + answer in think format."""
    answer = str(record["ground_truth"])
    if think:
        return f"<think>{record['rationale']}</think><answer>{answer}</answer>"
    return answer


def frame_ids(record: dict[str, Any], *, sampling: str, num_frames: int) -> list[int]:
    """The frames of `record` to show: its space-aware or uniform list, thinned evenly to num_frames."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {SAMPLINGS}, got {sampling!r}")
    chosen = list(record["frame_indices"] if sampling == "space_aware" else record["uniform_indices"])
    if len(chosen) > num_frames:
        chosen = [chosen[p] for p in uniform_positions(len(chosen), num_frames)]
    return [int(i) for i in chosen]


@functools.lru_cache(maxsize=4)
def _scan(scene_dir: str):
    """A scan is read once per process for consecutive records on the same scene."""
    from data_gen.scans.scannet import read_scan

    return read_scan(scene_dir)


def missing_frames(scene_dir: Path, ids: list[int]) -> list[int]:
    """Which of `ids` have no colour image, checked cheaply from file names (or the `.sens`
    header), without decoding: every layout `read_scan` reads (plain or zero-padded export names,
    the C++ exporter's `frame-<n>.color.jpg`, `.sens`). A missing or unreadable scene misses all."""
    from data_gen.scans.scan import ScanError
    from data_gen.scans.scannet import color_frame_ids

    if not scene_dir.is_dir():
        return list(ids)
    try:
        have = set(color_frame_ids(scene_dir))
    except ScanError:
        return list(ids)
    return [i for i in ids if i not in have]


def scan_frames(scene_dir: Path, ids: list[int]) -> list[np.ndarray]:
    """Colour frames `ids` of the scan folder `scene_dir` as HxWx3 uint8 RGB arrays, in the order
    given. Raises OSError, ValueError, KeyError or IndexError when they cannot be read."""
    scan = _scan(str(scene_dir))
    return [np.asarray(scan.frames.color(i), dtype=np.uint8) for i in ids]


def load_frames(record: dict[str, Any], scans_root: Path, *, sampling: str, num_frames: int) -> list[np.ndarray]:
    """The record's frames as HxWx3 uint8 RGB arrays, in video order. Raises RecordError."""
    scene_dir = Path(scans_root) / str(record["video"])
    ids = frame_ids(record, sampling=sampling, num_frames=num_frames)
    if not ids:
        raise RecordError(f"record {record['id']}: no frame indices")
    try:
        return scan_frames(scene_dir, ids)
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise RecordError(f"record {record['id']}: cannot read frames {ids} of {scene_dir}: {e}") from e
