"""snapshotd: scheduled, retention-safe snapshots for DigitalOcean and Hetzner Cloud."""

__version__ = "0.1.0"
