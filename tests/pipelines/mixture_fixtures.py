"""Annotation files in the formats users have, written by the tests: Qwen-VL finetune JSONL with
mp4s (PyAV), images and frame folders; ScanQA's and SQA3D's released JSON layouts (field names as
in ScanQA_v1.0_{train,val}.json and v1_balanced_{questions,sqa_annotations}_<split>_scannetv2.json),
over scenes the tests synthesise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.pipelines.evaluate.video_fixtures import synthetic_frames, write_mp4

MC_QUESTION = ("Which colour does the video start with?\nOptions:\nA. red\nB. green\nC. blue\n"
               "Answer with the option's letter from the given choices directly.")  # fmt: skip
NUM_QUESTION = "How many white squares are in each frame?\nPlease answer the question using a single word or phrase."


def human_gpt(*pairs: str) -> list[dict]:
    """[human, gpt, human, gpt, ...] turns in qwen-vl-finetune's `from` / `value` form."""
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": text} for i, text in enumerate(pairs)]


def write_qwen_vl(root: Path, *, videos: int = 2, frames: int = 48, fps: int = 24) -> Path:
    """root/videos/clip<i>.mp4 (`frames` frames of 64x48 at `fps`), root/stills/*.png, root/frames/clip0/
    (a frame folder), and root/train.jsonl: per video a multiple-choice and a numerical record, one
    multi-turn open-ended record, one with its own frame indices, one image list, one frame folder."""
    pictures = synthetic_frames(frames)
    for i in range(videos):
        write_mp4(root / "videos" / f"clip{i}.mp4", pictures, fps=fps)
    (root / "stills").mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.fromarray(pictures[i * 10]).save(root / "stills" / f"view{i}.png")
    (root / "frames" / "clip0").mkdir(parents=True, exist_ok=True)
    for i in range(0, frames, 6):
        Image.fromarray(pictures[i]).save(root / "frames" / "clip0" / f"{i:05d}.png")
    records = []
    for i in range(videos):
        records.append({"video": f"videos/clip{i}.mp4", "conversations": human_gpt("<video>\n" + MC_QUESTION, "B")})
        records.append({"video": f"videos/clip{i}.mp4", "conversations": human_gpt("<video>\n" + NUM_QUESTION, "1")})
    records.append({"id": "chat", "video": "videos/clip0.mp4", "conversations": human_gpt(
        "<video>\nWhat moves across the frames?", "a white square", "Which way does it go?", "to the right")})
    records.append({"video": "videos/clip1.mp4", "frame_indices": [0, 5, 10, 47],
                    "conversations": human_gpt("<video>\n" + NUM_QUESTION, "1")})
    records.append({"image": [f"stills/view{i}.png" for i in range(4)],
                    "conversations": human_gpt("<image>\n<image>\n<image>\n<image>\n" + MC_QUESTION, "A")})
    records.append({"video": "frames/clip0", "conversations": human_gpt("<video>\n" + NUM_QUESTION, "1")})
    file = root / "train.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    return file


def write_scanqa(file: Path, scenes: list[str], per_scene: int = 3) -> Path:
    """ScanQA_v1.0_train.json's layout: a JSON list of {question_id, question, answers, scene_id,
    object_ids, object_names}."""
    rows = []
    for scene in scenes:
        for q in range(per_scene):
            rows.append({
                "answers": ["brown wooden chair", "chair"] if q % 2 == 0 else ["on the left of the table"],
                "object_ids": [q + 1], "object_names": ["chair"],
                "question": f"What is placed next to the table {q}?" if q % 2 == 0 else f"Where is the chair {q}?",
                "question_id": f"train-{scene}-{q}", "scene_id": scene,
            })  # fmt: skip
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(rows, indent=1))
    return file


def write_sqa3d(folder: Path, scenes: list[str], split: str = "train", per_scene: int = 2) -> Path:
    """SQA3D's two files for `split`: v1_balanced_questions_<split>_scannetv2.json {"questions": [...]}
    and v1_balanced_sqa_annotations_<split>_scannetv2.json {"annotations": [...]}; returns the
    questions file."""
    questions, annotations = [], []
    for s, scene in enumerate(scenes):
        for q in range(per_scene):
            qid = 220600000 + 10 * s + q
            questions.append({
                "alternative_situation": ["I am sitting on the bed."], "question": f"What is in front of me {q}?",
                "question_id": qid, "scene_id": scene, "situation": "I am standing by the door facing the window.",
            })  # fmt: skip
            annotations.append({
                "answer_type": "other", "answers": [{"answer": "table", "answer_confidence": "yes", "answer_id": 1}],
                "position": {"x": 0.5, "y": 1.0, "z": 0.0}, "question_id": qid, "question_type": "what",
                "rotation": {"_w": 1.0, "_x": 0.0, "_y": 0.0, "_z": 0.0}, "scene_id": scene,
            })  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"v1_balanced_sqa_annotations_{split}_scannetv2.json").write_text(json.dumps({"annotations": annotations}))
    file = folder / f"v1_balanced_questions_{split}_scannetv2.json"
    file.write_text(json.dumps({"questions": questions, "info": {"version": "v1"}}))
    return file


def frames_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
