"""A stage stopped on purpose, as sft/grpo at stop_at_step: returns None."""


def run(cfg):
    return None
