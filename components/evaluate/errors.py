"""The error evaluate raises for bad input."""


class EvaluationError(ValueError):
    """Bad evaluation input: a missing file or column, labels that are not 0/1, invalid gate settings."""
