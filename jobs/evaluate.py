"""python -m jobs.evaluate --config FILE [key=value ...]: run_dir/eval/<name> (report, plot, predictions)."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("evaluate")
    from pipelines.evaluate.run import run

    run_job("evaluate", run, cfg)
