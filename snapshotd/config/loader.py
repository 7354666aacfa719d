"""Finding and loading the whole configuration: the main file and every server file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from snapshotd.config.ini import read_main_config, template_warnings
from snapshotd.config.model import LoadedConfig, Problem, ServerConfig
from snapshotd.config.servers import read_server_file
from snapshotd.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/snapshotd/snapshots.config")


def find_main_config(
    explicit: str | None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path | None, Path]:
    """The INI file to use (or None for defaults) and the folder relative paths resolve against.

    Order: ``--config``, ``$SNAPSHOTD_CONFIG``, ``./snapshots.config``,
    ``/etc/snapshotd/snapshots.config``. A file named explicitly must exist.
    """
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).absolute()
    for source, value in (
        ("--config", explicit),
        ("$SNAPSHOTD_CONFIG", env.get("SNAPSHOTD_CONFIG")),
    ):
        if value:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else here / path
            if not path.is_file():
                raise ConfigError(f"the main config named by {source} does not exist", file=path)
            return path, path.parent
    for candidate in (here / "snapshots.config", SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate, candidate.parent
    return None, here


def discover_server_files(configs_dir: Path) -> list[Path]:
    """``*.json`` files in ``configs_dir``, sorted, skipping macOS ``._*`` files."""
    if not configs_dir.is_dir():
        raise ConfigError("the configs directory does not exist", file=configs_dir)
    return sorted(
        p for p in configs_dir.glob("*.json") if p.is_file() and not p.name.startswith("._")
    )


def resolve_selected(configs_dir: Path, names: Sequence[str]) -> list[Path]:
    """Positional FILES: absolute paths as given, others inside ``configs_dir``."""
    paths: list[Path] = []
    for name in names:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = configs_dir / path
            if not path.exists() and path.suffix != ".json":
                path = path.with_name(path.name + ".json")
        paths.append(path)
    return paths


def load_config(
    explicit: str | None = None,
    selected: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> LoadedConfig:
    """Load everything. A bad main file raises; a bad server file becomes a :class:`Problem`."""
    env = os.environ if environ is None else environ
    ini_path, base_dir = find_main_config(explicit, env, cwd)
    main = read_main_config(ini_path, base_dir, env)
    settings = main.settings
    warnings = list(main.warnings)
    warnings += template_warnings(ini_path, main.telegram, "TELEGRAM")
    files = (
        resolve_selected(settings.configs_dir, selected)
        if selected
        else discover_server_files(settings.configs_dir)
    )
    servers: list[ServerConfig] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in files:
        if not path.is_file():
            problems.append(Problem(path, f"{path}: no such server file"))
            continue
        try:
            loaded = read_server_file(path, main, env)
        except ConfigError as exc:
            problems.append(Problem(path, str(exc)))
            continue
        server = loaded.server
        if server.key in seen:
            problems.append(
                Problem(
                    path,
                    f"{path}: duplicate server {server.provider} id {server.id}, already "
                    f"configured in {seen[server.key]}; remove one of the two files",
                )
            )
            continue
        seen[server.key] = path
        servers.append(server)
        warnings.extend(loaded.warnings)
    return LoadedConfig(
        settings=settings,
        servers=tuple(servers),
        problems=tuple(problems),
        warnings=tuple(warnings),
        global_secrets=main.secrets,
    )
