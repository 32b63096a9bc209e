"""python -m jobs.grpo --config FILE [key=value ...]: GRPO from run_dir/sft/final into run_dir/grpo."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("grpo")
    from pipelines.grpo.stage import run

    run_job("grpo", run, cfg)
