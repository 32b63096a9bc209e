"""Record -> prompt / target / frames (pipelines.prompting), without Ray or a model."""

from __future__ import annotations

import pytest

from pipelines import prompting

MC = {
    "id": "r1",
    "question": "Which is closest to the bed?",
    "problem_type": "multiple_choice",
    "options": ["A. chair", "B. desk"],
    "ground_truth": "B",
    "rationale": "The desk is 0.4 m away, the chair 1.2 m.",
    "video": "scene0000_00",
    "frame_indices": [3, 9, 14, 20, 31, 40],
    "uniform_indices": [0, 8, 16, 24, 32, 40],
}
NUM = {**MC, "problem_type": "numerical", "options": [], "ground_truth": "57", "question": "How long is it?"}


def test_user_text_lists_options_then_the_answer_format():
    assert prompting.user_text(MC, think=False) == (
        "Which is closest to the bed?\nOptions:\nA. chair\nB. desk\n" + prompting.ANSWER_FORMAT["multiple_choice"]
    )
    assert prompting.user_text(NUM, think=False) == "How long is it?\n" + prompting.ANSWER_FORMAT["numerical"]
    assert prompting.user_text(NUM, think=True).endswith(" " + prompting.THINK_FORMAT)


def test_messages_are_system_then_user_with_the_video_first():
    system, user = prompting.messages(MC, think=False)
    assert system == {"role": "system", "content": prompting.SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "video"}
    assert user["content"][1]["text"] == prompting.user_text(MC, think=False)


def test_target_plain_and_think():
    assert prompting.target_text(MC, think=False) == "B"
    assert prompting.target_text(NUM, think=True) == (
        "<think>The desk is 0.4 m away, the chair 1.2 m.</think><answer>57</answer>"
    )


def test_frame_ids_pick_the_column_and_thin_evenly():
    assert prompting.frame_ids(MC, sampling="space_aware", num_frames=16) == [3, 9, 14, 20, 31, 40]
    assert prompting.frame_ids(MC, sampling="uniform", num_frames=16) == [0, 8, 16, 24, 32, 40]
    assert prompting.frame_ids(MC, sampling="space_aware", num_frames=3) == [3, 20, 40]  # first, middle, last
    with pytest.raises(ValueError, match="sampling"):
        prompting.frame_ids(MC, sampling="random", num_frames=3)


def test_missing_frames_checks_files_without_decoding(tmp_path):
    scene = tmp_path / "scene0000_00"
    (scene / "color").mkdir(parents=True)
    for i in (0, 1):
        (scene / "color" / f"{i}.jpg").write_bytes(b"")
    assert prompting.missing_frames(scene, [0, 1, 2]) == [2]
    assert prompting.missing_frames(tmp_path / "nope", [0, 1]) == [0, 1]


def test_load_frames_names_the_record(tmp_path):
    with pytest.raises(prompting.RecordError, match="record r1"):
        prompting.load_frames(MC, tmp_path, sampling="space_aware", num_frames=4)
