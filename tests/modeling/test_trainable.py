"""The recipe's parameter groups, by name."""

from __future__ import annotations

import pytest
import torch

import modeling
from modeling.trainable import parameter_role


def test_groups_by_name(tiny):
    model, _ = tiny
    groups = modeling.trainable_parameter_groups(model, lr_llm=7e-6, lr_connector=2e-5, weight_decay=0.1)
    by_name = {g["name"]: g for g in groups}
    assert list(by_name) == ["connector", "connector_no_decay", "llm", "llm_no_decay"]
    names = {id(p): n for n, p in model.named_parameters()}
    grouped = {g["name"]: {names[id(p)] for p in g["params"]} for g in groups}

    assert "model.connector.mlp.0.weight" in grouped["connector"]
    assert "model.visual.merger.mlp.0.weight" in grouped["connector"]
    assert {
        "model.connector.ln_q.weight",
        "model.connector.mlp.2.bias",
        "model.visual.merger.ln_q.weight",
    } <= grouped["connector_no_decay"]
    assert "model.language_model.layers.0.self_attn.q_proj.weight" in grouped["llm"]
    assert "model.language_model.embed_tokens.weight" in grouped["llm"]  # tied with lm_head: listed once
    assert {
        "model.language_model.norm.weight",
        "model.language_model.layers.1.self_attn.k_proj.bias",
    } <= grouped["llm_no_decay"]
    assert by_name["connector"]["lr"] == 2e-5 and by_name["llm"]["lr"] == 7e-6
    assert by_name["llm"]["weight_decay"] == 0.1 and by_name["llm_no_decay"]["weight_decay"] == 0.0

    in_groups = set().union(*grouped.values())
    for name, param in model.named_parameters():
        frozen = name.startswith("model.spatial_encoder.") or (
            name.startswith("model.visual.") and not name.startswith("model.visual.merger.")
        )
        assert param.requires_grad is not frozen, name
        assert (name in in_groups) is not frozen, name
    optimizer = torch.optim.AdamW(groups)  # the groups are valid optimizer input
    assert len(optimizer.param_groups) == 4


def test_baseline_has_merger_only_in_connector_group():
    model, _ = modeling.load("tiny", seed=0, spatial_encoder="none")
    groups = {g["name"]: g for g in modeling.trainable_parameter_groups(model)}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split(".")[2] for p in groups["connector"]["params"]} == {"merger"}


def test_unknown_parameter_names_are_rejected():
    with pytest.raises(ValueError, match="no training role"):
        parameter_role("some_new_head.weight")


def test_the_authors_decay_rule_decays_rmsnorm_weights(tiny):
    """no_decay=biases_and_layernorm (transformers' ALL_LAYERNORM_LAYERS, the authors' trainer):
    only biases and nn.LayerNorm weights go without decay; Qwen's RMSNorm weights decay."""
    model, _ = tiny
    groups = modeling.trainable_parameter_groups(model, no_decay="biases_and_layernorm")
    names = {id(p): n for n, p in model.named_parameters()}
    grouped = {g["name"]: {names[id(p)] for p in g["params"]} for g in groups}
    assert {"model.language_model.norm.weight", "model.connector.ln_q.weight", "model.visual.merger.ln_q.weight",
            "model.language_model.layers.0.input_layernorm.weight"} <= grouped["llm"] | grouped["connector"]  # fmt: skip
    assert all(n.endswith(".bias") for n in grouped["llm_no_decay"] | grouped["connector_no_decay"])
    with pytest.raises(ValueError, match="no_decay"):
        modeling.trainable_parameter_groups(model, no_decay="none")
