"""The training side's bad config, at the bottom of training/'s layers: every piece (config, the Lightning
leaves, fit, train) raises it without importing the module that reads the config."""
from runkit.errors import BadInput


class ConfigError(BadInput, ValueError):
    """A config file or binding that cannot be used; the message names it."""
