"""The one error type of scratch_ae.data."""


class DataError(ValueError):
    """Bad data or a bad data argument: a missing, truncated or corrupt file,
    an unknown dataset name, an out-of-range corruption level, ...

    The message is one line that names the file or argument at fault and says
    what was expected, so it reads well without a traceback.
    """


class DownloadError(DataError):
    """No mirror gave a good copy of a file; `failures` lists "url (reason)" per mirror."""

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)
