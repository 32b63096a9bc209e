"""python -m jobs.grpo --config FILE [key=value ...]: GRPO from run_dir/sft/final into run_dir/grpo."""

import sys

from pipelines.config import job_config

if __name__ == "__main__":
    cfg = job_config("grpo")
    from pipelines.grpo.stage import GRPOSetupError, run
    from pipelines.prompting import RecordError
    from pipelines.sft.data import DataError

    try:
        run(cfg)
    except (DataError, GRPOSetupError, RecordError) as e:
        print(f"jobs.grpo: {e}", file=sys.stderr)
        raise SystemExit(1) from None
