"""A stage that must not run after a stopped one."""


def run(cfg):
    raise AssertionError("a stage after a stopped one ran")
