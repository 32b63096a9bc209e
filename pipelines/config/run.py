"""The one typed config tree every job reads: YAML file + dotted command-line overrides.

`load_config(["--config", "jobs/configs/tiny.yaml", "sft.max_steps=3"])` returns a validated
`RunConfig`. An unknown key or a bad value raises `ConfigError` naming the key, before any work;
`jobs` turn that into exit code 2. `--help` prints every key with its default and meaning, the
same text as docs/configuration.md (`config_keys()` feeds both; `make docs` regenerates the page).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from data_gen.build.config import BuildConfig
from data_gen.errors import InputError
from data_gen.qa.config import QAConfig
from data_gen.storage import job_storage_failure
from pipelines.config.evaluate import EvalConfig
from pipelines.config.export import ExportConfig
from pipelines.config.grpo import GRPOConfig
from pipelines.config.mixture import MixtureConfig
from pipelines.config.plan import PlanConfig
from pipelines.config.sample_frames import SampleFramesConfig
from pipelines.config.sft import SFTConfig
from pipelines.config.train import TrainConfig


def _absolute(path: str | None) -> str | None:
    # Resolved once, where the config is loaded: Ray workers run in other working directories,
    # where a relative run_dir would silently point somewhere else.
    return None if path is None else str(Path(path).expanduser().resolve())


LocalPath = Annotated[str, AfterValidator(_absolute)]


class Section(BaseModel):
    # Unknown keys are errors, never silently ignored; assignments are re-validated.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SynthConfig(Section):
    num_scenes: int = Field(4, ge=1, description="synthetic scenes to generate when data.scans_dir is unset")
    num_frames: int = Field(96, ge=2, description="frames per synthetic scene (24 fps)")
    width: int = Field(320, ge=16, description="colour width, pixels (and depth width unless depth_width is set)")
    height: int = Field(240, ge=16, description="colour height, pixels (and depth height unless depth_height is set)")
    depth_width: int | None = Field(None, ge=16, description="depth width, pixels; null = width (ScanNet: 640)")
    depth_height: int | None = Field(None, ge=16, description="depth height, pixels; null = height (ScanNet: 480)")
    color_scale: int = Field(
        1, ge=1, description="render colour this many times smaller, then enlarge it (real pixel counts, cheaper)"
    )
    mesh_step_scale: float = Field(
        1.0, gt=0, le=1, description="multiplies the mesh grid spacing (0.5: ~4x the vertices)"
    )
    sens: bool = Field(False, description="write frames as one .sens file instead of exported folders")
    layouts: list[Literal["scannet", "arkitscenes", "scannetpp"]] = Field(
        default_factory=lambda: ["scannet"], min_length=1,
        description="scene layouts, taking turns by scene: ScanNet's, ARKitScenes' 3DOD or ScanNet++'s (iPhone)",
    )

    @model_validator(mode="after")
    def _sizes_agree(self):
        if (self.depth_width is None) != (self.depth_height is None):
            raise ValueError("set depth_width and depth_height together (or neither: depth at the colour size)")
        if "arkitscenes" in self.layouts and self.depth_width is not None and (self.depth_width, self.depth_height) != (
                self.width, self.height):
            raise ValueError("layouts with arkitscenes need depth at the colour size (ARKitScenes' frames share one size)")
        if self.width % self.color_scale or self.height % self.color_scale:
            raise ValueError(f"color_scale={self.color_scale} must divide width and height ({self.width}x{self.height})")
        return self

    def sizes(self) -> dict:
        """The extra size arguments of `synthesize_scans`."""
        depth = (self.depth_width, self.depth_height) if self.depth_width else None
        return {"depth_size": depth, "color_scale": self.color_scale, "mesh_step_scale": self.mesh_step_scale}


class DataConfig(Section):
    scans_dir: LocalPath | None = Field(
        None, description="folder holding <scene>/ folders in ScanNet layout; null = synthesise into run_dir/scans"
    )
    meta_info: LocalPath | None = Field(
        None,
        description="build the dataset from this VSI-Bench meta_info JSON (scene name -> room_size, object_bbox, "
        "...) instead of scans: every question type but appearance order, without frames",
    )
    meta_info_dataset: Literal["scannet", "arkitscenes", "scannetpp", "synthetic"] = Field(
        "scannet", description="dataset of the meta_info scenes that do not name theirs (picks the vocabulary)"
    )
    synthetic: SynthConfig = Field(default_factory=SynthConfig)
    qa: QAConfig = Field(default_factory=QAConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    mixture: MixtureConfig = Field(default_factory=MixtureConfig)


class ModelConfig(Section):
    preset: Literal["tiny", "small", "spatial-mllm-3b", "qwen2.5-vl-3b"] = Field(
        "tiny", description="architecture preset; tiny/small are random-initialised offline"
    )
    path: LocalPath | None = Field(None, description="local directory with real weights (overrides random init)")
    spatial_weights: LocalPath | None = Field(
        None,
        description="a VGGT checkpoint (.safetensors/.pt) for the spatial encoder when model.path is a plain "
        "Qwen2.5-VL directory (the paper's SFT start: Qwen2.5-VL-3B + VGGT-1B, fresh connector)",
    )
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="parameter dtype for training and inference")


class RunConfig(Section):
    run_dir: LocalPath = Field(
        "runs/tiny", description="every output of the run lives under this folder (relative: to the working directory)"
    )
    seed: int = Field(0, description="seeds scene synthesis, question sampling, data order and init")
    log_level: Literal["quiet", "verbose"] = Field(
        "quiet",
        description="quiet: hide Ray's per-run notices (token auth, Ray Data plan lines and progress logs where the "
        "job shows its own, C++ core-worker lines below FATAL); verbose: show everything Ray prints",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    sample_frames: SampleFramesConfig = Field(default_factory=SampleFramesConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir).expanduser().resolve()

    def scans_path(self) -> Path:
        """Where the scans are read from: data.scans_dir, or run_dir/scans when synthesised."""
        if self.data.scans_dir:
            return Path(self.data.scans_dir).expanduser().resolve()
        return self.run_path / "scans"

    def precision_warning(self) -> str | None:
        """A warning for a GPU run whose model.dtype was left unset (the default, fp32, is twice the
        memory and a fraction of the speed of the recipe's bf16); None otherwise."""
        if self.train.use_gpu and "dtype" not in self.model.model_fields_set:
            return ("warning: model.dtype is not set, so this GPU run trains in fp32; set model.dtype=bf16 "
                    "(the recipe's precision) or model.dtype=fp32 to keep fp32 and silence this")  # fmt: skip
        return None

    def section_hash(self, *keys: str) -> str:
        """Stable hash of some keys or sections (e.g. "seed", "data.synthetic"), so a stage can
        tell whether its finished outputs were made with the same settings."""
        dumped = self.model_dump(mode="json")
        payload = {key: _get_dotted(dumped, key) for key in keys}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class ConfigError(ValueError):
    """A bad config file, key or value. The message names the key."""


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf key of the tree as (dotted path, FieldInfo)."""
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out.extend(_key_paths(sub, path + "."))
        else:
            out.append((path, field))
    return out


def _dict_field(path: str) -> str | None:
    """The dict-valued field (e.g. data.build.mix) that `path` reaches into, if any."""
    return next((k for k, _ in _key_paths(RunConfig) if path.startswith(k + ".")), None)


def _check_key(path: str) -> None:
    known = [p for p, _ in _key_paths(RunConfig)]
    if path in known or _dict_field(path):
        return
    hint = difflib.get_close_matches(path, known, n=1)
    raise ConfigError(f"unknown config key '{path}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))


def _get_dotted(tree: dict, path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set_dotted(tree: dict, path: str, value: Any) -> None:
    node = tree
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _format_validation(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        lines.append(f"config key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def build_config(yaml_text: str | None = None, overrides: list[str] = (), source: str = "<config>") -> RunConfig:
    """Parse YAML text plus `a.b=value` overrides (values parsed as YAML scalars) into a RunConfig."""
    try:
        tree = yaml.safe_load(yaml_text) if yaml_text else {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(tree).__name__}")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        _check_key(key)
        if (field := _dict_field(key)) and _get_dotted(tree, field) is None:
            # `data.build.mix.counting=10` edits the current mix rather than replacing it.
            _set_dotted(tree, field, _get_dotted(RunConfig().model_dump(), field))
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set_dotted(tree, key, value)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format_validation(e)) from None


class ConfigKey(NamedTuple):
    """One leaf key as `--help` and docs/configuration.md show it."""

    key: str
    """Dotted path, e.g. "data.qa.num_frames"."""
    default: str
    """The default as JSON."""
    description: str
    """The field's description (its attribute docstring or `description=`); may span lines."""


def config_keys() -> list[ConfigKey]:
    """Every leaf key of the tree, in declaration order: the one walk behind `help_text()` and the
    Markdown reference (`pipelines.config.reference`), so the two always say the same thing."""
    out = []
    for path, field in _key_paths(RunConfig):
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump()
        out.append(ConfigKey(path, json.dumps(default), field.description or ""))
    return out


def help_text() -> str:
    lines = ["Config keys (set in the YAML file or as key=value overrides):"]
    for key in config_keys():
        lines.append(f"  {key.key} = {key.default}")
        lines.extend(f"      {line}".rstrip() for line in key.description.splitlines())
    return "\n".join(lines)


USAGE = "usage: python -m jobs.{job} --config FILE [key=value ...]   (--help lists every key)"


def load_config(argv: list[str], job: str = "job") -> RunConfig:
    """Command-line entry: `--config FILE` then dotted overrides. Raises ConfigError."""
    config_file = None
    overrides: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--config":
            if not args:
                raise ConfigError("--config needs a file")
            config_file = args.pop(0)
        elif arg.startswith("--config="):
            config_file = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            raise ConfigError(f"unknown option '{arg}'\n" + USAGE.format(job=job))
        else:
            overrides.append(arg)
    text = None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file '{config_file}' does not exist")
        text = path.read_text()
    return build_config(text, overrides, source=str(config_file or "<defaults>"))


def job_config(job: str, argv: list[str] | None = None) -> RunConfig:
    """What every `jobs/*.py` calls first: prints help, or exits 2 on a bad config."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(USAGE.format(job=job))
        print(help_text())
        raise SystemExit(0)
    try:
        return load_config(argv, job)
    except ConfigError as e:
        print(f"jobs.{job}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def run_job(job: str, stage: Callable[[RunConfig], object], cfg: RunConfig) -> None:
    """Run one stage for a job. Bad input (any InputError: corrupt scans, bad records, missing
    data, a cluster without the asked-for resources) prints its message and exits 1; so does
    storage that cannot be written (full, read-only, gone), naming the path, wherever it failed
    (here, in a Ray task, in a training worker)."""
    try:
        stage(cfg)
    except InputError as e:
        print(f"jobs.{job}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as e:
        message = job_storage_failure(e, cfg.run_path)
        if message is None:
            raise
        print(f"jobs.{job}: {message}", file=sys.stderr)
        raise SystemExit(1) from None
