"""python -m jobs.sft --config FILE [key=value ...]: supervised fine-tuning into run_dir/sft."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("sft")
    from pipelines.sft.stage import run

    run_job("sft", run, cfg)
