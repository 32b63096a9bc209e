"""python -m jobs.pipeline --config FILE [key=value ...]: every stage in order under run_dir."""

import sys

from pipelines.config import job_config

if __name__ == "__main__":
    cfg = job_config("pipeline")
    from data_gen.build import DatasetBuildError
    from data_gen.scan import ScanError
    from pipelines.pipeline import run_pipeline

    try:
        run_pipeline(cfg)
    except (DatasetBuildError, ScanError) as e:
        print(f"jobs.pipeline: {e}", file=sys.stderr)
        raise SystemExit(1) from None
