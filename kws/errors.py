"""One-line user errors.

Every layer raises KwsError for bad input (a missing file, a wrong flag value, an impossible budget); the CLI
prints its message as a single line and exits non-zero. The message names the file or flag and says what to do.
"""


class KwsError(Exception):
    """A user-facing error whose message is one line that names the culprit and the fix."""

    exit_code = 2


class BudgetExceeded(KwsError):
    """A model does not fit a resource limit (flash, RAM, params, MACs)."""

    exit_code = 3
