"""The one error type of the ingest component."""


class IngestError(ValueError):
    """Bad ingest input: missing/empty/unparsable file, bad label column, bad synthetic URI or fraction, bad split.

    The message names the offending file, column, parameter or value. When it is raised, no output
    artifact has been left behind.
    """
