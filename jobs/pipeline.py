"""python -m jobs.pipeline --config FILE [key=value ...]: every stage in order under run_dir."""

from pipelines.config import job_config
from pipelines.pipeline import run_pipeline

if __name__ == "__main__":
    run_pipeline(job_config("pipeline"))
