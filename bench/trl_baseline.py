"""TRL's GRPOTrainer as bench_grpo.py's baseline: plain Qwen2.5-VL `small` (our preset's weights in
transformers' own class), an image-only processor (transformers' video processor needs
torchvision), and the median step time of a GRPOTrainer run with the benchmark's G, lengths, beta
and optimizer. TRL is not a project dependency: bench_grpo.py's --trl-path puts it on the path.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import modeling
from pipelines import rewards
from pipelines.config import RunConfig


def image_processor_for_trl(tokenizer, max_pixels: int = 224 * 224):
    """A transformers Qwen2.5-VL processor for images only (its video processor needs torchvision)."""
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from modeling.tokenizer import CHAT_TEMPLATE

    class ImageOnlyProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor, tokenizer, chat_template):  # skips the video processor
            self.image_processor, self.tokenizer, self.chat_template = image_processor, tokenizer, chat_template
            self.video_processor = None
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)

    image = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels)
    return ImageOnlyProcessor(image, tokenizer, CHAT_TEMPLATE)


def plain_qwen_small(folder: Path) -> Path:
    """transformers' own Qwen2_5_VLForConditionalGeneration with the weights of our plain `small`
    preset, saved where TRL can load it (and its reference copy) by path."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ours, _ = modeling.load("small", seed=0, spatial_encoder="none")
    fields = ours.config.to_dict()
    for key in ("spatial_encoder", "spatial_config", "preset", "model_type", "architectures", "_name_or_path"):
        fields.pop(key, None)
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**fields))
    model.load_state_dict(ours.state_dict(), strict=True)
    model.save_pretrained(folder)
    return folder


def trl_step_times(args, cfg: RunConfig, images: list, recs: list[dict], max_pixels: int = 224 * 224,
                   gradient_checkpointing: bool = False) -> tuple[list[float], list[float]]:  # fmt: skip
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from pipelines import prompting

    model_dir = plain_qwen_small(Path(args.tmp) / "qwen_small")
    _, processor = modeling.load("small", seed=0, spatial_encoder="none")
    trl_processor = image_processor_for_trl(processor.tokenizer, max_pixels)
    rows = [{"prompt": [{"role": "system", "content": [{"type": "text", "text": prompting.SYSTEM_PROMPT}]},
                        {"role": "user", "content": [{"type": "image"},
                                                     {"type": "text", "text": prompting.user_text(r, think=True)}]}],
             "image": img, "ground_truth": r["ground_truth"]}
            for r, img in zip(recs, images, strict=True)]  # fmt: skip

    def reward(completions, ground_truth, **_):
        return [rewards.score(c[0]["content"], "numerical", gt)["total"] for c, gt in zip(completions, ground_truth, strict=True)]

    tok = processor.tokenizer
    suppress = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>", "<|video_pad|>", "<|image_pad|>")]
    config = GRPOConfig(
        output_dir=str(Path(args.tmp) / "trl"), per_device_train_batch_size=args.prompts * args.generations,
        num_generations=args.generations, steps_per_generation=1, max_completion_length=args.tokens,
        temperature=1.0, top_k=0, beta=cfg.grpo.beta, learning_rate=cfg.grpo.lr_llm, loss_type="grpo",
        max_steps=args.steps + 1, logging_steps=1, report_to=[], use_cpu=True, bf16=False, save_strategy="no",
        generation_kwargs={"suppress_tokens": suppress}, dataloader_num_workers=0, seed=0,
        weight_decay=cfg.grpo.weight_decay, max_grad_norm=cfg.grpo.max_grad_norm, lr_scheduler_type="constant",
        gradient_checkpointing=gradient_checkpointing,
    )  # fmt: skip
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.start)

    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=reward, args=config, processing_class=trl_processor,
                          train_dataset=Dataset.from_list(rows * (args.steps + 2)), callbacks=[StepTimer()])  # fmt: skip
    trainer.train()
    lengths = [r["completions/mean_length"] for r in trainer.state.log_history if "completions/mean_length" in r]
    return times[1:], lengths


def pil_image(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array)
