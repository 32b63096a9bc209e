"""python -m jobs.pipeline --config FILE [key=value ...]: every stage in order under run_dir."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("pipeline")
    from pipelines.pipeline import run_pipeline

    run_job("pipeline", run_pipeline, cfg)
