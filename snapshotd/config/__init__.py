"""Configuration: ``snapshots.config`` (INI) plus one JSON file per server."""

from snapshotd.config.loader import load_config
from snapshotd.config.model import (
    LoadedConfig,
    Problem,
    RetentionPolicy,
    ServerConfig,
    Settings,
    TelegramTarget,
    WebhookEndpoint,
    WebhookTarget,
)

__all__ = [
    "LoadedConfig",
    "Problem",
    "RetentionPolicy",
    "ServerConfig",
    "Settings",
    "TelegramTarget",
    "WebhookEndpoint",
    "WebhookTarget",
    "load_config",
]
