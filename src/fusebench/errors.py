"""The user-facing error type, apart from the config schema so the CLI can catch it without importing torch.

``fusebench.config`` builds its schema from the dataset and encoder registries, which import
torch; ``fusebench --help`` and the error boundary of every command need only this class.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or override that cannot be used, explained in one paragraph."""
