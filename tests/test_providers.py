"""Providers and HTTP policy against the simulator, in-process, with its fault switches."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import DO_TOKEN, HZ_TOKEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshotd.clock import Clock
from snapshotd.config import load_config
from snapshotd.config.model import LoadedConfig, RateLimit
from snapshotd.errors import ProviderError
from snapshotd.http import HttpContext, RetryPolicy
from snapshotd.pipeline import JobContext, run_job
from snapshotd.providers import UnlabelledImageCache, make_provider
from snapshotd.providers.base import PendingSnapshot, snapshot_name
from snapshotd.redact import Redactor
from snapshotd.result import Status
from snapshotd.runner import run_servers
from snapshotd.simulator import Simulator

FAST = RetryPolicy(
    connect_timeout=2, read_timeout=5, max_tries=4, backoff_base=0.05, backoff_cap=0.2
)
DAY = timedelta(days=1)


def configure(
    tmp_path: Path, sim: Simulator, servers: list[tuple[str, int, str]], ini: str = "", **extra
) -> LoadedConfig:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "snapshots.config").write_text(
        "[TIMING]\npoll_interval = 0.05\npoll_interval_max = 0.2\nsnapshot_creation_timeout = 10\n"
        "[SCHEDULER]\ntimezone = UTC\n" + ini
    )
    for provider, server_id, name in servers:
        top = "digitalocean_droplet" if provider == "digitalocean" else "hetzner_cloud_server"
        block = {
            "provider": provider,
            "id": server_id,
            "name": name,
            "api_token": DO_TOKEN if provider == "digitalocean" else HZ_TOKEN,
            "retain_last_snapshots": 3,
            "api_url": sim.api_url(provider),
            **extra,
        }
        path = tmp_path / "configs" / f"{name}.json"
        path.write_text(json.dumps({top: block}))
        path.chmod(0o600)
    return load_config(str(tmp_path / "snapshots.config"), environ={})


def context(loaded: LoadedConfig, policy: RetryPolicy = FAST) -> JobContext:
    clock = Clock()
    redactor = Redactor(loaded.secrets())
    return JobContext(
        settings=loaded.settings,
        http=HttpContext(loaded.settings.rate_limits, clock, redactor, policy=policy),
        clock=clock,
        redactor=redactor,
        legacy_cache=UnlabelledImageCache(clock.monotonic),
    )


def posts(sim: Simulator) -> list:
    return [r for r in sim.cloud.requests() if r.method == "POST"]


def test_listing_follows_every_page_on_both_providers(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    now = Clock().now()
    for n in range(1, 206):
        sim.cloud.add_snapshot(
            "digitalocean", 1001, snapshot_name("web", now - n * DAY), age=n * DAY
        )
    labels = {"managed-by": "snapshotd", "snapshotd-server": "2001"}
    for n in range(1, 56):
        sim.cloud.add_snapshot(
            "hetzner", 2001, snapshot_name("db", now - n * DAY), age=n * DAY, labels=labels
        )
    loaded = configure(
        tmp_path,
        sim,
        [("digitalocean", 1001, "web"), ("hetzner", 2001, "db")],
        retain_last_snapshots=203,
    )
    results = run_servers(loaded.servers, context(loaded))
    assert [r.status for r in results] == [Status.SUCCESS, Status.SUCCESS]
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 203
    assert len(sim.cloud.snapshots_of("hetzner", 2001)) == 56  # fewer than 203: nothing deleted
    pages = {
        r.query.get("page")
        for r in sim.cloud.requests("digitalocean")
        if r.path.endswith("/snapshots")
    }
    assert pages == {None, "2"}
    hz_pages = {r.query.get("page") for r in sim.cloud.requests("hetzner") if r.path == "/images"}
    assert hz_pages == {"1", "2"}
    assert all(
        int(r.query.get("per_page", 0)) <= 50
        for r in sim.cloud.requests("hetzner")
        if r.path == "/images"
    )


def test_a_failing_second_page_prunes_nothing(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    now = Clock().now()
    for n in range(1, 206):
        sim.cloud.add_snapshot(
            "digitalocean", 1001, snapshot_name("web", now - n * DAY), age=n * DAY
        )
    sim.cloud.add_fault("GET", r"/snapshots\?.*page=2", "status", status=502, times=50)
    loaded = configure(tmp_path, sim, [("digitalocean", 1001, "web")])
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.PARTIAL
    assert "nothing pruned" in (result.error or "")
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 206
    assert not [r for r in sim.cloud.requests() if r.method == "DELETE"]


@pytest.mark.parametrize("provider", ["digitalocean", "hetzner"])
def test_a_listing_that_never_ends_prunes_nothing(
    tmp_path: Path, sim: Simulator, provider: str
) -> None:
    token = DO_TOKEN if provider == "digitalocean" else HZ_TOKEN
    sim.cloud.add_server(provider, token, 7, "web")
    for n in range(1, 6):
        sim.cloud.add_snapshot(
            provider, 7, snapshot_name("web", Clock().now() - n * DAY), age=n * DAY
        )
    path = (
        r"/droplets/7/snapshots" if provider == "digitalocean" else r"/images\?.*snapshotd-server"
    )
    sim.cloud.add_fault("GET", path, "loop_next", times=1000)
    loaded = configure(tmp_path, sim, [(provider, 7, "web")], retain_last_snapshots=1)
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.PARTIAL
    assert "never ends" in (result.error or "")
    assert len(sim.cloud.snapshots_of(provider, 7)) == 6


def test_create_reply_lost_after_processing_yields_exactly_one_snapshot(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("POST", r"/droplets/1001/actions$", "delay_response", seconds=1.5)
    loaded = configure(tmp_path, sim, [("digitalocean", 1001, "web")])
    policy = dataclasses.replace(FAST, read_timeout=0.5)
    result = run_job(loaded.servers[0], context(loaded, policy))
    assert result.status is Status.SUCCESS
    assert result.adopted
    assert len(posts(sim)) == 1
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1


def test_hetzner_create_processed_late_is_adopted_not_repeated(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.add_fault("POST", r"/create_image$", "delay", seconds=1.0)
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")])
    policy = dataclasses.replace(FAST, read_timeout=0.3)
    result = run_job(loaded.servers[0], context(loaded, policy))
    assert result.status is Status.SUCCESS and result.adopted
    assert len(posts(sim)) == 1
    assert len(sim.cloud.snapshots_of("hetzner", 2001)) == 1


def test_create_answered_5xx_is_never_resent(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("POST", r"/droplets/1001/actions$", "status", status=503, times=5)
    loaded = configure(
        tmp_path, sim, [("digitalocean", 1001, "web")], ini="", retain_last_snapshots=1
    )
    loaded = dataclasses.replace(
        loaded, settings=dataclasses.replace(loaded.settings, snapshot_creation_timeout=1.0)
    )
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.FAILURE
    assert "not re-sent, to avoid a duplicate" in (result.error or "")
    assert len(posts(sim)) == 1
    assert sim.cloud.snapshots_of("digitalocean", 1001) == []


def test_create_refused_with_429_is_resent(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.add_fault("POST", r"/create_image$", "retry_after", seconds=1)
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")])
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.SUCCESS and not result.adopted
    assert [r.status for r in posts(sim)] == [429, 201]


def test_429_burst_waits_for_retry_after_before_the_next_request(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_fault("GET", r"/droplets/1001/snapshots", "retry_after", seconds=1, times=3)
    loaded = configure(tmp_path, sim, [("digitalocean", 1001, "web")])
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.SUCCESS
    log = sim.cloud.requests()
    for earlier, later in itertools.pairwise(log):
        if earlier.status == 429:
            assert later.at - earlier.at >= 0.99, (earlier, later)
    assert sum(1 for r in log if r.status == 429) == 3


def test_twenty_jobs_on_one_token_stay_under_60_per_minute(tmp_path: Path) -> None:
    with Simulator(snapshot_seconds=0.0) as sim:
        sim.cloud.set_rate_limit("hetzner", 60, 60.0)
        servers = []
        for n in range(20):
            sim.cloud.add_server("hetzner", HZ_TOKEN, 3000 + n, f"node{n}")
            sim.cloud.add_snapshot("hetzner", 3000 + n, f"node{n}-20260101000000")
            servers.append(("hetzner", 3000 + n, f"node{n}"))
        loaded = configure(
            tmp_path,
            sim,
            servers,
            retain_last_snapshots=1,
            ini="[RATE_LIMITS]\nhetzner = 60/minute\n[SCHEDULER]\nmax_concurrent_jobs = 20\n",
        )
        assert loaded.settings.rate_limits["hetzner"] == (RateLimit(60, 60.0),)
        started = time.monotonic()
        results = run_servers(loaded.servers, context(loaded))
        elapsed = time.monotonic() - started
        assert [r.status for r in results] == [Status.SUCCESS] * 20
        assert sim.cloud.count_status(429) == 0
        total = len(sim.cloud.requests())
        assert total > 60  # the budget really was the constraint
        assert elapsed >= (total - 60) * 0.9  # about one request a second after the first 60
        assert sum(len(sim.cloud.snapshots_of("hetzner", 3000 + n)) for n in range(20)) == 20


def test_hetzner_locked_server_is_retried_until_free(tmp_path: Path, sim: Simulator) -> None:
    server = sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    sim.cloud.set_snapshot_seconds("hetzner", 2001, 1.0)
    sim.cloud.start_action(server, "someone-else")  # another action holds the server
    sim.cloud.set_snapshot_seconds("hetzner", 2001, 0.1)
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")])
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.SUCCESS
    statuses = [r.status for r in posts(sim)]
    assert statuses[0] == 423 and statuses[-1] == 201


def test_a_snapshot_that_never_finishes_times_out_and_prunes_nothing(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.cloud.add_server("digitalocean", DO_TOKEN, 1001, "web")
    sim.cloud.add_snapshot("digitalocean", 1001, snapshot_name("web", Clock().now() - DAY), age=DAY)
    sim.cloud.set_snapshot_seconds("digitalocean", 1001, 3600)
    loaded = configure(tmp_path, sim, [("digitalocean", 1001, "web")], retain_last_snapshots=1)
    loaded = dataclasses.replace(
        loaded, settings=dataclasses.replace(loaded.settings, snapshot_creation_timeout=1.0)
    )
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.FAILURE
    assert "did not complete within 1s" in (result.error or "")
    assert len(sim.cloud.snapshots_of("digitalocean", 1001)) == 1


@pytest.mark.parametrize("kind", ["status", "malformed", "truncated", "drop"])
def test_flaky_reads_are_retried(tmp_path: Path, sim: Simulator, kind: str) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    for path in (r"^/hetzner/v1/actions/", r"^/hetzner/v1/images\?", r"^/hetzner/v1/images/\d+$"):
        sim.cloud.add_fault("*", path, kind, status=502, times=2)
    sim.cloud.add_snapshot("hetzner", 2001, snapshot_name("db", Clock().now() - DAY), age=DAY)
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")], retain_last_snapshots=1)
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.SUCCESS, result.error
    assert len(sim.cloud.snapshots_of("hetzner", 2001)) == 1
    assert len(posts(sim)) == 1


def test_protected_image_deletion_is_reported_not_forced(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "db")
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")])
    image = sim.cloud.add_snapshot(
        "hetzner",
        2001,
        "db-20260101000000",
        labels={"managed-by": "snapshotd", "snapshotd-server": "2001"},
    )
    provider = make_provider(loaded.servers[0], context(loaded).http, Clock(), loaded.settings)
    listed = provider.list_snapshots().by_id(str(image.id))
    assert listed is not None and listed.managed
    image.protected = True  # protected after the listing
    with pytest.raises(ProviderError) as caught:
        provider.delete(listed)
    assert caught.value.code == "protected"
    assert len(sim.cloud.snapshots_of("hetzner", 2001)) == 1


def test_ownership_rules_on_hetzner(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2001, "web")
    sim.cloud.add_server("hetzner", HZ_TOKEN, 2002, "web2")
    ours = {"managed-by": "snapshotd", "snapshotd-server": "2001"}
    add = sim.cloud.add_snapshot
    managed = {
        add("hetzner", 2001, "web-20260101000000").id,
        add("hetzner", 2001, "renamed later", labels=ours).id,
    }
    ignored = {
        add("hetzner", 2001, "web-20260102000000", protected=True).id: "delete-protected",
        add(
            "hetzner", 2001, "web-20260103000000", status="creating", labels=ours
        ).id: "status creating",
        add("hetzner", 2001, "web-2026010400000").id: "manual or other name",
        add("hetzner", 2001, "web2-20260104000000").id: "manual or other name",
        add("hetzner", 2001, "webshop-20260104000000").id: "manual or other name",
    }
    backup = add("hetzner", 2001, "web-20260104000000", kind="backup").id
    add("hetzner", 2002, "web-20260105000000")  # another server's, even with web's name pattern
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "web")])
    listing = make_provider(
        loaded.servers[0], context(loaded).http, Clock(), loaded.settings
    ).list_snapshots()
    assert {int(s.id) for s in listing.managed} == managed
    notes = {int(s.id): s.note for s in listing.ignored}
    assert set(notes) == set(ignored)
    for image_id, note in ignored.items():
        assert notes[image_id].startswith(note)
    assert backup not in {int(s.id) for s in listing.snapshots}  # type=snapshot excludes backups


def test_rejected_token_message_names_the_provider(tmp_path: Path, sim: Simulator) -> None:
    sim.cloud.add_server("hetzner", "other-token-0000", 2001, "db")
    loaded = configure(tmp_path, sim, [("hetzner", 2001, "db")])
    result = run_job(loaded.servers[0], context(loaded))
    assert result.status is Status.FAILURE
    assert result.error == "API token rejected by Hetzner Cloud (unauthorized)"
    assert result.requests == 1


def test_pagination_link_to_another_host_is_refused(tmp_path: Path, sim: Simulator) -> None:
    loaded = configure(tmp_path, sim, [("digitalocean", 1001, "web")])
    provider = make_provider(loaded.servers[0], context(loaded).http, Clock(), loaded.settings)
    with pytest.raises(ProviderError, match="another host"):
        provider._next_page(set(), "https://evil.example/v2/droplets/1001/snapshots?page=2")


class CannedSession:
    """Answers every request with one canned body: for fuzzing the response parsers."""

    def __init__(self, body: object) -> None:
        self.body = json.dumps(body).encode()
        self.headers: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        import requests

        response = requests.Response()
        response.status_code = 204 if method == "DELETE" else 200
        response._content = b"" if method == "DELETE" else self.body
        response.url = url
        response.request = requests.Request(method, url).prepare()
        return response

    def close(self) -> None:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "snapshots": json_values,
        "images": json_values,
        "action": json_values,
        "actions": json_values,
        "links": json_values,
        "meta": json_values,
        "image": json_values,
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(shaped, json_values))
@pytest.mark.parametrize("provider", ["digitalocean", "hetzner"])
def test_response_parsers_raise_only_provider_errors(
    tmp_path: Path, provider: str, body: object
) -> None:
    loaded = configure_static(tmp_path, provider)
    clock = Clock()
    http = HttpContext(
        {},
        clock,
        Redactor(),
        session_factory=lambda: CannedSession(body),  # type: ignore[arg-type,return-value]
        policy=dataclasses.replace(FAST, max_tries=1),
    )
    timing_settings = dataclasses.replace(loaded.settings, snapshot_creation_timeout=0.01)
    target = make_provider(loaded.servers[0], http, clock, timing_settings)
    calls = [
        target.list_snapshots,
        lambda: target.start_snapshot("web-20260101000000"),
        lambda: target.wait(PendingSnapshot("web-20260101000000", action_id="1")),
        lambda: target.find_pending("web-20260101000000"),
        target.server_name,
    ]
    for call in calls:
        with contextlib.suppress(ProviderError):
            call()


def configure_static(tmp_path: Path, provider: str) -> LoadedConfig:
    folder = tmp_path / provider
    if not (folder / "snapshots.config").exists():
        folder.mkdir(exist_ok=True)
        (folder / "configs").mkdir(exist_ok=True)
        (folder / "snapshots.config").write_text(
            "[TIMING]\npoll_interval = 0.01\npoll_interval_max = 0.01\n"
        )
        top = "digitalocean_droplet" if provider == "digitalocean" else "hetzner_cloud_server"
        (folder / "configs" / "web.json").write_text(
            json.dumps(
                {
                    top: {
                        "provider": provider,
                        "id": 7,
                        "name": "web",
                        "api_token": "tok_0000",
                        "retain_last_snapshots": 1,
                        "api_url": "http://127.0.0.1:9/api",
                    }
                }
            )
        )
    return load_config(str(folder / "snapshots.config"), environ={})
