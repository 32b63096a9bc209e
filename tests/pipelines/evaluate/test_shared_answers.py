"""eval.shared_prefix: a video's questions answered from one prefill of their common prompt part
give the greedy answers of generate over each full prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.evaluate.models import ModelSource
from pipelines.evaluate.predictor import Predictor
from pipelines.evaluate.shared_answers import common_prefix_length
from tests.modeling.helpers import random_video

SOURCE = ModelSource("tiny", None, "tiny", (), False, "spatial_mllm")


def questions(n: int) -> list[dict]:
    """VSI-Bench-like questions of different lengths, multiple choice and numerical."""
    out = []
    for i in range(n):
        choice = i % 2 == 0
        out.append({
            "index": i,
            "question": f"Question {i}: how far is the {('chair', 'table', 'lamp')[i % 3]} from the door?" + " Roughly." * (i % 4),
            "options": ["A. 1.0", "B. 2.5", "C. 4.0", "D. 6.5"] if choice else [],
            "problem_type": "multiple_choice" if choice else "numerical",
        })  # fmt: skip
    return out


def test_common_prefix_leaves_each_row_a_token():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # identical prompts: the last token stays own
    assert common_prefix_length([[7], [7, 8]]) == 0


@pytest.fixture(scope="module")
def predictors():
    """Two replicas of one tiny model whose language model is re-drawn at a larger scale: random
    tiny weights answer everything with the same token, which could not tell two paths apart."""
    shared = Predictor(SOURCE, "fp32", max_new_tokens=10, seed=0, batch_size=5, shared_prefix=True)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in shared.model.named_parameters():
            if "language_model" in name and p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    repeated = Predictor(SOURCE, "fp32", max_new_tokens=10, seed=0, batch_size=5, shared_prefix=False)
    repeated.model = shared.model
    return shared, repeated


def test_twelve_questions_of_a_video_get_the_answers_of_full_prompts(predictors):
    shared, repeated = predictors
    frames = np.stack(random_video(0, 8, 112, 140))
    qs = questions(12)
    shapes = []
    hook = shared.model.model.language_model.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append((*kw["inputs_embeds"].shape[:2], kw["cache"].get_seq_length())),
        with_kwargs=True,
    )  # (rows, new tokens, tokens already cached)
    try:
        answers = shared.answer(frames, qs, fps=2.0)
    finally:
        hook.remove()
    assert answers == repeated.answer(frames, qs, fps=2.0)
    assert len(set(answers)) >= 6  # the questions get different answers
    prefills = [s for s in shapes if s[2] == 0]
    assert len(prefills) == 1 and prefills[0][1] > 80  # one prefill, holding the video (80 tokens), for all 12
    extends = [s for s in shapes if s[2] and s[1] > 5]  # the question texts of each batch, packed after it
    assert len(extends) == 3 and all(s[2] == prefills[0][1] for s in extends)  # batches of 5, 5, 2 questions
    assert all(s[0] == 1 for s in shapes)  # one row: the prompt is never repeated


def test_prompts_that_differ_before_the_video_fall_back_to_full_prompts(predictors):
    """A question text in front of the video (a verbatim turn can do that): nothing shared holds
    the video, so the replica answers from full prompts, with the same answers."""
    shared, repeated = predictors
    frames = np.stack(random_video(1, 4))
    qs = questions(3)
    render = shared.prompts
    shared.prompts = repeated.prompts = lambda items: [t.replace("<|vision_start|>", f"{i} <|vision_start|>", 1)
                                                       for i, t in enumerate(render(items))]  # fmt: skip
    try:
        assert shared.answer(frames, qs) == repeated.answer(frames, qs)
    finally:
        del shared.prompts, repeated.prompts


def test_the_models_own_generation_config_applies_on_both_paths(predictors):
    """A release's generation_config.json (Qwen's sets repetition_penalty 1.05; min_new_tokens needs
    the eos tensor generate prepares) shapes greedy answers; the shared path applies the same logits
    processors as generate."""
    shared, repeated = predictors
    config = shared.model.generation_config
    saved = (config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens, config.bad_words_ids)
    config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens = 1.5, 2, 3
    config.bad_words_ids = [[t] for t in range(65, 91)]  # no capital letters (reads generate's eos tensor too)
    try:
        frames = np.stack(random_video(2, 4))
        qs = questions(4)
        penalised = shared.answer(frames, qs)
        assert penalised == repeated.answer(frames, qs)
    finally:
        config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens, config.bad_words_ids = saved
    assert penalised != shared.answer(frames, qs)  # the processors changed the answers
