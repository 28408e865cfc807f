"""Domain errors of eval runs; the command line maps them to exit codes and one-line messages."""


class EvalError(Exception):
    """A run that cannot start as asked: a bad argument, a folder that is not a dataset."""


class EvalSetError(EvalError):
    """The question set itself is wrong (unknown sections, evidence not in the expected section)."""
