"""The run config: `RunConfig` (every section) and its loader, in `run.py`; one module per section
(`train`, `optimizer`, `sft`, `grpo`, `reward_pool`, `evaluate`, `sample_frames`,
`mixture`, `export`, `plan`); `reference` renders docs/configuration.md from the same keys as
`--help`. Nothing here imports a stage, so reading a config (and `--help`) imports neither Ray nor torch."""

from pipelines.config.run import (
    ConfigError,
    LocalPath,
    RunConfig,
    Section,
    build_config,
    help_text,
    job_config,
    load_config,
    run_job,
)

__all__ = ["ConfigError", "LocalPath", "RunConfig", "Section", "build_config", "help_text", "job_config", "load_config",
           "run_job"]  # fmt: skip
