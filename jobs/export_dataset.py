"""python -m jobs.export_dataset --config FILE [key=value ...]: our built dataset as Qwen-VL
finetune JSONL plus frame files, under run_dir/export/<split> (export.*)."""

from pipelines.config import job_config, run_job

if __name__ == "__main__":
    cfg = job_config("export_dataset")
    from pipelines.export import run

    run_job("export_dataset", run, cfg)
