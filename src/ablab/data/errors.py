"""The one error type of ``ablab.data``: every missing, damaged or misused dataset raises it."""

from ablab.errors import UserError


class DataError(UserError):
    """A dataset problem the user can fix: a missing or corrupt file (named in the message), a failed or
    unverifiable download, an unknown dataset name, or an impossible split/limit argument."""
