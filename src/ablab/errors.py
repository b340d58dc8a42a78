"""The one base class of user-facing errors: the CLI prints its message and exits with code 2, no traceback."""


class UserError(Exception):
    """A mistake in the user's input (spec, file, flag, data); the message names the place and what was
    expected."""
