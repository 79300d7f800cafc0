"""The performance component's one error type: bad input, named by file, row, column or field."""


class PerformanceError(ValueError):
    """Bad input: a label table, the live window, the model card or a parameter (``kfpkit performance`` exits 2)."""
