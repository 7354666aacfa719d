"""Notifications: Telegram, webhooks and monitoring pings."""

from snapshotd.notify.dispatch import Notifier

__all__ = ["Notifier"]
