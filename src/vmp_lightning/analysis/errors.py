"""The analysis tools' error (importable without matplotlib, for the command line's error handling)."""

from vmp_lightning.errors import UserError


class AnalysisError(UserError, ValueError):
    """Inputs an analysis cannot use; the message names the file and what is wrong."""
