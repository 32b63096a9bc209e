"""Offline byte-level tokenizer for the tiny and small presets, and the shared chat template.

The tiny/small tokenizer is a byte-level BPE with no merges: 256 byte tokens (ids 0-255, id =
byte value) followed by Qwen's special tokens, so any text round-trips and the vocabulary stays
small (264). `<think>`, `<answer>` and friends are plain text, as in Qwen's own vocabulary.
Real presets use the tokenizer files shipped with the weights (see loading.py).
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

# Order fixes the ids: <|endoftext|> = 256, ..., <|video_pad|> = 263.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_SPECIAL_IDS = {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
TOY_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
TOY_TOKEN_IDS = {
    "bos_token_id": _SPECIAL_IDS["<|endoftext|>"],
    "eos_token_id": _SPECIAL_IDS["<|im_end|>"],
    "pad_token_id": _SPECIAL_IDS["<|endoftext|>"],
    "vision_start_token_id": _SPECIAL_IDS["<|vision_start|>"],
    "vision_end_token_id": _SPECIAL_IDS["<|vision_end|>"],
    "image_token_id": _SPECIAL_IDS["<|image_pad|>"],
    "video_token_id": _SPECIAL_IDS["<|video_pad|>"],
}

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2.5-VL's template, restricted to what this project sends: a default system turn when the
# conversation has none, string or list content, `{"type": "video"}` / `{"type": "image"}` items
# rendered as one placeholder that the processor expands to the right number of tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'video' or 'video' in item %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in item %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (what the ByteLevel pre-tokenizer emits)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny/small tokenizer: bytes + Qwen's special tokens, eos `<|im_end|>`, pad `<|endoftext|>`."""
    vocab = {ch: b for b, ch in _byte_to_unicode().items()}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )
    for tok, idx in _SPECIAL_IDS.items():
        if tokenizer.convert_tokens_to_ids(tok) != idx:  # the config's token ids depend on this order
            raise RuntimeError(
                f"byte tokenizer gave {tok} id {tokenizer.convert_tokens_to_ids(tok)}, expected {idx}"
            )
    return tokenizer
