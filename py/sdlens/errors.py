"""The one exception sdlens raises for bad input: its message is shown to the user as is."""


class SdlensError(Exception):
    """A problem with the user's input or model files, explained in one line."""


def as_typed(value, longest: int = 30) -> str:
    """A bad value as the user typed it, for a message: not “abc”, or but it is empty. Never Python's
    repr ('abc', nan, None): a message quotes what was typed, in the learner's words."""
    text = "" if value is None else str(value).strip()
    if not text:
        return "but it is empty"
    if len(text) > longest:
        text = text[:longest] + "…"
    return f"not “{text}”"
