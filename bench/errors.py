"""Errors meant for the user: one line that names the thing and the fix, exit status 2."""


class UserError(Exception):
    """Bad input or an unsupported request. The CLI prints `error: <message>` and exits 2."""

    exit_code = 2


class Unsupported(UserError):
    """The request is valid but cannot run here (framework missing, precision on this device...)."""

    exit_code = 3


class NoSpace(UserError):
    """The disk filled while the store was being written: nothing half-written is left, the last
    good file stands, and the same command resumes once there is room. Exit status 1, as a run
    that could not finish."""

    exit_code = 1
