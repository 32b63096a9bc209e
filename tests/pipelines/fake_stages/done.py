"""A stage that finishes: writes run_dir/done and returns it."""


def run(cfg):
    out = cfg.run_path / "done"
    out.mkdir(parents=True, exist_ok=True)
    return out
