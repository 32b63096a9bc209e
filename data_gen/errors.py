"""The one base of every "bad input" error (corrupt scans, bad records, missing files, a cluster
without the asked-for resources): jobs print its message and exit 1, with no traceback."""


class InputError(ValueError):
    """Bad input named in the message; never a bug in our code."""
