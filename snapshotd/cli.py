"""Command line: argument parsing, exit codes, dispatch. Nothing else."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from snapshotd import __version__
from snapshotd.clock import Clock
from snapshotd.config import load_config
from snapshotd.errors import ConfigError
from snapshotd.logs import setup_logging
from snapshotd.redact import Redactor

EX_CONFIG = 78  # sysexits.h: configuration error; systemd unit does not restart on it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapshotd",
        description="Scheduled snapshots of DigitalOcean droplets and Hetzner Cloud servers, "
        "with retention and notifications. Without a mode flag it runs resident (systemd).",
    )
    parser.add_argument("--config", metavar="PATH", help="main config file (snapshots.config)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output on stderr")
    parser.add_argument("--version", action="version", version=f"snapshotd {__version__}")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--once", action="store_true", help="run the selected servers now, then exit"
    )
    modes.add_argument(
        "--dry-run",
        action="store_true",
        help="list and plan only (GET requests only); print the plan",
    )
    modes.add_argument("--check", action="store_true", help="validate the configuration and exit")
    modes.add_argument("--status", action="store_true", help="show the run history and exit")
    modes.add_argument("--demo", action="store_true", help="run against the built-in simulator")
    parser.add_argument("--online", action="store_true", help="with --check: verify tokens and ids")
    parser.add_argument("--json", action="store_true", help="with --status: print JSON")
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILES",
        help="with --once/--dry-run: server files in configs_dir",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into head(1) and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.files and not (args.once or args.dry_run):
        parser.error("server FILES go with --once or --dry-run")
    if args.online and not args.check:
        parser.error("--online goes with --check")
    if args.json and not args.status:
        parser.error("--json goes with --status")
    if args.demo:
        from snapshotd.demo import run_demo

        return run_demo(verbose=args.verbose)
    try:
        loaded = load_config(args.config, args.files if (args.once or args.dry_run) else ())
    except ConfigError as exc:
        sys.stderr.write(f"snapshotd: configuration error: {exc}\n")
        if args.once or args.dry_run or args.check or args.status:
            return 1
        return EX_CONFIG
    redactor = Redactor(loaded.secrets())
    if args.check:
        from snapshotd.check import run_check

        return run_check(loaded, sys.stdout, online=args.online, redactor=redactor)
    if args.status:
        from snapshotd.status import run_status

        return run_status(loaded, sys.stdout, as_json=args.json)
    settings = loaded.settings
    setup_logging(
        redactor,
        log_path=settings.log_path,
        file_level=settings.log_level,
        verbose=args.verbose,
        max_bytes=settings.log_max_bytes,
        backup_count=settings.log_backup_count,
    )
    if args.once or args.dry_run:
        from snapshotd.runner import make_context, run_once

        for warning in loaded.warnings:
            sys.stderr.write(f"snapshotd: warning: {redactor.redact(warning)}\n")
        ctx = make_context(settings, redactor, Clock(), with_history=not args.dry_run)
        return run_once(loaded, ctx, dry_run=args.dry_run)
    from snapshotd.daemon import run_daemon

    return run_daemon(args.config, loaded, redactor, verbose=args.verbose)
