"""`UserError`: bad input the user can fix (a file, a setting, a dataset layout, a run that went wrong). The command
line prints its message alone, without a traceback, and exits with 2. Each kind keeps the built-in base it had
(`ValueError`, `FileNotFoundError`, ...), so code that catches those still does.

The bottom of the package (no imports): the entry point catches these without importing torch or Lightning.
"""


class UserError(Exception):
    """The message says what is wrong and what to do; no traceback is shown for it."""


class ConfigError(UserError, ValueError):
    """A setting that cannot be taken as given (a linked setting set by hand, a mistyped command)."""
