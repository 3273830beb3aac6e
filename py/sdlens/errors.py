"""The one exception sdlens raises for bad input: its message is shown to the user as is."""


class SdlensError(Exception):
    """A problem with the user's input or model files, explained in one line."""
