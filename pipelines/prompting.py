"""A QA record as the model sees it: chat messages, prompt text, target text, and its frames.

Shared by SFT, GRPO and evaluation, so a model is asked at test time in the words it was trained on:

    system: You are a helpful assistant.
    user:   <video> [These are frames of a video.\n]{question}\n[Options:\nA. ...\nB. ...\n]{post-prompt}
    assistant (the target): {answer}  or  <think>{rationale}</think><answer>{answer}</answer>

A record read from a Qwen-VL annotation file carries its conversation verbatim instead (`turns`:
JSON `[{"user": ..., "assistant": ...}, ...]`, the user text holding one `<video>` where the video
goes, as qwen-vl-finetune renders it); prompt style and think format do not reword it, except that
GRPO's think instruction (`THINK_FORMAT`) is added as a last line of its question.

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
spread subset when the record lists more than asked for; a record that lists none gets the frames
`pipelines.media.FrameRule` picks from its media (`record_clip`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions
from data_gen.schema import CAMERA_MOTION_TYPES
from pipelines import media

SYSTEM_PROMPT = "You are a helpful assistant."
PROMPT_STYLES = ("spatial_mllm", "vsi_bench", "think")
DEFAULT_STYLE = "spatial_mllm"
VIDEO_PREAMBLE = "These are frames of a video."  # the first line of VSI-Bench's harness prompt
# VSI-Bench's post-prompts (its harness and the authors' eval script use the same two).
POST_PROMPT = {
    "multiple_choice": "Answer with the option's letter from the given choices directly.",
    "numerical": "Please answer the question using a single word or phrase.",
    "open_ended": "Please answer the question using a single word or phrase.",  # ScanQA / SQA3D
}
THINK_FORMAT = (
    "Think about the question first, then give the answer: output the thinking process in "
    "<think> </think> and the final answer in <answer> </answer> tags."
)
# The think style's post-prompts: how to answer, then the format GRPO's format reward checks.
THINK_POST_PROMPT = {
    "multiple_choice": "Answer with the option's letter from the given choices. " + THINK_FORMAT,
    "numerical": "Answer with a single number. " + THINK_FORMAT,
    "open_ended": "Answer with a single word or phrase. " + THINK_FORMAT,
}
SAMPLINGS = ("space_aware", "uniform")
VIDEO_TAG = "<video>"  # where a verbatim user turn shows the video (qwen-vl-finetune's placeholder)


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


def turns(record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> list[tuple[str, str]]:
    """The record's (user, assistant) turns, the user text holding `VIDEO_TAG` where the video goes:
    its verbatim `turns` when it has them, else one turn rendered from its question fields in
    `style` (the video first) with `target_text` as the answer."""
    verbatim = record.get("turns")
    if verbatim:
        return [(t["user"], t["assistant"]) for t in json.loads(verbatim)]
    return [(VIDEO_TAG + user_text(record, think=think, style=style), target_text(record, think=think))]


def user_content(text: str) -> list[dict]:
    """A user turn's text as chat content: a video item where each `VIDEO_TAG` is, text around them."""
    items: list[dict] = []
    for i, part in enumerate(text.split(VIDEO_TAG)):
        if i:
            items.append({"type": "video"})
        if part:
            items.append({"type": "text", "text": part})
    return items or [{"type": "text", "text": text}]


def messages(record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> list[dict]:
    """System turn, then the first user turn holding the video and the question (no assistant
    turn): what generation continues from. A verbatim question gets `THINK_FORMAT` as a last line
    when `think`."""
    verbatim = record.get("turns")
    if verbatim:
        user = json.loads(verbatim)[0]["user"] + ("\n" + THINK_FORMAT if think else "")
    else:
        user = VIDEO_TAG + user_text(record, think=think, style=style)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_content(user)}]


def chat(record: dict[str, Any], *, think: bool = False, style: str = DEFAULT_STYLE) -> list[dict]:
    """The whole training conversation: system, then every user and assistant turn."""
    out = [{"role": "system", "content": SYSTEM_PROMPT}]
    for user, assistant in turns(record, think=think, style=style):
        out += [{"role": "user", "content": user_content(user)}, {"role": "assistant", "content": assistant}]
    return out


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
    """The frames of `record` to show: its space-aware or uniform list, thinned evenly to num_frames.
    A camera-motion record (`data_gen.schema.CAMERA_MOTION_TYPES`) shows all of its frames whatever
    num_frames says: its question names frames by their place among them."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {SAMPLINGS}, got {sampling!r}")
    chosen = list(record["frame_indices"] if sampling == "space_aware" else record["uniform_indices"])
    if len(chosen) > num_frames and record.get("question_type") not in CAMERA_MOTION_TYPES:
        chosen = [chosen[p] for p in uniform_positions(len(chosen), num_frames)]
    return [int(i) for i in chosen]


def record_clip(record: dict[str, Any], *, sampling: str, rule: media.FrameRule) -> media.Clip:
    """The record's frames from its media (`media_kind`, `media_paths`): its listed frames
    (`frame_ids`), or what `rule` picks when it lists none. Raises RecordError naming the record
    and the file."""
    ids = frame_ids(record, sampling=sampling, num_frames=rule.num_frames)
    paths = list(record["media_paths"])
    if record.get("question_type") in CAMERA_MOTION_TYPES:  # its question numbers every frame it lists
        listed = len(paths) if record["media_kind"] == "images" else len(ids)
        rule = dataclasses.replace(rule, num_frames=max(rule.num_frames, listed))
    try:
        return media.load_clip(record["media_kind"], paths, ids, rule)
    except media.VideoError as e:
        raise RecordError(f"record {record['id']}: {e}") from e
