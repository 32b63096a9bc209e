"""python -m jobs.sft --config FILE [key=value ...]: supervised fine-tuning into run_dir/sft."""

import sys

from pipelines.config import job_config

if __name__ == "__main__":
    cfg = job_config("sft")
    from pipelines.sft.data import DataError
    from pipelines.sft.stage import SFTSetupError, run

    try:
        run(cfg)
    except (DataError, SFTSetupError) as e:
        print(f"jobs.sft: {e}", file=sys.stderr)
        raise SystemExit(1) from None
