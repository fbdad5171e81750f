"""One exception type for every problem a user can fix (bad config, missing asset, bad input file).

The CLI prints such errors as one line, without a traceback: the message must name the file, key,
row or field at fault and say what to do.
"""


class VitalStudyError(Exception):
    """A problem with the user's inputs or environment, explained in the message."""


class ConfigError(VitalStudyError):
    """An invalid configuration value; the message names the key."""


class MissingAssetError(VitalStudyError):
    """A weight file, data set or other asset that is absent; the message says how to supply it."""
