"""jobs.plan: FLOP counts of the tiny preset against a hand computation, the memory formula, and
the 3B report as a user runs it (no Ray, no weights)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import modeling
from pipelines.config import build_config
from pipelines.plan import costs

REPO = Path(__file__).resolve().parents[2]
TINY = costs.dims_from_config(modeling.build_config("tiny"))
VIDEO = costs.Video(frames=4, grid_h=8, grid_w=8)  # 4 frames of 112x112: 2 pairs x 8x8 patches


def test_tiny_dims():
    assert (TINY.layers, TINY.hidden, TINY.intermediate, TINY.heads, TINY.kv_heads, TINY.vocab) == (2, 64, 256, 4, 2, 264)
    assert (TINY.vision_depth, TINY.vision_hidden, TINY.vision_intermediate, TINY.vision_full_blocks) == (2, 64, 128, 1)
    assert (TINY.vggt_depth, TINY.vggt_dim, TINY.vggt_mlp, TINY.vggt_patch_depth, TINY.vggt_registers) == (2, 64, 256, 1, 4)
    # q 64x64, k and v 64x(2 heads x 16), o 64x64, gate/up/down 3 x 64x256
    assert TINY.layer_weights == 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 256 == 61_440
    assert VIDEO.tokens(TINY) == 2 * 4 * 4 == 32


def test_llm_flops_by_hand():
    # 10 tokens, causal (55 pairs), logits at all 10: 2 layers x (2 x 10 x 61,440 + 4 x 64 x 55) + 2 x 10 x 64 x 264
    assert costs.llm_forward(TINY, 10, 55, 10) == 2 * (1_228_800 + 14_080) + 337_920 == 2_823_680


def test_encoder_flops_by_hand():
    f = costs.encoders(TINY, VIDEO)
    patches = 2 * 64
    embed = 2 * patches * 1176 * 64  # conv over 3 x 2 x 14 x 14 values per patch
    blocks = 2 * 2 * patches * (4 * 64 * 64 + 3 * 64 * 128)  # 2 blocks: attention projections + gated MLP
    attention = 4 * 64 * patches * (64 + 64)  # window block: 8x8 window; full block: the pair's 64 patches
    assert f["vision"] == embed + blocks + attention == 19_267_584 + 20_971_520 + 4_194_304
    assert f["merger"] == 2 * 32 * (256 * 256 + 256 * 64) == 5_242_880
    # VGGT tiny: 4 frames of 64 patches; DINOv2 and aggregator tokens 1 + 4 + 64 = 69 per frame
    block = 4 * 64 * 64 + 2 * 64 * 256
    embed = 4 * (2 * 64 * 3 * 14 * 14 * 64 + 1 * (2 * 69 * block + 4 * 64 * 69 * 69))
    frame = 2 * 4 * (2 * 69 * block + 4 * 64 * 69 * 69)
    glob = 2 * (2 * 276 * block + 4 * 64 * 276 * 276)
    assert f["spatial_encoder"] == embed + frame + glob
    assert f["connector"] == 2 * 32 * (1024 * 1024 + 1024 * 64)  # v1.1: 8 x 128 channels in


def test_sft_and_grpo_sums_by_hand():
    sft = costs.sft_sample(TINY, VIDEO, text_tokens=20, answer_tokens=3, checkpointing=True)
    L = 32 + 20 + 3
    assert sft["llm"] == 4 * costs.llm_forward(TINY, L, L * (L + 1) // 2, L)  # forward, backward 2x, recompute
    r = costs.Rollouts(prompt=40, generations=4, completion=5)
    # one pass over [40 | 4 x 5]: 40 prompt tokens causal, each completion sees the prompt and itself
    assert r.pairs(shared=True) == 820 + 4 * (5 * 40 + 15) and r.tokens(shared=True) == 60
    assert r.pairs(shared=False) == 4 * 45 * 46 // 2 and r.tokens(shared=False) == 180
    shared = costs.grpo_prompt(TINY, VIDEO, r, shared=True, reference=True, old_pass=False, iterations=1,
                               checkpointing=False)  # fmt: skip
    repeated = costs.grpo_prompt(TINY, VIDEO, r, shared=False, reference=True, old_pass=False, iterations=1,
                                 checkpointing=False)  # fmt: skip
    enc = costs.encoders(TINY, VIDEO)
    frozen, fuse = enc["vision"] + enc["spatial_encoder"], enc["merger"] + enc["connector"]
    # reference pass: shared fuses the step's frozen encoder outputs; repeated re-encodes
    assert shared["logprobs"] == fuse + costs.llm_forward(TINY, 60, 1680, 20)
    assert repeated["logprobs"] == frozen + fuse + costs.llm_forward(TINY, 180, 4 * 45 * 46 // 2, 20)
    # generation: the same encoders and decoding, G - 1 prefills fewer
    assert repeated["generate"] - shared["generate"] == 3 * costs.llm_forward(TINY, 40, 820, 1)
    # the update: forward + backward (3x) of each pass; merger and connector trained (3x) in both
    passes = costs.llm_forward(TINY, 180, 4 * 45 * 46 // 2, 20) - costs.llm_forward(TINY, 60, 1680, 20)
    assert repeated["update"] - shared["update"] == 3 * passes + frozen


def test_memory_by_hand():
    m = costs.memory(TINY, params=1000, trainable=600, dtype_bytes=2, zero_stage=3, world=4, sequence=10,
                     logits=5, kv_tokens=7, reference=True)  # fmt: skip
    assert (m.parameters, m.gradients, m.optimizer, m.reference) == (500, 300, 600 * 12 // 4, 2000)
    assert m.activations == 2 * 10 * 64 * 2 + 34 * 10 * 64 + 5 * 264 * 2
    assert m.activations_no_checkpointing == 2 * 34 * 10 * 64 + 5 * 264 * 2
    assert m.kv_cache == 2 * 2 * 2 * 16 * 2 * 7
    assert m.gathered == 2000 - 500  # ZeRO-3 generation holds every weight, not the shard
    assert m.total(True) == 500 + 300 + 1800 + 2000 + max(m.activations, m.gathered + m.kv_cache)
    zero1 = costs.memory(TINY, params=1000, trainable=600, dtype_bytes=2, zero_stage=1, world=4, sequence=10,
                         logits=5, kv_tokens=7, reference=False)  # fmt: skip
    assert (zero1.parameters, zero1.gradients, zero1.optimizer, zero1.reference) == (2000, 1200, 1800, 0)


def test_3b_plan_runs_without_ray_or_weights():
    """The recipe's config as a user runs it: every section printed, shared prefixes cheaper."""
    code = ("import sys; from pipelines.config import load_config; from pipelines.plan.run import report, plan; "
            "cfg = load_config(['--config', 'jobs/configs/spatial_mllm_3b.yaml', 'train.gpu_memory_gb=40'], 'plan'); "
            "print(report(cfg)); r = plan(cfg)['grpo']['per_step']; "
            "print('RATIO', sum(r[True][k] for k in ('generate', 'logprobs', 'update')) / "
            "sum(r[False][k] for k in ('generate', 'logprobs', 'update'))); "
            "print('RAY', 'ray' in sys.modules)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "4.966 B parameters" in out and "3,128 video tokens" in out and "GPU-hours at 35% MFU of 312 TFLOP/s" in out
    assert "fits train.gpu_memory_gb = 40" in out and "KV cache" in out and "activations" in out
    ratio = float(out.split("RATIO ")[1].split()[0])
    assert 0.2 < ratio < 0.6
    assert "RAY False" in out


def test_tiny_plan_measures_text_on_the_dataset(tmp_path):
    """With a built split and the byte tokenizer at hand, text lengths are measured on the records."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "run" / "dataset" / "train"
    folder.mkdir(parents=True)
    rows = [{"id": f"r{i}", "question": "How many chairs are in this room?" + " Look." * i, "options": [],
             "problem_type": "numerical", "ground_truth": "12", "rationale": "", "question_type": "object_counting"}
            for i in range(4)]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
    from pipelines.plan.run import plan

    cfg = build_config(None, [f"run_dir={tmp_path}/run", "sft.max_steps=-1"])
    text = plan(cfg)["text"]
    assert "measured on 4 records" in text.source
    assert text.answer == 3  # "12" and <|im_end|> in the byte tokenizer
    assert text.grpo_prompt > text.sft_prompt > 60
    assert plan(cfg)["sft"]["samples"] == 4
