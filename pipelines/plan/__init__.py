"""The compute planner (`jobs.plan`): `costs.py` (FLOPs and memory from model dimensions), `run.py` (the report)."""
