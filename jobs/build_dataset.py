"""python -m jobs.build_dataset --config FILE [key=value ...]: QA Parquet under run_dir/dataset."""

import sys

from pipelines.config import job_config

if __name__ == "__main__":
    cfg = job_config("build_dataset")
    from data_gen.build import DatasetBuildError
    from pipelines.dataset import run

    try:
        run(cfg)
    except DatasetBuildError as e:
        print(f"jobs.build_dataset: {e}", file=sys.stderr)
        raise SystemExit(1) from None
