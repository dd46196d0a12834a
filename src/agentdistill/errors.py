"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (bad value, missing file, unreachable endpoint): no traceback."""


class EndpointError(UserError):
    """An OpenAI-compatible endpoint could not be reached or kept failing after retries."""
