"""FLOPs and memory of SFT samples and GRPO steps, from the model's dimensions alone (pure arithmetic).

Conventions (what the tests pin on the tiny preset):
- A matrix multiply of a [n, a] input by a [a, b] weight is 2 n a b FLOPs. Norms, activations,
  softmax, rotary and biases are left out (a few percent at these widths).
- Attention of one query over k keys costs 4 x width x k FLOPs (QK^T and AV). A causal run of L
  tokens has L (L + 1) / 2 query-key pairs; a shared-prefix row (prompt P, then G completions of
  T) has P (P + 1) / 2 + G (T P + T (T + 1) / 2).
- Training a module costs 3x its forward (backward: gradients of activations and of weights);
  gradient checkpointing adds one more forward of the language model. A frozen module that only
  passes gradients on costs 2x (forward + activation gradients); a frozen module below everything
  trainable costs its forward alone.
- Parts: the LLM (decoder layers + the LM head where logits are taken), Qwen's vision tower
  (patch embedding, blocks with 8x8-patch windows except the full-attention ones, which attend
  within a frame pair), Qwen's merger, VGGT's aggregator (DINOv2 patch embedding per frame, then
  frame and global attention blocks) and the connector.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dims:
    """The sizes the costs depend on (`dims_from_config`)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_full_blocks: int
    vision_window: int  # patches per side of an attention window
    vision_out: int
    vggt_depth: int  # 0 = no spatial encoder
    vggt_dim: int
    vggt_mlp: int
    vggt_patch_depth: int
    vggt_registers: int
    connector: str  # "mlp_add" | "embedding_merger" | "" (none)
    patch: int = 14
    merge: int = 2
    temporal: int = 2

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def layer_weights(self) -> int:
        """Weights one decoder layer multiplies each token by: q, k, v, o and the gated MLP."""
        kv = 2 * self.kv_heads * self.head_dim
        return self.hidden * (self.hidden + kv) + self.hidden * self.hidden + 3 * self.hidden * self.intermediate


def dims_from_config(config) -> Dims:
    """Dims of a SpatialMLLMConfig (or the plain-Qwen variant)."""
    text, vision = config.text_config, config.vision_config
    vggt = config.vggt if config.spatial_encoder == "vggt" else None
    return Dims(
        layers=text.num_hidden_layers, hidden=text.hidden_size, intermediate=text.intermediate_size,
        heads=text.num_attention_heads, kv_heads=text.num_key_value_heads, vocab=text.vocab_size,
        vision_depth=vision.depth, vision_hidden=vision.hidden_size, vision_intermediate=vision.intermediate_size,
        vision_full_blocks=len(vision.fullatt_block_indexes),
        vision_window=vision.window_size // vision.patch_size, vision_out=vision.out_hidden_size,
        vggt_depth=vggt.depth if vggt else 0, vggt_dim=vggt.embed_dim if vggt else 0,
        vggt_mlp=int(vggt.embed_dim * vggt.mlp_ratio) if vggt else 0,
        vggt_patch_depth=vggt.patch_embed_depth if vggt else 0, vggt_registers=vggt.num_register_tokens if vggt else 0,
        connector=config.connector_type if vggt else "", patch=vision.patch_size, merge=vision.spatial_merge_size,
        temporal=vision.temporal_patch_size,
    )  # fmt: skip


@dataclass(frozen=True)
class Video:
    """One video as the model sees it: `frames` frames of `grid_h` x `grid_w` patches."""

    frames: int
    grid_h: int
    grid_w: int

    def pairs(self, d: Dims) -> int:
        return -(-self.frames // d.temporal)  # an odd count is padded with the last frame

    def tokens(self, d: Dims) -> int:
        """Merged (LLM) video tokens."""
        return self.pairs(d) * self.grid_h * self.grid_w // (d.merge * d.merge)


def causal_pairs(n: int) -> int:
    return n * (n + 1) // 2


def llm_forward(d: Dims, tokens: int, pairs: int, logits: int) -> int:
    """Decoder layers over `tokens` tokens with `pairs` query-key pairs, and the LM head at `logits` positions."""
    return d.layers * (2 * tokens * d.layer_weights + 4 * d.hidden * pairs) + 2 * logits * d.hidden * d.vocab


def vision_forward(d: Dims, video: Video) -> dict[str, int]:
    """Qwen's vision tower (frozen) and its merger (trained) on one video, forward FLOPs."""
    pairs, per_pair = video.pairs(d), video.grid_h * video.grid_w
    patches = pairs * per_pair
    w = d.vision_hidden
    embed = 2 * patches * (3 * d.temporal * d.patch * d.patch) * w
    linear = 2 * patches * (4 * w * w + 3 * w * d.vision_intermediate)
    window = d.vision_window * d.vision_window
    window_blocks = d.vision_depth - d.vision_full_blocks
    attention = 4 * w * patches * (window_blocks * min(window, per_pair) + d.vision_full_blocks * per_pair)
    merged = patches // (d.merge * d.merge)
    m = w * d.merge * d.merge
    merger = 2 * merged * (m * m + m * d.vision_out)
    return {"vision": embed + d.vision_depth * linear + attention, "merger": merger}


def vggt_forward(d: Dims, video: Video) -> int:
    """VGGT's aggregator (frozen) on one video's frames (padded to whole pairs), forward FLOPs."""
    if not d.vggt_depth:
        return 0
    frames, patches = video.pairs(d) * d.temporal, video.grid_h * video.grid_w
    D, mlp = d.vggt_dim, d.vggt_mlp
    block = 4 * D * D + 2 * D * mlp  # qkv + proj, fc1 + fc2, per token
    dino = 1 + d.vggt_registers + patches  # DINOv2 tokens per frame (cls, registers, patches)
    tokens = 1 + d.vggt_registers + patches  # aggregator tokens per frame (camera, registers, patches)
    embed = frames * (2 * patches * 3 * d.patch * d.patch * D + d.vggt_patch_depth * (2 * dino * block + 4 * D * dino * dino))
    frame_blocks = d.vggt_depth * frames * (2 * tokens * block + 4 * D * tokens * tokens)
    everything = frames * tokens
    global_blocks = d.vggt_depth * (2 * everything * block + 4 * D * everything * everything)
    return embed + frame_blocks + global_blocks


def connector_forward(d: Dims, video: Video) -> int:
    if not d.connector:
        return 0
    n, c = video.tokens(d), 2 * d.vggt_dim * d.temporal * d.merge * d.merge
    weights = c * c + c * d.hidden + (2 * d.hidden * d.hidden if d.connector == "embedding_merger" else 0)
    return 2 * n * weights


def encoders(d: Dims, video: Video) -> dict[str, int]:
    """Forward FLOPs of every encoder part for one video."""
    return {**vision_forward(d, video), "spatial_encoder": vggt_forward(d, video), "connector": connector_forward(d, video)}


def training_encoders(d: Dims, video: Video) -> dict[str, int]:
    """One video's encoders in a training step: frozen towers forward only, merger and connector
    trained (3x); no gradient flows below them."""
    f = encoders(d, video)
    return {"vision": f["vision"], "spatial_encoder": f["spatial_encoder"], "merger": 3 * f["merger"],
            "connector": 3 * f["connector"]}  # fmt: skip


def sft_sample(d: Dims, video: Video, text_tokens: int, answer_tokens: int, checkpointing: bool) -> dict[str, int]:
    """FLOPs of one SFT sample (forward + backward): its video, `text_tokens` of prompt text and
    `answer_tokens` of target; logits at every position (the loss reads the answer's)."""
    tokens = video.tokens(d) + text_tokens + answer_tokens
    llm = llm_forward(d, tokens, causal_pairs(tokens), tokens)
    return {"llm": (4 if checkpointing else 3) * llm, **training_encoders(d, video)}


@dataclass(frozen=True)
class Rollouts:
    """One GRPO prompt: `prompt` tokens (video included), G completions of `completion` tokens."""

    prompt: int
    generations: int
    completion: int

    def pairs(self, shared: bool) -> int:
        """Query-key pairs of one log-prob pass over the prompt and its completions."""
        P, G, T = self.prompt, self.generations, self.completion
        if shared:
            return causal_pairs(P) + G * (T * P + causal_pairs(T))
        return G * causal_pairs(P + T)

    def tokens(self, shared: bool) -> int:
        P, G, T = self.prompt, self.generations, self.completion
        return P + G * T if shared else G * (P + T)


def grpo_prompt(d: Dims, video: Video, r: Rollouts, *, shared: bool, reference: bool, old_pass: bool,
                iterations: int, checkpointing: bool) -> dict[str, int]:  # fmt: skip
    """FLOPs of one GRPO prompt (per step), split into generation, log-prob passes and update.
    Shared prefixes also run the frozen encoders once per step (at generation): the reference and
    the update only fuse their outputs (merger + connector); repeated prompts re-encode in both."""
    G, T, P = r.generations, r.completion, r.prompt
    enc = encoders(d, video)
    trained = enc["merger"] + enc["connector"]  # what fusing frozen outputs costs, forward
    frozen = enc["vision"] + enc["spatial_encoder"]
    prefills = 1 if shared else G
    decode_pairs = G * sum(P + t + 1 for t in range(T - 1))  # each new token attends its prompt and predecessors
    generate = frozen + trained + prefills * llm_forward(d, P, causal_pairs(P), 1)
    generate += llm_forward(d, G * (T - 1), decode_pairs, G * (T - 1))
    one_pass = llm_forward(d, r.tokens(shared), r.pairs(shared), G * T)
    reference_encoders = trained if shared else frozen + trained
    logprobs = int(reference) * (reference_encoders + one_pass) + int(old_pass) * one_pass
    update_encoders = 3 * trained + (0 if shared else frozen)
    update = iterations * ((4 if checkpointing else 3) * one_pass + update_encoders)
    return {"generate": generate, "logprobs": logprobs, "update": update}


@dataclass(frozen=True)
class Memory:
    """Bytes per GPU."""

    parameters: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    activations_no_checkpointing: int
    kv_cache: int
    gathered: int = 0  # generation under ZeRO-3: every parameter gathered onto each GPU for the decode

    def total(self, checkpointing: bool) -> int:
        """The larger of the update (activations) and generation (gathered weights, KV cache) phases."""
        acts = self.activations if checkpointing else self.activations_no_checkpointing
        states = self.parameters + self.gradients + self.optimizer + self.reference
        return states + max(acts, self.gathered + self.kv_cache)


def memory(d: Dims, *, params: int, trainable: int, dtype_bytes: int, zero_stage: int, world: int,
           sequence: int, logits: int, kv_tokens: int, reference: bool, mask: int = 0) -> Memory:  # fmt: skip
    """Per-GPU bytes: weights in the model dtype (sharded by ZeRO-3, but gathered whole for
    generation when `kv_tokens`), gradients in the model dtype (sharded from ZeRO-2), Adam's fp32
    moments and, for bf16, fp32 master weights (sharded from ZeRO-1); a frozen reference copy (never
    sharded); activations of a `sequence`-token forward (with checkpointing: each layer's input plus
    one layer's working set, 34 x width bytes a token in 16-bit with SDPA/flash attention,
    Korthikanti et al. 2022; without: every layer's), the logits at `logits` positions in the
    model dtype and `mask` bytes of attention mask; the KV cache of `kv_tokens` tokens."""
    optimizer_bytes = 8 + (4 if dtype_bytes == 2 else 0)
    layer_set = 34 * sequence * d.hidden * dtype_bytes // 2
    head = logits * d.vocab * dtype_bytes + mask
    sharded = params * dtype_bytes // (world if zero_stage == 3 else 1)
    return Memory(
        parameters=sharded,
        gradients=trainable * dtype_bytes // (world if zero_stage >= 2 else 1),
        optimizer=trainable * optimizer_bytes // world,
        reference=params * dtype_bytes if reference else 0,
        activations=d.layers * sequence * d.hidden * dtype_bytes + layer_set + head,
        activations_no_checkpointing=d.layers * layer_set + head,
        kv_cache=d.layers * 2 * d.kv_heads * d.head_dim * dtype_bytes * kv_tokens,
        gathered=params * dtype_bytes - sharded if kv_tokens else 0,
    )
