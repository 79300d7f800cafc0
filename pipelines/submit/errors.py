"""The error of ``kfpkit submit``'s checks."""


class SubmitError(ValueError):
    """Bad input to ``kfpkit submit`` (target, cron, labels, registry root), found before anything was sent.

    Parameter values are refused with :class:`kfpkit.pipelines.parameters.ParameterError` instead.
    """
