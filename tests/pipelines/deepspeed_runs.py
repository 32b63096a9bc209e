"""DeepSpeed runs the tests compare with plain torch, each in its own process (DeepSpeed needs a
process group, and ZeRO-3 rewrites the modules it wraps).

    python -m tests.pipelines.deepspeed_runs updates     # one gloo rank: SFT and GRPO x ZeRO 1/2/3 x A 1/2
    python -m tests.pipelines.deepspeed_runs two_ranks   # two gloo ranks: ZeRO-3 vs ZeRO-2 GRPO steps,
                                                         # and ZeRO-3 with shared prefixes vs repeated prompts

Each prints one JSON line (the last line of stdout) that the tests read.

`updates`: one optimizer update through our code (pipelines.sft.train.train_step,
pipelines.grpo.step.policy_step) on a DeepSpeed engine, against the same update written out in
plain torch: AdamW over the same parameter groups, the loss as the loss type defines it,
gradients summed over the micro-batches, clipped, one step. It also reports how far the plain
update that keeps only the last micro-batch's gradient lands (what ZeRO-3 did when the forward
bypassed the engine), so a test can tell that the tolerance separates the two. GRPO runs its
update with shared prefixes (the default) and again with repeated prompts (grpo.shared_prefix
false): `vs_repeated` is how far apart the two land.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from types import SimpleNamespace

import numpy as np
import torch

LR, EPS, CLIP, WD = 1e-3, 1e-6, 1.0, 0.1
G = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_group(rank: int, world: int, port: int) -> None:
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    from pipelines.train import deepspeed_setup

    deepspeed_setup.prepare_env(use_gpu=False)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)


def engine_for(model, zero: int, *, micro_batch: int, accumulation: int, world: int = 1):
    import modeling
    from pipelines.config.train import TrainConfig
    from pipelines.train import deepspeed_setup

    groups = modeling.trainable_parameter_groups(model, lr_llm=LR, lr_connector=LR, weight_decay=WD)
    config = deepspeed_setup.deepspeed_config(
        TrainConfig(zero_stage=zero, num_workers=world), dtype="fp32", micro_batch_size=micro_batch,
        accumulation=accumulation, max_grad_norm=CLIP,
    )  # fmt: skip
    # Partition every parameter, as a 3B model's are: by default ZeRO-3 keeps parameters under
    # 1e5 elements whole on every rank (all of the tiny model's), and never gathers them.
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    engine = deepspeed_setup.initialize(model, groups, config, total_steps=10, warmup_steps=0,
                                        schedule="constant", eps=EPS)  # fmt: skip
    return engine, [g["name"] for g in groups]


def torch_optimizer(model):
    import modeling

    groups = modeling.trainable_parameter_groups(model, lr_llm=LR, lr_connector=LR, weight_decay=WD)
    return torch.optim.AdamW(groups, eps=EPS, foreach=False)


def trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def engine_weights(engine) -> dict[str, torch.Tensor]:
    from pipelines.train import checkpointing

    state = checkpointing.consolidated_state_dict(engine)
    if state is None:  # not rank 0
        return None
    names = {n for n, p in engine.module.named_parameters() if p.requires_grad}
    return {n: v for n, v in state.items() if n in names}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())[:5]
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def plain_update(model, micro_losses) -> dict[str, torch.Tensor]:
    """AdamW step on the sum of the micro-batch losses' gradients, clipped like DeepSpeed."""
    optimizer = torch_optimizer(model)
    for loss_fn in micro_losses:
        loss_fn(model).backward()
    params = [p for p in model.parameters() if p.requires_grad]
    torch.nn.utils.clip_grad_norm_(params, CLIP)
    optimizer.step()
    return trainable(model)


# --- SFT -----------------------------------------------------------------------------------------


def sft_micro_batches(processor, accumulation: int) -> list[dict]:
    from pipelines.sft.samples import collate, encode_sample
    from tests.modeling.helpers import random_video

    micro = []
    for m in range(accumulation):
        samples = []
        for j in range(2):  # two samples of different lengths per micro-batch
            i = 2 * m + j
            record = {"id": f"r{i}", "question": "How many chairs?" + " Count them." * i, "options": [],
                      "problem_type": "numerical", "ground_truth": str(10 ** (i + 1)), "rationale": "look"}  # fmt: skip
            arrays, _ = encode_sample(processor, record, random_video(i, 4), think=False, max_length=4096)
            samples.append(arrays)
        micro.append(collate(samples, processor))
    return micro


def sft_reference_loss(batch: dict, total_labels: int):
    """Cross-entropy summed over every answer token, / the answer tokens of the whole step."""

    def loss(model):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs, use_cache=False).logits[:, :-1].float()  # [B, L-1, V]
        targets = batch["labels"][:, 1:]  # [B, L-1]
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
        ) / total_labels

    return loss


def token_losses(model, batch: dict) -> torch.Tensor:
    """Per-token cross-entropy of the answer tokens `[n]` (plain forward, no reduction)."""
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           ignore_index=-100, reduction="none")  # fmt: skip
    return ce[targets.reshape(-1) != -100]


def sft_update(zero: int, accumulation: int, normalization: str = "tokens") -> dict:
    """One SFT update under `normalization` (sft.loss_normalization) against plain torch, and the
    loss train_step reports against the same loss written out from per-token cross-entropies:
    tokens = sum over every answer token / their count; samples = the mean over micro-batches of
    each micro-batch's mean over its tokens."""
    import modeling
    from pipelines.sft.train import train_step

    model, processor = modeling.load("tiny", seed=0)
    micro = sft_micro_batches(processor, accumulation)
    total = sum(int((b["labels"] != -100).sum()) for b in micro)
    if normalization == "tokens":
        losses = [sft_reference_loss(b, total) for b in micro]
    else:  # each micro-batch's own token mean, / the accumulation
        losses = [sft_reference_loss(b, int((b["labels"] != -100).sum()) * accumulation) for b in micro]
    reference = plain_update(modeling.load("tiny", seed=0)[0], losses)
    last_only = plain_update(modeling.load("tiny", seed=0)[0], losses[-1:])
    per_token = [token_losses(modeling.load("tiny", seed=0)[0], b) for b in micro]
    if normalization == "tokens":
        hand = float(torch.cat(per_token).sum() / total)
    else:
        hand = float(sum(t.mean() for t in per_token) / accumulation)
    start = {k: v for k, v in trainable(model).items() if k in reference}
    engine, names = engine_for(model, zero, micro_batch=2, accumulation=accumulation)
    cfg = SimpleNamespace(sft=SimpleNamespace(loss_normalization=normalization))
    job = SimpleNamespace(engine=engine, plan=SimpleNamespace(world_size=1), trainer_state={"truncated": 0},
                          group_names=names, cfg=cfg)  # fmt: skip
    stats = train_step(job, [{**b, "truncated": 0} for b in micro])
    ours = engine_weights(engine)
    return {"ours": max_diff(ours, reference), "last_only": max_diff(last_only, reference),
            "moved": max_diff(start, reference), "loss": stats["loss"], "loss_hand": hand,
            "answer_tokens": [len(t) for t in per_token]}  # fmt: skip


# --- GRPO ----------------------------------------------------------------------------------------


def grpo_setup(processor, model, max_new_tokens: int = 8, seed: int = 0):
    from pipelines import rl_math
    from pipelines.grpo.rollout import Sampling, generate
    from tests.pipelines.grpo.conftest import prompt_batch

    tok = processor.tokenizer
    batch = prompt_batch(processor, 2)
    sampling = Sampling(G, max_new_tokens, 1.0, tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id)
    torch.manual_seed(seed)
    rollouts = generate(model, batch, sampling)
    advantages = rl_math.group_advantages(torch.tensor([0.0, 1.0, 2.0, 0.5, 2.0, 0.0, 1.0, 1.5]), G)
    return batch, rollouts, advantages


def grpo_reference_loss(batch, rollouts, advantages, rows: range, accumulation: int):
    """TRL's grpo loss with ratio 1 (num_iterations 1, beta 0): -A * log p(token), averaged over
    each completion's tokens, then over the micro-batch's completions, / the accumulation; each
    rollout's log-probs from its own full forward on its prompt's pixels."""
    x = batch.inputs
    counts = x["video_grid_thw"].prod(-1).tolist()
    pixels = {k: torch.split(x[k], counts) for k in ("pixel_values_videos", "spatial_pixel_values")}

    def loss(model):
        total = 0.0
        for i in rows:
            p = i // G
            ids = torch.cat([rollouts.prompt_ids[i], rollouts.completion_ids[i]])[None]
            attn = torch.cat([rollouts.prompt_mask[i], rollouts.completion_mask[i]])[None]
            logits = model(input_ids=ids, attention_mask=attn, video_grid_thw=x["video_grid_thw"][p : p + 1],
                           pixel_values_videos=pixels["pixel_values_videos"][p],
                           spatial_pixel_values=pixels["spatial_pixel_values"][p], use_cache=False).logits  # fmt: skip
            T = rollouts.completion_ids.shape[1]
            logp = logits[0, -T - 1 : -1].float().log_softmax(-1)  # [T, V]
            token = logp.gather(-1, rollouts.completion_ids[i][:, None]).squeeze(-1)  # [T]
            mask = rollouts.completion_mask[i].float()
            total = total + (-advantages[i] * token * mask).sum() / mask.sum()
        return total / len(rows) / accumulation

    return loss


def grpo_update(zero: int, accumulation: int) -> dict:
    import modeling

    model, processor = modeling.load("tiny", seed=0)
    batch, rollouts, adv = grpo_setup(processor, model)
    mb = 2 // accumulation
    losses = [grpo_reference_loss(batch, rollouts, adv, range(p * G, (p + mb) * G), accumulation)
              for p in range(0, 2, mb)]  # fmt: skip
    reference = plain_update(modeling.load("tiny", seed=0)[0], losses)
    last_only = plain_update(modeling.load("tiny", seed=0)[0], losses[-1:])
    start = {k: v for k, v in trainable(model).items() if k in reference}
    ours = grpo_engine_update(model, zero, mb, accumulation, batch, rollouts, adv, shared_prefix=True)
    repeated = grpo_engine_update(modeling.load("tiny", seed=0)[0], zero, mb, accumulation, batch, rollouts, adv,
                                  shared_prefix=False)  # fmt: skip
    return {"ours": max_diff(ours, reference), "last_only": max_diff(last_only, reference),
            "moved": max_diff(start, reference), "repeated": max_diff(repeated, reference),
            "vs_repeated": max_diff(ours, repeated)}  # fmt: skip


def grpo_engine_update(model, zero, mb, accumulation, batch, rollouts, adv, *, shared_prefix: bool) -> dict:
    """policy_step on a DeepSpeed engine of `model`; the trained weights."""
    from pipelines.config.grpo import GRPOConfig
    from pipelines.grpo.step import policy_step

    grpo = GRPOConfig(num_generations=G, max_completion_length=8, prompts_per_step=2, micro_batch_prompts=mb,
                      beta=0.0, loss_type="grpo", lr_llm=LR, lr_connector=LR, shared_prefix=shared_prefix)  # fmt: skip
    engine, _ = engine_for(model, zero, micro_batch=mb * G, accumulation=accumulation)
    policy_step(engine, batch, rollouts, adv, None, None, grpo)
    return engine_weights(engine)


def updates() -> dict:
    torch.manual_seed(0)
    init_group(0, 1, free_port())
    out = {}
    for stage, fn in (("sft", sft_update), ("grpo", grpo_update)):
        for zero in (1, 2, 3):
            for accumulation in (1, 2):
                out[f"{stage}-zero{zero}-acc{accumulation}"] = fn(zero, accumulation)
    out["sft-samples-zero2-acc2"] = sft_update(2, 2, normalization="samples")
    return out


# --- two ranks -----------------------------------------------------------------------------------


def two_rank_worker(rank: int, port: int, queue) -> None:
    try:
        queue.put((rank, two_rank_steps(rank, port)))
    except BaseException as e:  # the parent fails at once instead of waiting for a result
        import traceback

        queue.put((rank, {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"}))
        raise


def two_rank_steps(rank: int, port: int) -> dict:
    """One rank: a GRPO step (generate, update with accumulation 2 of 2 prompts each) under ZeRO-3
    and under ZeRO-2. Rank 0 samples 3 new tokens per completion, rank 1 12 (eos suppressed, so
    lengths are exact); rank 0's 4 videos share one frame shape, rank 1's first micro-batch mixes
    two shapes (grouping videos by shape would make 1 encoder call there on rank 0 and 2 on rank 1)."""
    import modeling
    from pipelines.config.grpo import GRPOConfig
    from pipelines.grpo.advantages import step_advantages
    from pipelines.grpo.rollout import MEDIA_TOKENS, PromptBatch, Sampling, generate
    from pipelines.grpo.step import policy_step
    from pipelines.train import deepspeed_setup
    from tests.modeling.helpers import random_video, video_prompt

    torch.set_num_threads(1)
    init_group(rank, 2, port)
    result = {}
    for name, zero, shared in (("zero3", 3, True), ("zero2", 2, True), ("zero3_repeated", 3, False)):
        model, processor = modeling.load("tiny", seed=0)
        sizes = [(112, 112)] * 4 if rank == 0 else [(112, 112), (84, 168), (84, 168), (84, 168)]
        videos = [random_video(10 * rank + i, 4, h, w) for i, (h, w) in enumerate(sizes)]
        questions = [f"Rank {rank} question {i}?" + " More." * (rank + i) for i in range(4)]
        inputs = processor(text=[video_prompt(processor, q) for q in questions], videos=videos, padding_side="left")
        batch = PromptBatch(dict(inputs), [{"id": q} for q in questions])
        tok = processor.tokenizer
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        suppress = (*(tok.convert_tokens_to_ids(t) for t in MEDIA_TOKENS), eos)  # eos too: exact lengths
        sampling = Sampling(G, 3 if rank == 0 else 12, 1.0, eos, tok.pad_token_id, suppress_token_ids=suppress)
        grpo = GRPOConfig(num_generations=G, max_completion_length=12, prompts_per_step=4, micro_batch_prompts=2,
                          beta=0.0, loss_type="grpo", lr_llm=LR, lr_connector=LR, scale_rewards="batch",
                          shared_prefix=shared)  # fmt: skip
        engine, _ = engine_for(model, zero, micro_batch=2 * G, accumulation=2, world=2)
        torch.manual_seed(rank)
        with deepspeed_setup.unwrapped_for_generation(engine) as module:
            rollouts = generate(module, batch, sampling, shared_prefix=shared)
        rewards = torch.arange(4 * G, dtype=torch.float32) * (rank + 1)  # [16], different spread per rank
        valid = torch.ones(4 * G, dtype=torch.bool)
        advantages, keep = step_advantages(rewards, valid, grpo, world=2, device=engine.device)
        policy_step(engine, batch, rollouts, advantages, None, None, grpo, suppress, keep=keep, num_processes=2)
        weights = engine_weights(engine)  # rank 0 only
        result[name] = {
            "lengths": rollouts.lengths.tolist(),
            "completions": rollouts.completion_ids.tolist(),
            "advantages": advantages.tolist(),
            "weights": None if weights is None else {k: v.numpy().tolist() for k, v in weights.items()},
        }
    return result


def two_ranks() -> dict:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=two_rank_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = {}
    for _ in procs:
        rank, res = queue.get(timeout=600)
        if "error" in res:
            errors = {rank: res["error"]}
            try:  # the other rank's error is usually the cause (this one lost its peer)
                other, more = queue.get(timeout=10)
                errors[other] = more.get("error", "finished")
            except Exception:
                pass
            for p in procs:
                p.kill()
            raise RuntimeError("\n".join(f"rank {r} failed: {e}" for r, e in sorted(errors.items())))
        results[rank] = res
    for p in procs:
        p.join(timeout=60)
    out = {"ranks": {}}
    for rank, res in sorted(results.items()):
        out["ranks"][rank] = {z: {k: v for k, v in r.items() if k != "weights"} for z, r in res.items()}
    w = {name: results[0][name]["weights"] for name in ("zero3", "zero2", "zero3_repeated")}
    diff = lambda a, b: max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)  # noqa: E731
    out["zero3_vs_zero2"] = diff(w["zero3"], w["zero2"])
    out["shared_vs_repeated"] = diff(w["zero3"], w["zero3_repeated"])
    return out


if __name__ == "__main__":
    what = sys.argv[1]
    result = {"updates": updates, "two_ranks": two_ranks}[what]()
    print(json.dumps(result))
