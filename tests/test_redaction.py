"""Secrets are masked in full by one filter on every handler, and by redact() for error texts."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshotd.logs import setup_logging
from snapshotd.redact import MASK, Redactor

SECRET = "tok_9Qx2Lm7Rv4Kp8Zn3"


def test_known_secrets_and_secret_shapes_are_masked() -> None:
    redactor = Redactor([SECRET])
    text = redactor.redact(
        f"token {SECRET}; Authorization: Bearer abc.def-123; "
        "https://api.telegram.org/bot123:AAxyz/sendMessage; https://user:pw@hooks.example/x"
    )
    assert text == (
        "token ***; Authorization: *** ***; "
        "https://api.telegram.org/bot***/sendMessage; https://***@hooks.example/x"
    )


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=8, max_size=40).filter(lambda s: s.strip() == s),
    st.text(max_size=30),
    st.text(max_size=30),
)
def test_a_configured_secret_never_survives_redaction(secret, before, after) -> None:
    assert secret not in Redactor([secret]).redact(before + secret + after)


def test_one_filter_masks_message_args_and_exceptions_on_every_handler(
    tmp_path: Path, capsys
) -> None:
    redactor = Redactor([SECRET])
    logger = setup_logging(redactor, log_path=tmp_path / "logs" / "s.log", verbose=True)
    child = logging.getLogger("snapshotd.test")
    child.info("arg %s", SECRET)
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        child.exception("failed", extra={"error": f"detail {SECRET}"})
    for handler in logger.handlers:
        handler.flush()
    stderr = capsys.readouterr().err
    file_text = (tmp_path / "logs" / "s.log").read_text()
    for text in (stderr, file_text):
        assert SECRET not in text and SECRET[:6] not in text
        assert "arg ***" in text and "boom ***" in text
    records = [json.loads(line) for line in file_text.splitlines()]
    assert records[1]["error"] == "detail ***"
    assert all(len(h.filters) == 1 for h in logger.handlers)


def test_reloaded_secrets_are_masked_too() -> None:
    redactor = Redactor(["first-secret-1"])
    redactor.add(["second-secret-2"])
    assert redactor.redact("first-secret-1 second-secret-2") == "*** ***"


def test_stream_output_uses_the_same_filter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    from snapshotd.redact import RedactingFilter

    handler.addFilter(RedactingFilter(Redactor([SECRET])))
    log = logging.getLogger("plain")
    log.addHandler(handler)
    log.warning("%s", SECRET)
    assert stream.getvalue().strip() == MASK
