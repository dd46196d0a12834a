"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (bad value, missing file, unreachable endpoint): no traceback."""


class EndpointError(UserError):
    """An OpenAI-compatible endpoint could not be reached or kept failing after retries."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), for one-line user errors."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
