"""Which parameters train, and the optimizer groups of the release v1.1 recipe.

Roles by parameter name:
- `connector`: the spatial connector and Qwen's patch merger (`model.visual.merger.*`);
- `llm`: the language model and the LM head (tied to the input embedding in the 3B presets);
- `frozen`: the rest of Qwen's vision tower and the spatial encoder.
"""

from __future__ import annotations

from torch import nn

ROLES = ("connector", "llm", "frozen")


def parameter_role(name: str) -> str:
    """The role of one parameter (see module docstring); unknown names raise."""
    if name.startswith(("model.connector.", "model.visual.merger.")):
        return "connector"
    if name.startswith(("model.language_model.", "lm_head.")):
        return "llm"
    if name.startswith(("model.visual.", "model.spatial_encoder.")):
        return "frozen"
    raise ValueError(f"parameter {name!r} has no training role")


def parameter_names_by_role(model: nn.Module) -> dict[str, list[str]]:
    """Parameter names grouped by role (tied parameters listed once, under their first name)."""
    out: dict[str, list[str]] = {role: [] for role in ROLES}
    for name, _ in model.named_parameters():
        out[parameter_role(name)].append(name)
    return out


NO_DECAY_RULES = ("biases_and_norms", "biases_and_layernorm")


def _layernorm_parameters(model: nn.Module) -> set[str]:
    """Names of the parameters of nn.LayerNorm modules (transformers' ALL_LAYERNORM_LAYERS)."""
    return {f"{module_name}.{name}" if module_name else name
            for module_name, module in model.named_modules() if isinstance(module, nn.LayerNorm)
            for name, _ in module.named_parameters(recurse=False)}  # fmt: skip


def _no_decay(name: str, param: nn.Parameter, rule: str, layernorm: set[str]) -> bool:
    """`biases_and_norms`: biases and every 1-D weight (all norms); `biases_and_layernorm`: biases
    and nn.LayerNorm weights only (the authors' trainer, so Qwen's RMSNorm weights decay)."""
    if name.endswith(".bias"):
        return True
    return param.ndim < 2 if rule == "biases_and_norms" else name in layernorm


def trainable_parameter_groups(
    model: nn.Module, *, lr_llm: float = 7e-6, lr_connector: float = 2e-5, weight_decay: float = 0.1,
    no_decay: str = "biases_and_norms",
) -> list[dict]:  # fmt: skip
    """Freeze the encoders and return the optimizer groups of the recipe.

    Sets `requires_grad` (True for connector + merger + LLM, False for the vision tower's other
    parts and the spatial encoder), then returns up to four groups, each a dict with `name`
    (`connector`, `connector_no_decay`, `llm`, `llm_no_decay`), `params`, `lr` and
    `weight_decay`. Defaults are release v1.1's (LLM 7e-6, connector and merger 2e-5, decay 0.1);
    `no_decay` picks which parameters go without decay (`NO_DECAY_RULES`, see `_no_decay`).
    """
    rule = no_decay
    if rule not in NO_DECAY_RULES:
        raise ValueError(f"no_decay must be one of {NO_DECAY_RULES}, got {rule!r}")
    layernorm = _layernorm_parameters(model)
    groups: dict[str, dict] = {}
    lrs = {"connector": lr_connector, "llm": lr_llm}
    for name, param in model.named_parameters():
        role = parameter_role(name)
        param.requires_grad_(role != "frozen")
        if role == "frozen":
            continue
        no_decay = _no_decay(name, param, rule, layernorm)
        key = f"{role}_no_decay" if no_decay else role
        group = groups.setdefault(
            key,
            {"name": key, "params": [], "lr": lrs[role], "weight_decay": 0.0 if no_decay else weight_decay},
        )
        group["params"].append(param)
    order = ("connector", "connector_no_decay", "llm", "llm_no_decay")
    return [groups[k] for k in order if k in groups]
