"""python -m jobs.plan --config FILE [key=value ...]: FLOPs, GPU-hours and per-GPU memory of the
configured SFT and GRPO runs, printed; starts no Ray and loads no weights."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("plan")
    from pipelines.plan.run import run

    run_job("plan", run, cfg)
