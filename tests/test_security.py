"""Security sweep of the code itself: TLS stays on, no shell, plain-http URLs are flagged."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, write_minimal_config

from snapshotd.config import load_config
from snapshotd.config.schema import plain_http_warning

PACKAGE = REPO / "snapshotd"


def package_sources() -> list[tuple[Path, str]]:
    return [(path, path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))]


def test_tls_verification_is_never_disabled() -> None:
    for path, text in package_sources():
        assert not re.search(
            r"verify\s*=\s*False|\.verify\s*=|CERT_NONE|_create_unverified_context", text
        ), path


def test_no_shell_is_ever_invoked() -> None:
    for path, text in package_sources():
        assert not re.search(
            r"shell\s*=\s*True|os\.system\(|os\.popen\(|import subprocess|commands\.", text
        ), path


def test_plain_http_to_other_hosts_is_flagged_loopback_is_not() -> None:
    assert plain_http_warning("x", "http://127.0.0.1:8080/v2") is None
    assert plain_http_warning("x", "http://localhost/hook") is None
    assert plain_http_warning("x", "http://[::1]:9/hook") is None
    assert plain_http_warning("x", "https://api.example") is None
    warning = plain_http_warning("webhook.url", "http://user:pw@hooks.example:8080/x")
    assert warning == (
        "webhook.url uses plain http:// to hooks.example; credentials and data travel unencrypted"
    )


def test_config_warns_about_plain_http_urls(tmp_path: Path) -> None:
    main = write_minimal_config(
        tmp_path,
        "[TELEGRAM]\napi_url = http://tg-proxy.lan\n",
        api_url="http://proxy.internal/v2",
        webhook={"enabled": True, "url": "http://hooks.example/x"},
    )
    warnings = "\n".join(load_config(str(main), environ={}).warnings)
    assert "[TELEGRAM] api_url uses plain http:// to tg-proxy.lan" in warnings
    assert "digitalocean_droplet.api_url uses plain http:// to proxy.internal" in warnings
    assert "digitalocean_droplet.webhook.url uses plain http:// to hooks.example" in warnings
