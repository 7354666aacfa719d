"""The README, the sample files and the schema describe the same keys."""

from __future__ import annotations

import configparser

from conftest import REPO

from snapshotd.config.schema import INI_SCHEMA, SERVER_KEYS
from snapshotd.notify.templates import VARIABLES

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_key_is_in_the_readme_and_the_sample() -> None:
    sample = configparser.ConfigParser(interpolation=None)
    sample.read(REPO / "snapshots.config.sample", encoding="utf-8")
    for section, keys in INI_SCHEMA.items():
        for key in keys:
            assert f"| `[{section}]` | `{key}`" in README, (section, key)
            assert sample.has_option(section, key), (section, key)
    for key in SERVER_KEYS:
        assert f"| `{key}`" in README, key


def test_every_template_variable_is_documented() -> None:
    for name in VARIABLES:
        assert f"{{{name}}}" in README, name


def test_quick_start_is_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
