"""Evaluation settings (the `eval` section of the run config)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.config.mixture import SourceConfig

DIRECT_MAX_NEW_TOKENS = 16  # VSI-Bench's harness: greedy, 16 new tokens for a direct answer
THINK_MAX_NEW_TOKENS = 512  # room for <think>...</think><answer>...</answer> (grpo.max_completion_length)
SPATIAL_MLLM_MAX_NEW_TOKENS = 1024  # the authors' eval_vsibench.py generation_kwargs
# eval.protocol=spatial_mllm: their src/evaluation/vsibench/ (dataset_utils.py scorer; no fps given
# to the processor; generate(do_sample=True, temperature=0.1, top_p=0.001, max_new_tokens=1024)).
SPATIAL_MLLM_PROTOCOL = {"scoring": "spatial_mllm", "frame_timing": "processor_default", "decoding": "spatial_mllm"}


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    split: str = Field("val")
    """Dataset split to evaluate (train or val), when source = dataset."""
    source: Literal["dataset", "vsibench", "sources"] = "dataset"
    """What to evaluate on: `dataset` = run_dir/dataset/<split>/*.parquet with frames from the scans;
    `vsibench` = a VSI-Bench question file (eval.vsibench_file) with its videos (eval.videos_dir);
    `sources` = the annotation files of eval.sources (ScanQA val, SQA3D val or test, Qwen-VL records)."""
    sources: list[SourceConfig] = Field(default_factory=list)
    """The sources to evaluate when eval.source = sources, written as data.mixture's (format,
    annotation, media_root, ...; rate is ignored: every record is asked). A multi-turn record is
    asked its first question. Open-ended answers are scored by exact match, and the report adds
    BLEU-4, ROUGE-L, METEOR and CIDEr (pycocoevalcap)."""
    vsibench_file: str | None = None
    """VSI-Bench questions, Parquet, JSON or JSON Lines, in either format (eval.file_format):
    the HF release (id, dataset, scene_name, question_type, question, options, ground_truth) or
    the Spatial-MLLM authors' v1.0 eval file (problem, problem_type, options, solution, path,
    original_question_type). Required when source = vsibench."""
    file_format: Literal["auto", "vsi_bench", "spatial_mllm_v1"] = "auto"
    """Format of eval.vsibench_file; `auto` = told apart by the first row's columns."""
    videos_dir: str | None = None
    """Folder holding the videos ({dataset}/{scene_name}.mp4, or the v1.0 file's `path`s); null =
    the folder of eval.vsibench_file."""
    name: str | None = None
    """Outputs go to run_dir/eval/<name>/; null = the split (`val`) for our dataset, `vsibench` for
    a question file, the source names joined by `+` for eval.sources, plus `-<stage>-step_<N>` when
    eval.model is a training checkpoint. Set it to keep several evaluations of one benchmark apart (other frames, prompts or models)."""
    model: str | None = None
    """The model to evaluate: null = run_dir/grpo/final, else run_dir/sft/final, else
    model.preset (with model.path weights); or a folder: a save_pretrained folder, a released
    checkpoint, or a training checkpoint <run>/{sft,grpo}/checkpoints/step_N (DeepSpeed ZeRO shards,
    consolidated on load onto the model that stage starts from)."""
    num_frames: int = Field(16, ge=1)
    """Frames per question, count. Paper: 16."""
    frame_sampling: Literal["space_aware", "uniform", "presampled"] | None = None
    """Which frames. null = `space_aware` for our dataset, `presampled` for a question file when
    eval.frames_dir is set, else `uniform`. `space_aware`: our records' frame_indices; for videos,
    per-video indices from eval.frame_indices_file. `uniform`: our records' uniform_indices; for
    videos, num_frames evenly spaced (qwen-vl-utils' indices). `presampled`: the image files of
    eval.frames_dir/<dataset>/<scene_name>/ (the authors' space-aware frames), in name order."""
    frames_dir: str | None = None
    """Folder of pre-sampled frames, <dataset>/<scene_name>/*.png (or .jpg), as the authors ship
    their space-aware frames; used when frame_sampling is presampled (or null)."""
    frame_indices_file: str | None = None
    """JSON object {"<dataset>/<scene_name>": [frame index, ...]}: space-aware frame indices per
    video, as the frame-sampling job will write them; needed for frame_sampling=space_aware on videos."""
    prompt_style: Literal["spatial_mllm", "vsi_bench", "think"] | None = None
    """How questions are asked (pipelines/prompting.py): `spatial_mllm` (the authors' eval
    script), `vsi_bench` (VSI-Bench's harness: "These are frames of a video." first) or `think`
    (<think>...</think><answer>...</answer>). null = as the evaluated model was trained: `think` when
    its stage had think_format, else that stage's prompt_style; `spatial_mllm` for model.preset /
    model.path."""
    protocol: Literal["vsi_bench", "spatial_mllm"] = "vsi_bench"
    """Sets scoring, frame_timing and decoding together (each may still be set on its own):
    `vsi_bench` = VSI-Bench's official scorer, the sampled frame rate, greedy decoding of 16 tokens;
    `spatial_mllm` = the Spatial-MLLM authors' evaluation script (release v1.1): their scorer, the
    processor's default timing (1.0 s per frame pair), their sampling settings (temperature 0.1,
    top_p 0.001, 1,024 new tokens). The report names the protocol and the three settings."""
    scoring: Literal["official", "lenient", "spatial_mllm"] = "official"
    """`official` = VSI-Bench's rule exactly (first space-separated token, trailing '.' stripped:
    letter equality, case ignored, or float() then MRA; anything else 0); `lenient` = the reading
    GRPO's accuracy reward uses (first number anywhere, "(b)", "B:"); `spatial_mllm` = the authors'
    scorer (the whole cleaned answer: "B. chair" scores 0, "1,200" reads 1200; MRA with a strict <,
    so an answer exactly on a threshold misses it). With a think prompt, all read the <answer> tag."""
    frame_timing: Literal["sampled", "processor_default"] = "sampled"
    """Qwen's temporal RoPE spacing for videos: `sampled` = temporal_patch_size / the sampled
    frames' rate (frames / duration, as training computes it); `processor_default` = no rate given,
    so 1.0 s per frame pair (the processor's default, what the authors' evaluation passes)."""
    decoding: Literal["greedy", "spatial_mllm"] = "greedy"
    """`greedy` = argmax; `spatial_mllm` = the authors' settings (do_sample, temperature 0.1, top_p
    0.001: in effect greedy) and 1,024 new tokens unless max_new_tokens says otherwise. The model's
    own generation_config.json (e.g. Qwen's repetition_penalty) applies in both, as in generate."""
    batch_size: int = Field(4, ge=1)
    """Questions decoded together on one replica, count (the questions of one video share its
    encoding, and with shared_prefix its prompt)."""
    shared_prefix: bool = True
    """Compute what a video's question prompts share (system turn and video tokens) once per video
    and answer each batch of its questions from that KV cache (modeling/shared_prefix.py); false =
    one greedy generate over the full prompts of each batch, for comparison or as a fallback. The
    answers are the same either way (greedy, same positions and logits processors), so switching
    it keeps completions.jsonl."""
    num_replicas: int = Field(1, ge=1)
    """Model replicas in the Ray Data actor pool, count; each takes one GPU when the cluster has GPUs."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Decoding budget per answer, tokens; null = 16 for a direct answer (VSI-Bench's harness), 512
    for the think format, 1,024 with decoding=spatial_mllm (the authors' script)."""
    max_bad_video_fraction: float = Field(0.05, ge=0.0, le=1.0)
    """Share of the videos (scan folders for our dataset) that may fail to decode, fraction: their
    questions score 0 and are listed in the report; one more stops the run, naming them. 0 = the
    first bad video stops it."""
    limit: int = Field(0, ge=0)
    """Evaluate only the first this-many questions, count; 0 = all."""

    @model_validator(mode="after")
    def _protocol(self) -> EvalConfig:
        """The protocol's settings for the keys not set explicitly."""
        if self.protocol == "spatial_mllm":
            chosen = self.model_fields_set
            for key, value in SPATIAL_MLLM_PROTOCOL.items():
                if key not in chosen and getattr(self, key) != value:
                    object.__setattr__(self, key, value)  # no re-validation loop
        return self

    def generation_kwargs(self, think: bool) -> dict:
        """What `generate` is given besides the inputs (the model's generation_config fills the rest)."""
        if self.decoding == "spatial_mllm":
            return {"do_sample": True, "temperature": 0.1, "top_p": 0.001, "max_new_tokens": self.decoding_budget(think)}
        return {"do_sample": False, "max_new_tokens": self.decoding_budget(think)}

    @model_validator(mode="after")
    def _vsibench_needs_a_file(self) -> EvalConfig:
        if self.source == "vsibench" and not self.vsibench_file:
            raise ValueError("eval.source=vsibench needs eval.vsibench_file (Parquet or JSON)")
        if self.source == "sources" and not self.sources:
            raise ValueError("eval.source=sources needs eval.sources (a list like data.mixture.sources)")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*", self.name):
            raise ValueError(f"eval.name={self.name!r}: use letters, digits and _ . = + - (a folder name)")
        return self

    def decoding_budget(self, think: bool) -> int:
        """max_new_tokens, or its default for the decoding and the prompt's answer format."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.decoding == "spatial_mllm":
            return SPATIAL_MLLM_MAX_NEW_TOKENS
        return THINK_MAX_NEW_TOKENS if think else DIRECT_MAX_NEW_TOKENS
