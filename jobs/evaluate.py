"""python -m jobs.evaluate --config FILE [key=value ...]: run_dir/eval (report, plot, predictions)."""

import sys

from pipelines.config import job_config

if __name__ == "__main__":
    cfg = job_config("evaluate")
    from pipelines.evaluate.inputs import EvalInputError
    from pipelines.evaluate.run import run
    from pipelines.evaluate.video import VideoError
    from pipelines.prompting import RecordError

    try:
        run(cfg)
    except (EvalInputError, RecordError, VideoError) as e:
        print(f"jobs.evaluate: {e}", file=sys.stderr)
        raise SystemExit(1) from None
