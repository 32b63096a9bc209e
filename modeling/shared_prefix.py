"""Shared-prefix compute: a prompt is computed once for every continuation that follows it.

GRPO samples G completions of each prompt and scores them three times (old policy, reference,
update); evaluation asks ~18 questions of each video. Repeating the prompt per continuation costs
G (or 18) times its ~3,000 video tokens in every layer. Here each row of a batch holds its prompt
**once**, followed by its continuations ("branches") packed one after another:

    [pad pad prompt ... prompt | c1 c1 c1 | c2 c2 c2 | ... | cG cG cG]      branch ids per token:
    [ -1  -1    0   ...    0   |  1  1  1 |  2  2  2 | ... |  G  G  G]      (-1 = padding)

A block attention mask lets each token see earlier tokens of its own branch and of the shared
prompt (branch 0), never another branch, never padding: the Prefix Grouper scheme (arXiv
2506.05433). Every branch token gets the position ids it would have had after its prompt alone
(Qwen's rule: the prompt's largest position + 1 + its index, `rope.py`), so the outputs equal the
repeated-prompt computation up to float summation order, and gradients flow into the one copy of
the prompt from all of its branches.

Chosen over expanding a KV cache as views: the prompt's keys and values are stored once in the
packed row (never G times, in the forward, in backward's saved tensors, or in a decoding cache)
and the model runs unmodified: the mask is a standard 4D additive mask that transformers passes
to SDPA and eager attention as it is. The price is the masked-out branch-to-branch block of the
attention matrix ((G x T)^2 scores per row, computed and discarded by SDPA), small next to the
G x P x layers of MLP work it saves at GRPO's shape.

    packed = pack_branches(prompt_ids, prompt_mask, prompt_positions, completion_ids, completion_mask)
    logits = model(input_ids=packed.input_ids, attention_mask=packed.attention_mask(dtype),
                   position_ids=packed.position_ids, logits_to_keep=packed.logit_index, ...).logits
    # [B, G*T, V] -> [B*G, T, V]: row b*G+g, token t predicted from its branch's previous token

Decoding (`BranchDecoder`) keeps the same layout in its KV cache: one prefill of each prompt,
then one token per branch per step, each step's G tokens appended to the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SHARED, PADDING = 0, -1  # branch ids: the prompt's tokens, and tokens nobody attends to


def block_mask(key_branch: torch.Tensor, query_branch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask `[B, 1, Q, K]` for queries that are the last Q of K tokens in packed
    order. Query i sees key j when j <= i, key j is not padding, and j is shared or of i's branch.
    Every token sees itself, so no softmax row is empty (padding rows' outputs are never used)."""
    B, K = key_branch.shape
    Q = query_branch.shape[1]
    k_index = torch.arange(K, device=key_branch.device)
    q_index = torch.arange(K - Q, K, device=key_branch.device)
    keys = key_branch[:, None, :]  # [B, 1, K]
    same = (keys == SHARED) | (keys == query_branch[:, :, None])  # [B, Q, K]
    allowed = same & (keys != PADDING) & (k_index[None, None, :] <= q_index[None, :, None])
    allowed |= k_index[None, None, :] == q_index[None, :, None]
    mask = torch.zeros(B, 1, Q, K, dtype=dtype, device=key_branch.device)
    return mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)


def prompt_branches(prompt_mask: torch.Tensor) -> torch.Tensor:
    """Branch ids `[B, P]` of left-padded prompts: shared where the mask is 1, padding elsewhere."""
    return torch.where(prompt_mask.bool(), SHARED, PADDING)


@dataclass
class PackedBranches:
    """B rows, each a prompt followed by its G branches of T tokens (see module docstring).

    input_ids, branch `[B, P + G*T]`; position_ids `[3, B, P + G*T]`; logit_index `[G*T]`: for
    branch g's token t, the packed index whose logits predict it (the prompt's last token for t = 0,
    else the branch's token t - 1)."""

    input_ids: torch.Tensor
    branch: torch.Tensor
    position_ids: torch.Tensor
    logit_index: torch.Tensor
    group_size: int

    def attention_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """`[B, 1, L, L]` additive mask in `dtype` (the model's compute dtype)."""
        return block_mask(self.branch, self.branch, dtype)

    def per_branch(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits `[B, G*T, ...]` at `logit_index` -> `[B*G, T, ...]` in rollout order (b*G + g)."""
        B, GT = logits.shape[:2]
        return logits.reshape(B * self.group_size, GT // self.group_size, *logits.shape[2:])


def pack_branches(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    prompt_positions: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
) -> PackedBranches:
    """Pack B left-padded prompts `[B, P]` (positions `[3, B, P]`) with their B*G completions
    `[B*G, T]` (rows b*G .. b*G+G-1 continue prompt b; mask 1 up to and including eos)."""
    B, P = prompt_ids.shape
    N, T = completion_ids.shape
    if N % B:
        raise ValueError(f"{N} completions do not divide into groups of the {B} prompts")
    G = N // B
    device = prompt_ids.device
    branch_of = torch.arange(1, G + 1, device=device).repeat(B).view(N, 1)  # [N, 1]: 1..G per prompt
    completion_branch = torch.where(completion_mask.bool(), branch_of, PADDING)  # [N, T]
    branch = torch.cat([prompt_branches(prompt_mask), completion_branch.reshape(B, G * T)], dim=1)
    start = prompt_positions.amax(dim=(0, 2)) + 1  # [B]: Qwen's rule, text after the prompt
    steps = torch.arange(T, device=device).repeat(G)  # [G*T]: 0..T-1 per branch
    completion_positions = (start[:, None] + steps[None, :]).unsqueeze(0).expand(3, B, G * T)
    prev = torch.arange(G * T, device=device) - 1 + P  # branch token t-1's packed index
    prev[::T] = P - 1  # t = 0: the prompt's last token
    return PackedBranches(
        input_ids=torch.cat([prompt_ids, completion_ids.reshape(B, G * T)], dim=1),
        branch=branch,
        position_ids=torch.cat([prompt_positions, completion_positions], dim=2),
        logit_index=prev,
        group_size=G,
    )


class BranchDecoder:
    """Incremental decoding of `n` branches after each of B prompts held once in a KV cache.

    `prefill` computes the prompts once and returns their last logits; `begin(n)` starts n
    branches after them (and drops earlier branches: the prompts are reused); `extend` adds
    tokens of several branches at once (evaluation's questions after a shared video); `step` adds
    one token per branch and returns `[B, n, V]` logits. `model` is called with an explicit 4D
    block mask and Qwen positions, so it never recomputes positions from token ids."""

    def __init__(self, model, dtype: torch.dtype):
        self.model, self.dtype = model, dtype
        self.cache = None
        self.key_branch: torch.Tensor | None = None  # [B, K]: branch of every cached token
        self.start: torch.Tensor | None = None  # [B]: position of the first token after each prompt
        self.next_position: torch.Tensor | None = None  # [B, n]: position of each branch's next token
        self.prefix_length = 0

    def prefill(self, input_ids, attention_mask, position_ids, **media) -> torch.Tensor:
        """Compute left-padded prompts `[B, P]` once (positions `[3, B, P]`); returns the last
        token's logits `[B, V]`. `media`: the model's video arguments for the prompts."""
        from transformers import DynamicCache

        B, P = input_ids.shape
        self.cache = DynamicCache(config=self.model.config.get_text_config())
        self.key_branch = input_ids.new_zeros(B, 0)
        self.start = position_ids.amax(dim=(0, 2)) + 1  # Qwen's rule: text after the prompt
        self.prefix_length = P
        logits = self._forward(input_ids, prompt_branches(attention_mask), position_ids, logits_to_keep=1, **media)
        return logits[:, -1]

    def begin(self, branches: int) -> None:
        """Start `branches` new branches after the prompts (earlier branches are dropped)."""
        extra = self.cache.get_seq_length() - self.prefix_length
        if extra:
            self.cache.crop(-extra)
            self.key_branch = self.key_branch[:, : self.prefix_length]
        self.next_position = self.start[:, None].expand(-1, branches).clone()

    def extend(self, input_ids: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        """Append tokens `[1, S]` of several branches (`branch` `[1, S]`: 1..n, each branch's tokens
        in order; one row, as evaluation's questions after their video). Returns the logits of
        each branch's last token, `[1, n, V]`."""
        if input_ids.shape[0] != 1:
            raise ValueError("extend takes one row (one shared prompt)")
        ids = branch[0].tolist()
        positions = torch.empty(len(ids), dtype=torch.long, device=input_ids.device)
        for j, g in enumerate(ids):  # each branch's tokens count up from its next position
            positions[j] = self.next_position[0, g - 1]
            self.next_position[0, g - 1] += 1
        n = self.next_position.shape[1]
        last = [max(j for j, g in enumerate(ids) if g == k) for k in range(1, n + 1)]
        keep = torch.tensor(last, device=input_ids.device)
        return self._forward(input_ids, branch, positions.view(1, 1, -1).expand(3, 1, -1), logits_to_keep=keep)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per branch, `[B, n]` (branch g at column g-1); returns `[B, n, V]`."""
        B, n = tokens.shape
        branch = torch.arange(1, n + 1, device=tokens.device).expand(B, n)
        positions = self.next_position.clone()
        self.next_position += 1
        return self._forward(tokens, branch, positions[None].expand(3, -1, -1))

    def _forward(self, input_ids, query_branch, position_ids, logits_to_keep=0, **media) -> torch.Tensor:
        key_branch = torch.cat([self.key_branch, query_branch], dim=1)  # [B, K + Q]
        out = self.model(
            input_ids=input_ids,
            attention_mask=block_mask(key_branch, query_branch, self.dtype),
            position_ids=position_ids,
            cache=self.cache,
            use_cache=True,
            logits_to_keep=logits_to_keep,
            **media,
        )
        self.key_branch = key_branch
        return out.logits


def generation_rules(model, generation_config, prompt_length: int):
    """(logits processors, eos ids, pad id) that `model.generate(generation_config=...)` would
    apply: the model's own generation_config fills what `generation_config` leaves unset, exactly
    as transformers does, so a branch decoded here picks the tokens generate would pick."""
    from transformers import LogitsProcessorList

    config, _ = model._prepare_generation_config(generation_config)
    # the special-token tensors the processors read (eos for min_new_tokens, bad_words_ids, ...)
    model._prepare_special_tokens(config, kwargs_has_attention_mask=True, device=model.device)
    processors = model._get_logits_processor(
        generation_config=config, input_ids_seq_length=prompt_length, logits_processor=LogitsProcessorList(),
        device=model.device, model_kwargs={},
    )  # fmt: skip
    eos = config.eos_token_id
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    pad = config.pad_token_id if config.pad_token_id is not None else (eos[0] if eos else 0)
    return processors, eos, pad, bool(config.do_sample)


def decode_branches(
    decoder: BranchDecoder,
    first_logits: torch.Tensor,
    history: torch.Tensor,
    *,
    processors,
    eos_token_ids: list[int],
    pad_token_id: int,
    do_sample: bool,
    max_new_tokens: int,
) -> torch.Tensor:
    """Tokens `[B*n, T]` for every branch (row b*n + g-1), T <= max_new_tokens, chosen as
    transformers' generate chooses them: fp32 logits through `processors` (given `history`, each
    row's prompt ids and its tokens so far), then multinomial sampling or argmax; a row that
    produced an eos continues with `pad_token_id`; it stops when every row has ended.

    first_logits `[B, n, V]`: the logits of each branch's first new token."""
    B, n, V = first_logits.shape
    logits = first_logits.reshape(B * n, V)
    eos = torch.tensor(eos_token_ids, device=history.device)
    unfinished = torch.ones(B * n, dtype=torch.bool, device=history.device)
    chosen = []
    for step in range(max_new_tokens):
        scores = processors(history, logits.float())
        if do_sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        tokens = torch.where(unfinished, tokens, pad_token_id)  # [B*n]
        chosen.append(tokens)
        history = torch.cat([history, tokens[:, None]], dim=1)
        unfinished &= ~torch.isin(tokens, eos)
        if not unfinished.any() or step == max_new_tokens - 1:
            break
        logits = decoder.step(tokens.view(B, n)).reshape(B * n, V)
    return torch.stack(chosen, dim=1)
