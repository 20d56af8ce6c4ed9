"""The analysis tools' error (importable without matplotlib, for the command line's error handling)."""


class AnalysisError(ValueError):
    """Inputs an analysis cannot use; the message names the file and what is wrong."""
