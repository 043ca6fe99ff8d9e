"""UserError: bad input that the CLI reports as one line (problem and fix) with a non-zero exit."""


class UserError(Exception):
    """A problem with the user's input or files; the message names the problem and the fix."""
