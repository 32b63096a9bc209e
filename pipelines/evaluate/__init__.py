"""VSI-Bench-style evaluation: greedy answers, shared scoring, per-task aggregation."""
