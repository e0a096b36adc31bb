"""User-facing errors: one line saying what is wrong and what to do, exit status 2, no traceback.

Library code raises :class:`UserError` for bad input the user can fix (a missing file, a malformed
label line, a bad recipe field). The command line prints ``error: <message>`` and exits 2.
Programming errors are never wrapped: they keep their traceback.
"""

EXIT_OK = 0
EXIT_FAILED = 1  # a check ran and found a problem (parity disagreement, gate failure)
EXIT_BAD_INPUT = 2  # input could not be used; nothing was measured


class UserError(Exception):
    """Bad input the user can fix. ``str(err)`` is the whole one-line message."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str):
        # Keep it to one line: multi-line messages get lost in CI logs.
        super().__init__(" ".join(str(message).split("\n")))
