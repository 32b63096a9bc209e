"""python -m jobs.build_dataset --config FILE [key=value ...]: QA Parquet under run_dir/dataset."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("build_dataset")
    from pipelines.dataset import run

    run_job("build_dataset", run, cfg)
