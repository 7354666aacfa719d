"""Runs last: no secret, nor any 6-character piece of one, in anything the suite captured."""

from __future__ import annotations

from conftest import CAPTURED, SECRETS, leaked_pieces


def test_nothing_captured_during_the_suite_contains_secret_material() -> None:
    leaks = [(where, leaked_pieces(text, SECRETS)) for where, text in CAPTURED]
    leaks = [(where, pieces) for where, pieces in leaks if pieces]
    assert not leaks, leaks[:3]


def test_the_sweep_would_catch_a_leak() -> None:
    secret = next(iter(SECRETS))
    assert leaked_pieces(f"error near {secret[3:9]}!", SECRETS)
