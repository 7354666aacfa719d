"""snapshotd's performance figures, measured on the built-in simulator.

    python benchmarks/run.py                       # everything, about 9 minutes on 2 cores
    python benchmarks/run.py --only walltime --scale 1   # the literal 3 s snapshots
    python benchmarks/run.py --only requests,daemon
    python benchmarks/run.py --compare "OTHER-TOOL --config-dir {config_dir}"

Prints a Markdown table (figure, median, target) and writes the raw numbers as JSON
(benchmarks/results/latest.json unless --json says otherwise). Every figure is the median of
--runs runs, except the two longest (wall time at max_concurrent_jobs=1, one run; the rate-limit
budget, --runs minus one). The real ``snapshotd`` process is measured; only the
cloud is simulated. Machines are shared and noisy: read ratios and medians, not single values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from snapshotd.providers.base import snapshot_name
from snapshotd.simulator import Simulator

TOKENS = {"digitalocean": "bench-do-token-000000", "hetzner": "bench-hz-token-000000"}
TOP = {"digitalocean": "digitalocean_droplet", "hetzner": "hetzner_cloud_server"}
UNLIMITED = "[RATE_LIMITS]\ndigitalocean = 1000000/minute\nhetzner = 1000000/hour\n"
MAX_RSS = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code, file=sys.stderr)"
)


@dataclass
class Row:
    figure: str
    value: str
    target: str
    verdict: str
    raw: dict[str, Any] = field(default_factory=dict)


# -- fleets and configs --------------------------------------------------------


def build_fleet(
    sim: Simulator, provider: str, servers: int, per_server: int, strangers: int
) -> None:
    """``servers`` configured servers with ``per_server`` managed snapshots each, plus
    ``strangers`` snapshots on servers nobody configured."""
    cloud = sim.cloud
    sim.cloud.set_rate_limit(provider, 1_000_000, 3600)
    now = datetime.now(timezone.utc)
    token = TOKENS[provider]
    for n in range(servers):
        cloud.add_server(provider, token, 10_000 + n, f"node{n}")
        labels = {"managed-by": "snapshotd", "snapshotd-server": str(10_000 + n)}
        for k in range(per_server):
            age = timedelta(days=k + 1)
            cloud.add_snapshot(
                provider,
                10_000 + n,
                snapshot_name(f"node{n}", now - age),
                age=age,
                labels=labels if provider == "hetzner" else None,
            )
    for k in range(strangers):
        server_id = 90_000 + k // 10
        if (provider, server_id) not in cloud.servers:
            cloud.add_server(provider, token, server_id, f"other{server_id}")
        cloud.add_snapshot(provider, server_id, f"manual-{k}", age=timedelta(days=k % 30 + 1))


def write_config(
    folder: Path,
    sim: Simulator,
    provider: str,
    servers: int,
    *,
    retain: int,
    concurrency: int,
    poll: float,
    poll_max: float | None = None,
    extra_ini: str = UNLIMITED,
) -> Path:
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    main = folder / "snapshots.config"
    main.write_text(
        f"[TIMING]\npoll_interval = {poll}\npoll_interval_max = {poll_max or poll * 2}\n"
        "snapshot_creation_timeout = 600\n"
        f"[SCHEDULER]\ntimezone = UTC\nmax_concurrent_jobs = {concurrency}\n" + extra_ini
    )
    for n in range(servers):
        path = folder / "configs" / f"node{n}.json"
        path.write_text(
            json.dumps(
                {
                    TOP[provider]: {
                        "provider": provider,
                        "id": 10_000 + n,
                        "name": f"node{n}",
                        "api_token": TOKENS[provider],
                        "retain_last_snapshots": retain,
                        "api_url": sim.api_url(provider),
                    }
                }
            )
        )
        path.chmod(0o600)
    return main


def run_once(
    main: Path, command: list[str] | None = None, env: dict[str, str] | None = None
) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one ``--once`` run (or another command)."""
    argv = command or [sys.executable, "-m", "snapshotd", "--once", "--config", str(main)]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MAX_RSS, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=main.parent,
    )
    elapsed = time.monotonic() - started
    rss, code = done.stderr.strip().splitlines()[-1].split()
    return elapsed, int(rss), int(code)


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- the figures ------------------------------------------------------------------


def requests_per_server(provider: str, runs: int) -> Row:
    servers, per_server, strangers = 200, 10, 300
    per_run: list[float] = []
    breakdowns: list[dict[str, float]] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, Simulator(snapshot_seconds=0.2) as sim:
            build_fleet(sim, provider, servers, per_server, strangers)
            main = write_config(
                Path(tmp), sim, provider, servers, retain=per_server, concurrency=16, poll=0.1
            )
            _, _, code = run_once(main)
            assert code == 0, f"--once failed with {code}"
            log = sim.cloud.requests(provider)
            per_run.append(len(log) / servers)
            counts: dict[str, float] = {}
            for entry in log:
                kind = _kind(provider, entry.method, entry.path, entry.query)
                counts[kind] = counts.get(kind, 0) + 1 / servers
            breakdowns.append(counts)
    value = median(per_run)
    kinds = sorted({k for b in breakdowns for k in b})
    typical = {k: round(median([b.get(k, 0.0) for b in breakdowns]), 3) for k in kinds}
    detail = ", ".join(f"{k} {v:.2f}" for k, v in typical.items())
    own_pages = typical.get("own list page", 0)
    structural = (
        typical.get("create", 0) <= 1.0
        and own_pages <= 1.0
        and typical.get("account-wide page", 0) <= 0.05
        and set(typical) <= {"create", "poll", "own list page", "delete", "account-wide page"}
    )
    return Row(
        f"Requests per server per run, {provider} (200 servers, 2,000 snapshots + 300 foreign)",
        f"{value:.2f} ({detail})",
        "create + polls + 1 list page + deletions; no account-wide listing per server",
        "met" if structural else "MISSED",
        {"per_run": per_run, "breakdown": breakdowns},
    )


def _kind(provider: str, method: str, path: str, query: dict[str, str]) -> str:
    if method == "POST":
        return "create"
    if method == "DELETE":
        return "delete"
    if "/actions/" in path or path.startswith("/actions"):
        return "poll"
    if _account_wide(provider, path, query):
        return "account-wide page"
    if path.endswith("/snapshots") or path == "/images":
        return "own list page"
    return f"other {method} {path.split('/')[1]}"


def _account_wide(provider: str, path: str, query: dict[str, str]) -> bool:
    if provider == "digitalocean":
        return path == "/snapshots"
    return path == "/images" and "snapshotd-server" not in query.get("label_selector", "")


def wall_time(concurrency: int, runs: int, scale: float, rss: list[int]) -> Row:
    """--once over 100 servers. Polls every tenth of the snapshot time, so completion is seen
    within 10 % of it (with the defaults, 5 s doubling to 60 s, detection can lag by a minute)."""
    servers, seconds = 100, 3.0 * scale
    ideal = math.ceil(servers / concurrency) * seconds
    timings: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, Simulator(snapshot_seconds=seconds) as sim:
            build_fleet(sim, "digitalocean", servers, 1, 0)
            main = write_config(
                Path(tmp),
                sim,
                "digitalocean",
                servers,
                retain=1,
                concurrency=concurrency,
                poll=seconds / 10,
                poll_max=seconds / 10,
            )
            elapsed, peak, code = run_once(main)
            assert code == 0, f"--once failed with {code}"
            timings.append(elapsed)
            rss.append(peak)
    value = median(timings)
    ratio = value / ideal
    return Row(
        f"Wall time of --once, 100 servers, {seconds:g} s snapshots, "
        f"max_concurrent_jobs={concurrency}",
        f"{value:.1f} s = {ratio:.2f}× ideal ({ideal:g} s)",
        "≤ 1.25× ceil(100/c) × snapshot time",
        "met" if ratio <= 1.25 else "MISSED",
        {"runs": timings, "ideal": ideal, "ratio": ratio, "snapshot_seconds": seconds},
    )


def rate_limit_budget(runs: int) -> Row:
    servers, limit = 300, 600  # Hetzner's 3,600/hour scaled to 600/minute (ten times faster)
    timings: list[float] = []
    rejected: list[int] = []
    totals: list[int] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, Simulator(snapshot_seconds=0.05) as sim:
            build_fleet(sim, "hetzner", servers, 1, 0)
            sim.cloud.set_rate_limit("hetzner", limit, 60.0)
            main = write_config(
                Path(tmp),
                sim,
                "hetzner",
                servers,
                retain=1,
                concurrency=16,
                poll=0.05,
                extra_ini=f"[RATE_LIMITS]\nhetzner = {limit}/minute\n",
            )
            elapsed, _, code = run_once(main)
            assert code == 0, f"--once failed with {code}"
            timings.append(elapsed)
            rejected.append(sim.cloud.count_status(429))
            totals.append(len(sim.cloud.requests()))
    floor = max(0.0, (median([float(t) for t in totals]) - limit) / (limit / 60))
    return Row(
        "Rate-limit budget: 300 Hetzner servers on one token, 3,600/h scaled to 600/min",
        f"{max(rejected)} × 429 of {median([float(t) for t in totals]):.0f} requests; "
        f"{median(timings):.0f} s (budget floor {floor:.0f} s)",
        "all complete, zero 429",
        "met" if max(rejected) == 0 else "MISSED",
        {"runs": timings, "429": rejected, "requests": totals, "floor_seconds": floor},
    )


def daemon_figures(runs: int, idle_seconds: float) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        main = root / "snapshots.config"
        main.write_text("[SCHEDULER]\ntimezone = UTC\n")
        for n in range(1000):
            path = root / "configs" / f"s{n}.json"
            path.write_text(
                json.dumps(
                    {
                        "hetzner_cloud_server": {
                            "provider": "hetzner",
                            "id": 10_000 + n,
                            "name": f"s{n}",
                            "api_token": "bench-token-00",
                            "retain_last_snapshots": 3,
                            "schedule": f"{n % 60} {n % 24} * * *",
                        }
                    }
                )
            )
            path.chmod(0o600)
        starts: list[float] = []
        reloads: list[float] = []
        rss: list[int] = []
        cpu: list[float] = []
        for attempt in range(runs):
            sock_path = root / f"notify{attempt}.sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(str(sock_path))
            listener.settimeout(30)
            began = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-m", "snapshotd", "--config", str(main)],
                env={**os.environ, "NOTIFY_SOCKET": str(sock_path)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_ready(listener)
                starts.append(time.monotonic() - began)
                time.sleep(0.5)
                began = time.monotonic()
                process.send_signal(signal.SIGHUP)
                _wait_ready(listener)
                reloads.append(time.monotonic() - began)
                if attempt == 0:
                    time.sleep(2)
                    for _ in range(3):
                        before = _cpu_seconds(process.pid)
                        time.sleep(idle_seconds / 3)
                        cpu.append((_cpu_seconds(process.pid) - before) / (idle_seconds / 3) * 100)
                    rss.append(_rss_kib(process.pid))
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
                listener.close()
    return [
        Row(
            "Daemon, 1,000 server files: start until READY",
            f"{median(starts):.2f} s",
            "≤ 2 s",
            "met" if median(starts) <= 2 else "MISSED",
            {"runs": starts},
        ),
        Row(
            "Daemon, 1,000 server files: SIGHUP until READY",
            f"{median(reloads):.2f} s",
            "≤ 1 s",
            "met" if median(reloads) <= 1 else "MISSED",
            {"runs": reloads},
        ),
        Row(
            "Daemon, 1,000 server files: idle RSS",
            f"{rss[0] / 1024:.0f} MB",
            "≤ 60 MB",
            "met" if rss[0] / 1024 <= 60 else "MISSED",
            {"kib": rss},
        ),
        Row(
            f"Daemon, 1,000 server files: idle CPU (median of 3 × {idle_seconds / 3:.0f} s)",
            f"{median(cpu):.2f} % of a core",
            "≤ 0.5 %",
            "met" if median(cpu) <= 0.5 else "MISSED",
            {"percent": cpu},
        ),
    ]


def _wait_ready(listener: socket.socket) -> None:
    while "READY=1" not in listener.recv(65536).decode("latin-1"):
        pass


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def compare(template: str, runs: int, servers: int) -> list[Row]:
    """snapshotd and another command on identical fleets: requests per server and wall time."""
    rows: list[Row] = []
    for label, command in (("snapshotd --once", None), (template, template)):
        per_server: list[float] = []
        timings: list[float] = []
        codes: list[int] = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp, Simulator(snapshot_seconds=1.0) as sim:
                for provider in ("digitalocean", "hetzner"):
                    build_fleet(sim, provider, servers, 10, 30)
                folder = Path(tmp)
                main = write_config(
                    folder, sim, "digitalocean", servers, retain=10, concurrency=4, poll=0.5
                )
                _add_hetzner(folder, sim, servers)
                argv = None
                if command is not None:
                    argv = shlex.split(
                        command.format(
                            config_dir=folder,
                            config=main,
                            configs_dir=folder / "configs",
                            do_url=sim.api_url("digitalocean"),
                            hetzner_url=sim.api_url("hetzner"),
                        )
                    )
                env = {
                    "SNAPSHOTD_SIM_DIGITALOCEAN_URL": sim.api_url("digitalocean"),
                    "SNAPSHOTD_SIM_HETZNER_URL": sim.api_url("hetzner"),
                }
                elapsed, _, code = run_once(main, argv, env)
                timings.append(elapsed)
                codes.append(code)
                per_server.append(len(sim.cloud.requests()) / (2 * servers))
        rows.append(
            Row(
                f"Side by side: {label} ({2 * servers} servers, 1 s snapshots)",
                f"{median(per_server):.2f} requests/server, {median(timings):.1f} s",
                "—",
                f"exit codes {sorted(set(codes))}",
                {"requests_per_server": per_server, "seconds": timings, "exit": codes},
            )
        )
    return rows


def _add_hetzner(folder: Path, sim: Simulator, servers: int) -> None:
    for n in range(servers):
        path = folder / "configs" / f"hz{n}.json"
        path.write_text(
            json.dumps(
                {
                    TOP["hetzner"]: {
                        "provider": "hetzner",
                        "id": 10_000 + n,
                        "name": f"node{n}",
                        "api_token": TOKENS["hetzner"],
                        "retain_last_snapshots": 10,
                        "api_url": sim.api_url("hetzner"),
                    }
                }
            )
        )
        path.chmod(0o600)


# -- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1 / 3,
        help="time scale of the wall-time figure's 3 s snapshots: the default (1 s snapshots) "
        "keeps the whole script under 10 minutes; --scale 1 is the literal 3 s (~15 minutes)",
    )
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument(
        "--only",
        default="requests,walltime,ratelimit,daemon",
        help="comma-separated: requests, walltime, ratelimit, daemon",
    )
    parser.add_argument(
        "--compare",
        metavar="CMD",
        help="another tool's command; placeholders: "
        "{config_dir} {config} {configs_dir} {do_url} {hetzner_url}",
    )
    parser.add_argument("--compare-servers", type=int, default=10, help="servers per provider")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "latest.json"
    )
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    rows: list[Row] = []
    rss: list[int] = []
    steps: list[tuple[str, Callable[[], list[Row]]]] = [
        (
            "requests",
            lambda: [requests_per_server(p, args.runs) for p in ("digitalocean", "hetzner")],
        ),
        # c=1 alone is 100 snapshots back to back (300 s ideal), so it is measured once
        (
            "walltime",
            lambda: [wall_time(c, args.runs if c > 1 else 1, args.scale, rss) for c in (1, 4, 16)],
        ),
        ("ratelimit", lambda: [rate_limit_budget(max(1, args.runs - 1))]),
        ("daemon", lambda: daemon_figures(args.runs, args.idle_seconds)),
    ]
    started = time.monotonic()
    for name, step in steps:
        if name in wanted:
            print(f"measuring {name}…", file=sys.stderr, flush=True)
            rows.extend(step())
    if rss:
        peak = max(rss) / 1024
        rows.append(
            Row(
                "Peak RSS of --once over 100 servers",
                f"{peak:.0f} MB",
                "reported",
                "—",
                {"kib": rss},
            )
        )
    if args.compare:
        rows.extend(compare(args.compare, args.runs, args.compare_servers))
    print("| figure | median | target | verdict |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row.figure} | {row.value} | {row.target} | {row.verdict} |")
    print(
        f"\n{args.runs} run(s) per figure; total {time.monotonic() - started:.0f} s; "
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(timezone.utc).isoformat(),
                "runs": args.runs,
                "scale": args.scale,
                "rows": [row.__dict__ for row in rows],
            },
            indent=2,
        )
    )
    return 0 if all(row.verdict != "MISSED" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
