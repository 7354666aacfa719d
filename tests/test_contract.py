"""The providers' OpenAPI documents are the contract: our requests and the simulator's
responses must validate against them."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from conftest import DO_TOKEN, HZ_TOKEN, SPECS

from snapshotd.clock import Clock
from snapshotd.config import load_config
from snapshotd.http import HttpContext, RetryPolicy
from snapshotd.pipeline import JobContext, run_job
from snapshotd.providers import UnlabelledImageCache, make_provider
from snapshotd.providers.base import snapshot_name
from snapshotd.redact import Redactor
from snapshotd.result import Status
from snapshotd.simulator import Simulator

openapi_core = pytest.importorskip("openapi_core")
from openapi_core import Config, OpenAPI  # noqa: E402
from openapi_core.contrib.requests import (  # noqa: E402
    RequestsOpenAPIRequest,
    RequestsOpenAPIResponse,
)

OFFICIAL = {
    "digitalocean": "https://api.digitalocean.com/v2",
    "hetzner": "https://api.hetzner.cloud/v1",
}
DOCUMENTS = {
    "digitalocean": SPECS / "digitalocean" / "specification" / "DigitalOcean-public.v2.yaml",
    "hetzner": SPECS / "hetzner" / "openapi" / "hcloud.json",
}
# The simulator answers these with only the fields snapshotd reads (the full droplet and
# server objects have dozens of required fields); their requests are still validated.
PARTIAL_RESPONSES = {("GET", "droplets/{id}"), ("GET", "servers/{id}")}

pytestmark = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"contract documents not found at {SPECS}"
)


class RecordingSession(requests.Session):
    exchanges: list[tuple[requests.PreparedRequest, requests.Response]]

    def __init__(self) -> None:
        super().__init__()
        self.exchanges = []

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[no-untyped-def, override]
        response = super().send(request, **kwargs)
        self.exchanges.append((request, response))
        return response


@pytest.fixture(scope="module")
def contracts() -> dict[str, object]:
    config = Config(spec_validator_cls=None)
    hetzner = json.loads(DOCUMENTS["hetzner"].read_text())
    # The document writes nullable objects as {"allOf": [$ref], "nullable": true}. Under
    # OpenAPI 3.0, nullable without a sibling "type" has no effect, so validators reject the
    # null the real API sends (action.error while running, image.created_from). Same schema,
    # spelled so the validator honours nullable:
    schemas = hetzner["components"]["schemas"]
    for owner, field in (("action", "error"), ("image", "created_from")):
        target = schemas[owner]["properties"][field]["allOf"][0]["$ref"].rsplit("/", 1)[1]
        schemas[owner]["properties"][field] = {
            **schemas[target],
            "type": "object",
            "nullable": True,
        }
    return {
        "digitalocean": OpenAPI.from_file_path(str(DOCUMENTS["digitalocean"]), config=config),
        "hetzner": OpenAPI.from_dict(hetzner, config=config),
    }


def official(
    prepared: requests.PreparedRequest, sim: Simulator
) -> tuple[str, requests.PreparedRequest]:
    url = prepared.url or ""
    for provider in OFFICIAL:
        prefix = sim.api_url(provider)
        if url.startswith(prefix):
            copy = prepared.copy()
            copy.url = OFFICIAL[provider] + url[len(prefix) :]
            return provider, copy
    raise AssertionError(f"request to an unexpected URL: {url}")


def test_requests_and_simulator_responses_fit_the_contract(
    tmp_path: Path, sim: Simulator, contracts: dict[str, object]
) -> None:
    day = timedelta(days=1)
    now = Clock().now()
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    for n in range(1, 205):
        sim.cloud.add_snapshot(
            "digitalocean", 1001, snapshot_name("web", now - n * day), age=n * day
        )
    for n in range(1, 54):
        sim.cloud.add_snapshot(
            "hetzner",
            2001,
            snapshot_name("db", now - n * day),
            age=n * day,
            labels={"managed-by": "snapshotd", "snapshotd-server": "2001"},
        )
    sim.cloud.add_snapshot("hetzner", 2001, snapshot_name("db", now - 300 * day), age=300 * day)
    (tmp_path / "configs").mkdir()
    (tmp_path / "snapshots.config").write_text(
        "[TIMING]\npoll_interval = 0.05\npoll_interval_max = 0.1\n[SCHEDULER]\ntimezone = UTC\n"
    )
    for provider, top, server_id, name, token in [
        ("digitalocean", "digitalocean_droplet", 1001, "web", DO_TOKEN),
        ("hetzner", "hetzner_cloud_server", 2001, "db", HZ_TOKEN),
    ]:
        (tmp_path / "configs" / f"{name}.json").write_text(
            json.dumps(
                {
                    top: {
                        "provider": provider,
                        "id": server_id,
                        "name": name,
                        "api_token": token,
                        "retain_last_snapshots": 2,
                        "api_url": sim.api_url(provider),
                    }
                }
            )
        )
    loaded = load_config(str(tmp_path / "snapshots.config"), environ={})
    session = RecordingSession()
    clock = Clock()
    http = HttpContext(
        loaded.settings.rate_limits,
        clock,
        Redactor(),
        session_factory=lambda: session,
        policy=RetryPolicy(backoff_base=0.01),
    )
    ctx = JobContext(
        settings=loaded.settings,
        http=http,
        clock=clock,
        redactor=Redactor(),
        legacy_cache=UnlabelledImageCache(clock.monotonic),
    )
    for server in loaded.servers:
        assert run_job(server, ctx).status is Status.SUCCESS
        provider = make_provider(server, http, clock, loaded.settings)
        provider.server_name()
        provider.find_pending("not-there")
    # a scheduled run lists before it creates; a Hetzner create after a lost reply adopts
    slot_ctx = dataclasses.replace(ctx)
    assert run_job(loaded.servers[0], slot_ctx, slot=now).status is Status.SKIPPED

    seen: set[tuple[str, str, int]] = set()
    for prepared, response in session.exchanges:
        provider, request = official(prepared, sim)
        spec = contracts[provider]
        openapi_request = RequestsOpenAPIRequest(request)
        spec.validate_request(openapi_request)  # type: ignore[attr-defined]
        path = (request.path_url or "").split("?")[0]
        template = _template(path)
        if (request.method, template) not in PARTIAL_RESPONSES:
            spec.validate_response(openapi_request, RequestsOpenAPIResponse(response))  # type: ignore[attr-defined]
        seen.add((request.method or "", template, response.status_code))
    expected = {
        ("POST", "droplets/{id}/actions", 201),
        ("GET", "actions/{id}", 200),
        ("GET", "droplets/{id}/snapshots", 200),
        ("DELETE", "snapshots/{id}", 204),
        ("GET", "droplets/{id}/actions", 200),
        ("POST", "servers/{id}/actions/create_image", 201),
        ("GET", "images", 200),
        ("DELETE", "images/{id}", 204),
    }
    assert expected <= seen, expected - seen


def test_a_malformed_create_body_is_rejected_by_the_contract(contracts: dict[str, object]) -> None:
    """The validator is live: a wrong snapshot type fails (so the test above can fail too)."""
    from openapi_core.validation.request.exceptions import InvalidRequestBody

    request = requests.Request(
        "POST",
        "https://api.hetzner.cloud/v1/servers/42/actions/create_image",
        json={"type": "snapshotx"},
        headers={"Authorization": "Bearer x"},
    ).prepare()
    with pytest.raises(InvalidRequestBody):
        contracts["hetzner"].validate_request(RequestsOpenAPIRequest(request))  # type: ignore[attr-defined]


def _template(path: str) -> str:
    parts = [p for p in path.split("/") if p and p not in ("v1", "v2")]
    return "/".join("{id}" if p.isdigit() else p for p in parts)
