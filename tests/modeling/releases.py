"""Release directories written from the authors' own tensor listings (tests/modeling/fixtures), at
the tiny preset's sizes.

Every name comes from a release's listing, not from renaming this model's keys: a name kept is
one whose block index exists at tiny depth, its value the tiny model's tensor under the name the
loader maps it to (`map_name`; a wrong mapping raises KeyError here), and VGGT's heads are
one-element placeholders (the loader must never read them). The config is the v1.1 release's
`config.json` with the tiny sizes written into it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file

from modeling.loading import map_name
from modeling.vggt import is_head_tensor

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def listing(version: str) -> dict[str, list[int]]:
    """Tensor name -> shape of release `version` ("v1.1" or "v1.0") at 3B size."""
    return json.loads((FIXTURES / f"{version}_3b_state_dict_shapes.json").read_text())


def _depths(model) -> dict[str, int]:
    """Block families of the release names -> how many blocks the tiny model has."""
    text, vision = model.config.text_config, model.config.vision_config
    depths = {r"^model\.layers\.(\d+)\.": text.num_hidden_layers, r"^visual\.blocks\.(\d+)\.": vision.depth}
    if model.config.spatial_encoder == "vggt":
        vggt = model.config.vggt
        depths[r"aggregator\.(?:frame|global)_blocks\.(\d+)\."] = vggt.depth
        depths[r"aggregator\.patch_embed\.blocks\.(\d+)\."] = vggt.patch_embed_depth
    return depths


def release_state(model, version: str, *, lm_head: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of release `version` at `model`'s (tiny) sizes; see the module docstring."""
    ours = model.state_dict()
    depths = _depths(model)
    spatial = model.config.spatial_encoder == "vggt"
    state = {}
    for name in listing(version):
        if not spatial and name.startswith(("spatial_encoder.", "vggt", "connector.")):
            continue  # a plain Qwen2.5-VL release: the same Qwen names, nothing else
        if any((m := re.search(pattern, name)) and int(m.group(1)) >= n for pattern, n in depths.items()):
            continue  # a block the tiny model does not have
        if name == "lm_head.weight" and not lm_head:
            continue
        if is_head_tensor(name):
            state[name] = torch.zeros(1)
            continue
        state[name] = ours[map_name(name)].detach().clone().contiguous()
    return state


def release_config(model, version: str) -> dict:
    """The v1.1 release's config.json with `model`'s sizes (v1.0: a Qwen2.5-VL config, no spatial part)."""
    config = json.loads((FIXTURES / "v1.1_config.json").read_text())
    text, vision = model.config.text_config, model.config.vision_config
    config.update(
        vocab_size=text.vocab_size, hidden_size=text.hidden_size, intermediate_size=text.intermediate_size,
        num_hidden_layers=text.num_hidden_layers, num_attention_heads=text.num_attention_heads,
        num_key_value_heads=text.num_key_value_heads, max_position_embeddings=text.max_position_embeddings,
        bos_token_id=text.bos_token_id, eos_token_id=text.eos_token_id,
        vision_start_token_id=model.config.vision_start_token_id, vision_end_token_id=model.config.vision_end_token_id,
        image_token_id=model.config.image_token_id, video_token_id=model.config.video_token_id,
    )  # fmt: skip
    config["rope_scaling"]["mrope_section"] = list(text.rope_parameters["mrope_section"])
    config["vision_config"].update(
        depth=vision.depth, hidden_size=vision.hidden_size, intermediate_size=vision.intermediate_size,
        num_heads=vision.num_heads, out_hidden_size=vision.out_hidden_size,
        fullatt_block_indexes=list(vision.fullatt_block_indexes),
    )  # fmt: skip
    if model.config.spatial_encoder == "vggt" and version == "v1.1":
        vggt = model.config.vggt
        config["spatial_config"].update(img_size=vggt.img_size, patch_size=vggt.patch_size, embed_dim=vggt.embed_dim)
    else:  # Qwen2.5-VL's own config, or v1.0's (which says nothing of VGGT or its connector)
        del config["spatial_config"], config["connector_config"]
        config.update(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"])
        if version == "v1.0" and model.config.spatial_encoder == "vggt":
            config["architectures"] = ["Qwen2_5_VL_VGGTForConditionalGeneration"]
    return config


def write_release(directory: Path, model, processor, version: str = "v1.1", *, lm_head: bool = True,
                  state: dict | None = None, config: dict | None = None) -> Path:  # fmt: skip
    """Two safetensors shards + index, config.json, tokenizer, chat template and a Qwen-style
    preprocessor_config.json, as a release directory holds them."""
    directory.mkdir(parents=True)
    state = release_state(model, version, lm_head=lm_head) if state is None else state
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, directory / file)
        weight_map.update(dict.fromkeys(keys, file))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (directory / "config.json").write_text(json.dumps(release_config(model, version) if config is None else config))
    processor.tokenizer.save_pretrained(directory)
    (directory / "chat_template.jinja").unlink(missing_ok=True)
    (directory / "chat_template.json").write_text(json.dumps({"chat_template": processor.chat_template}))
    qwen_preprocessor = {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    }  # fmt: skip
    (directory / "preprocessor_config.json").write_text(json.dumps(qwen_preprocessor))
    return directory
