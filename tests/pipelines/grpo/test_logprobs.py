"""selective_logprobs and token_entropy against torch's log_softmax on the whole tensor: values
and gradients, with temperature, suppressed tokens, slices smaller than a row, and bf16 logits."""

from __future__ import annotations

import pytest
import torch

from pipelines.grpo import logprobs
from pipelines.grpo.logprobs import selective_logprobs, token_entropy


def reference(logits, targets, temperature, suppress):
    x = logits.float() / temperature
    x = x.index_fill(-1, torch.tensor(suppress), float("-inf")) if suppress else x
    logp = x.log_softmax(-1)
    entropy = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)
    return logp.gather(-1, targets[..., None]).squeeze(-1), entropy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk", [7, 1 << 24])  # 7 elements: one position per slice
def test_values_and_gradients_match_log_softmax(monkeypatch, dtype, chunk):
    monkeypatch.setattr(logprobs, "CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    logits = (3 * torch.randn(3, 5, 11)).to(dtype).requires_grad_()
    suppress = (2, 9)
    targets = torch.randint(0, 11, (3, 5))
    targets[(targets == 2) | (targets == 9)] = 4  # never a suppressed id (they are never sampled)
    weights = torch.randn(3, 5)
    ours = selective_logprobs(logits, targets, temperature=0.7, suppress_token_ids=suppress)
    assert ours.dtype == torch.float32 and ours.shape == (3, 5)
    (grad,) = torch.autograd.grad((ours * weights).sum(), logits)
    ref_logits = logits.detach().clone().requires_grad_()
    ref, ref_entropy = reference(ref_logits, targets, 0.7, suppress)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), ref_logits)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(grad.float(), ref_grad.float(), atol=tol, rtol=tol)
    assert grad.dtype == dtype and (grad[..., list(suppress)] == 0).all()
    entropy = token_entropy(logits.detach(), temperature=0.7, suppress_token_ids=suppress)
    torch.testing.assert_close(entropy, ref_entropy, atol=1e-5, rtol=1e-5)
