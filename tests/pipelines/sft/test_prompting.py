"""Record -> prompt / target / frames (pipelines.prompting), without Ray or a model."""

from __future__ import annotations

import pytest

from pipelines import media, prompting

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


# One question of every VSI-Bench question_type, in the benchmark's wording (reference §4).
EVERY_TYPE = {
    "object_counting": ("How many chair(s) are in this room?", []),
    "object_abs_distance": ("Measuring from the closest point of each object, what is the distance between the "
                            "sofa and the tv (in meters)?", []),
    "object_size_estimation": ("What is the length of the longest dimension (length, width, or height) of the "
                               "bed, measured in centimeters?", []),
    "room_size_estimation": ("What is the size of this room (in square meters)? \nIf multiple rooms are shown, "
                             "estimate the size of the combined space.", []),
    "object_rel_distance": ("Measuring from the closest point of each object, which of these objects (lamp, "
                            "sofa, tv, bed) is the closest to the chair?", ["A. lamp", "B. sofa", "C. tv", "D. bed"]),
    "object_rel_direction_easy": ("If I am standing by the sofa and facing the tv, is the lamp to the left or "
                                  "the right of the tv?", ["A. left", "B. right"]),
    "object_rel_direction_medium": ("If I am standing by the sofa and facing the tv, is the lamp to my left, "
                                    "right, or back?\nAn object is to my back if I would have to turn at least "
                                    "135 degrees in order to face it.", ["A. back", "B. left", "C. right"]),
    "object_rel_direction_hard": ("If I am standing by the sofa and facing the tv, is the lamp to my front-left, "
                                  "front-right, back-left, or back-right?\nThe directions refer to the quadrants "
                                  "of a Cartesian plane (if I am standing at the origin and facing along the "
                                  "positive y-axis).", ["A. back-left", "B. front-left", "C. back-right",
                                                        "D. front-right"]),
    "route_planning": ("You are a robot beginning at the door and facing the bed. You want to navigate to the tv. "
                       "You will perform the following actions (Note: for each [please fill in], choose either "
                       "'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the bed 2. [please fill "
                       "in] 3. Go forward until the tv. You have reached the final destination.",
                       ["A. Turn Left", "B. Turn Right", "C. Turn Back"]),
    "obj_appearance_order": ("What will be the first-time appearance order of the following categories in the "
                             "video: chair, tv, bed, lamp?", ["A. chair, tv, bed, lamp", "B. tv, chair, lamp, bed",
                                                             "C. bed, lamp, chair, tv", "D. lamp, bed, tv, chair"]),
}  # fmt: skip


def vsi_bench_harness(question: str, options: list[str]) -> str:
    """VSI-Bench's lmms-eval doc_to_text, written from its published form: pre-prompt, question,
    then "Options:" and the options joined by line breaks for multiple choice, then the post-prompt."""
    pre = "These are frames of a video."
    if not options:
        return pre + "\n" + question + "\n" + "Please answer the question using a single word or phrase."
    post = "Answer with the option's letter from the given choices directly."
    return "\n".join([pre, question, "Options:\n" + "\n".join(options), post])


@pytest.mark.parametrize("question_type", sorted(EVERY_TYPE))
def test_each_style_asks_every_question_type_in_its_exact_words(question_type):
    question, options = EVERY_TYPE[question_type]
    record = {"question": question, "options": options,
              "problem_type": "multiple_choice" if options else "numerical"}  # fmt: skip
    harness = vsi_bench_harness(question, options)
    assert prompting.user_text(record, style="vsi_bench") == harness
    # The authors' eval script: the same strings without the harness's first line.
    assert prompting.user_text(record, style="spatial_mllm") == harness.removeprefix("These are frames of a video.\n")
    assert prompting.user_text(record) == prompting.user_text(record, style="spatial_mllm")  # the default
    think = prompting.user_text(record, style="think")
    assert think.startswith(question + "\n") and think.count("<answer> </answer>") == 1
    assert ("Options:\n" + "\n".join(options) + "\n" in think) == bool(options)
    assert prompting.user_text(record, think=True) == think  # think_format=true asks the same way


def test_the_styles_spelled_out():
    assert prompting.user_text(NUM, style="vsi_bench") == (
        "These are frames of a video.\nHow long is it?\nPlease answer the question using a single word or phrase."
    )
    assert prompting.user_text(MC, style="spatial_mllm") == (
        "Which is closest to the bed?\nOptions:\nA. chair\nB. desk\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert prompting.user_text(MC, style="think") == (
        "Which is closest to the bed?\nOptions:\nA. chair\nB. desk\nAnswer with the option's letter from the "
        "given choices. Think about the question first, then give the answer: output the thinking process in "
        "<think> </think> and the final answer in <answer> </answer> tags."
    )
    assert prompting.user_text(NUM, style="think") == (
        "How long is it?\nAnswer with a single number. Think about the question first, then give the answer: "
        "output the thinking process in <think> </think> and the final answer in <answer> </answer> tags."
    )
    assert prompting.user_text(NUM, style="vsi_bench", think=True).startswith("These are frames of a video.\n")
    with pytest.raises(ValueError, match="prompt style"):
        prompting.user_text(MC, style="lmms")


def test_sft_and_grpo_ask_in_their_configured_style():
    """sft.prompt_style / grpo.prompt_style reach the tokens the model is trained on."""
    import modeling
    from pipelines.grpo.prompts import prompt_batch
    from pipelines.sft.samples import encode_sample
    from tests.modeling.helpers import random_video

    processor = modeling.load_processor("tiny")
    frames = random_video(0, 2, 56, 56)
    tok = processor.tokenizer
    for style in ("spatial_mllm", "vsi_bench"):
        arrays, _ = encode_sample(processor, MC, frames, think=False, max_length=4096, style=style)
        sample = tok.decode(arrays["input_ids"])
        batch = prompt_batch(processor, [MC], [frames], think=False, style=style)
        prompt = tok.decode(batch.inputs["input_ids"][0])
        for text in (sample, prompt):
            assert prompting.user_text(MC, style=style) + "<|im_end|>" in text
            assert ("These are frames of a video." in text) == (style == "vsi_bench")


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
    assert media.missing_frames(scene, [0, 1, 2]) == [2]
    assert media.missing_frames(tmp_path / "nope", [0, 1]) == [0, 1]


def test_record_clip_names_the_record_and_the_file(tmp_path):
    record = {**MC, "media_kind": "scan", "media_paths": [str(tmp_path / "scene0000_00")]}
    with pytest.raises(prompting.RecordError, match=f"record r1: {tmp_path / 'scene0000_00'}"):
        prompting.record_clip(record, sampling="space_aware", rule=media.FrameRule(4))
