"""VSI-Bench-style evaluation: greedy answers, shared scoring, per-task aggregation.

`aggregate(rows)` is importable without torch or Ray; the stage itself is `pipelines.evaluate.run.run(cfg)`.
"""

from pipelines.evaluate.aggregate import PAPER_TABLE, TASKS, VSI_BENCH_COUNTS, aggregate

__all__ = ["PAPER_TABLE", "TASKS", "VSI_BENCH_COUNTS", "aggregate"]
