"""The resident process: one APScheduler job per server, a signal loop, systemd notify.

Threads and signals: SIGHUP, SIGTERM and SIGINT are blocked before any thread
starts, so no worker ever receives them; the main thread waits for them with
``signal.sigtimedwait``, whose timeout doubles as the watchdog tick. Nothing
is done inside a signal handler.

APScheduler 3 traps avoided (see DESIGN.md): cron meaning comes from
:mod:`snapshotd.schedule`; ``misfire_grace_time=None`` so a run queued behind
busy jobs is late but never dropped; ``coalesce=True`` and ``max_instances=1``
so one server never runs twice at once; concurrency is bounded by our own
semaphore so the liveness probe always has a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from snapshotd.clock import Clock
from snapshotd.config import load_config
from snapshotd.config.model import LoadedConfig, ServerConfig
from snapshotd.errors import ConfigError
from snapshotd.pipeline import JobContext, run_job
from snapshotd.redact import Redactor
from snapshotd.result import JobResult
from snapshotd.runner import make_context

log = logging.getLogger("snapshotd.daemon")

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
EX_CONFIG = 78
IDLE_TICK = 30.0
PROBE_TIMEOUT = 5.0
STARTUP_DELAY = 1.0  # catch-up and resumed runs start this soon after READY


class SystemdNotify:
    """sd_notify over ``$NOTIFY_SOCKET`` (a no-op without it); STATUS kept latin-1 safe."""

    def __init__(self) -> None:
        import sdnotify

        self._notifier = sdnotify.SystemdNotifier()
        if self._notifier.socket is not None:
            # A full notify queue must never block a job thread; a dropped STATUS is harmless.
            self._notifier.socket.setblocking(False)

    def send(self, *lines: str) -> None:
        text = "\n".join(lines)
        self._notifier.notify(text.encode("latin-1", "replace").decode("latin-1"))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")


def block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def run_daemon(
    config_arg: str | None, loaded: LoadedConfig, redactor: Redactor, *, verbose: bool = False
) -> int:
    block_signals()  # before the scheduler, the pools or anything else starts a thread
    daemon = Daemon(lambda: load_config(config_arg), loaded, redactor)
    return daemon.serve()


class Daemon:
    def __init__(
        self,
        load: Callable[[], LoadedConfig],
        loaded: LoadedConfig,
        redactor: Redactor,
        *,
        clock: Clock | None = None,
        notify: SystemdNotify | None = None,
    ) -> None:
        self.load = load
        self.loaded = loaded
        self.redactor = redactor
        self.clock = clock or Clock()
        self.notify = notify or SystemdNotify()
        self.ctx: JobContext = make_context(loaded.settings, redactor, self.clock)
        self.servers: dict[str, ServerConfig] = {}
        self.fingerprints: dict[str, tuple[ServerConfig, str, int]] = {}
        self.stopping = threading.Event()
        self.active = 0
        self.active_changed = threading.Condition()
        self.slots = threading.BoundedSemaphore(loaded.settings.max_concurrent_jobs)
        self.last_result = "no run yet"
        self.config_problem: str | None = None
        self.scheduler = BackgroundScheduler(
            timezone=loaded.settings.timezone,
            executors={
                "default": ThreadPoolExecutor(max_workers=self._pool_size(loaded)),
                "probe": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.watchdog_interval = _watchdog_interval()

    # -- lifecycle -----------------------------------------------------------

    def serve(self) -> int:
        history = self.ctx.history
        assert history is not None
        now = self.clock.now()
        interrupted = history.interrupt_unfinished(now, "the previous process ended mid-job")
        if interrupted:
            log.warning("%d run(s) were cut off by the previous process's end", interrupted)
        previous_start = history.get_meta("daemon_started_at")
        history.set_meta("daemon_started_at", now.isoformat())
        self.scheduler.start()
        self._apply(self.loaded)
        self.notify.send("READY=1", f"STATUS={self._status_text()}")
        log.info("snapshotd started: %s", self._status_text())
        self._schedule_startup_runs(previous_start is not None)
        try:
            self._loop()
        finally:
            self.notify.send("STOPPING=1", "STATUS=stopping")
        return self._shutdown()

    def _loop(self) -> None:
        tick = min(self.watchdog_interval or IDLE_TICK, IDLE_TICK)
        last_ping = 0.0
        while True:
            received = signal.sigtimedwait(SIGNALS, tick)
            if received is not None:
                if received.si_signo == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("received %s; stopping", signal.Signals(received.si_signo).name)
                    return
            if self.watchdog_interval and time.monotonic() - last_ping >= self.watchdog_interval:
                if self.scheduler_alive():
                    self.notify.send("WATCHDOG=1")
                    last_ping = time.monotonic()
                else:
                    log.error("scheduler did not answer the liveness probe; withholding WATCHDOG")

    def _shutdown(self) -> int:
        self.stopping.set()
        self.scheduler.shutdown(wait=False)
        timeout = self.loaded.settings.stop_timeout
        deadline = time.monotonic() + timeout
        with self.active_changed:
            while self.active and time.monotonic() < deadline:
                self.active_changed.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            still_running = self.active
        if still_running:
            assert self.ctx.history is not None
            self.ctx.history.interrupt_unfinished(
                self.clock.now(), f"stopped after stop_timeout ({timeout:.0f}s); in flight"
            )
            log.warning(
                "%d job(s) still running after stop_timeout; recorded as in flight", still_running
            )
            logging.shutdown()
            os._exit(0)  # worker threads cannot be interrupted; their state is recorded
        log.info("snapshotd stopped")
        self.ctx.http.close()
        return 0

    # -- configuration -------------------------------------------------------

    def reload(self) -> None:
        self.notify.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            loaded = self.load()
        except ConfigError as exc:
            self.config_problem = f"reload failed, keeping the previous schedule: {exc}"
            log.error("%s", self.redactor.redact(self.config_problem))
            self.notify.send("READY=1", f"STATUS={self._status_text()}")
            return
        self.redactor.add(loaded.secrets())
        if loaded.problems:
            # At start a bad file is skipped; on reload it would silently unschedule a server
            # that is running fine, so the whole reload is refused instead.
            for problem in loaded.problems:
                log.error("reload: %s", problem.message)
            self.config_problem = (
                f"reload refused, keeping the previous schedule: {len(loaded.problems)} invalid "
                f"file(s), first: {loaded.problems[0].message}"
            )
            log.error("%s", self.redactor.redact(self.config_problem))
            self.notify.send("READY=1", f"STATUS={self._status_text()}")
            return
        self.config_problem = None
        if loaded.settings != self.loaded.settings:
            self.ctx = make_context(loaded.settings, self.redactor, self.clock)
            # running jobs release the semaphore they entered with
            self.slots = threading.BoundedSemaphore(loaded.settings.max_concurrent_jobs)
        self.loaded = loaded
        self._apply(loaded)
        log.info("configuration reloaded: %s", self._status_text())
        self.notify.send("READY=1", f"STATUS={self._status_text()}")

    def _apply(self, loaded: LoadedConfig) -> None:
        """Add, remove and reschedule only the jobs whose configuration changed."""
        wanted = {server.job_id: server for server in loaded.servers}
        settings = loaded.settings
        for job_id in list(self.servers):
            if job_id not in wanted:
                self.scheduler.remove_job(job_id)
                del self.servers[job_id], self.fingerprints[job_id]
                log.info("unscheduled %s", job_id)
        for job_id, server in wanted.items():
            # frozen dataclasses compare by value: any changed key (token included) reschedules
            fingerprint = (server, settings.timezone.key, settings.jitter_seconds)
            self.servers[job_id] = server
            if self.fingerprints.get(job_id) == fingerprint:
                continue
            self.scheduler.add_job(
                self._run_scheduled,
                trigger=server.schedule.trigger(settings.timezone, settings.jitter_seconds),
                args=(job_id,),
                id=job_id,
                name=server.name,
                replace_existing=True,
            )
            verb = "rescheduled" if job_id in self.fingerprints else "scheduled"
            self.fingerprints[job_id] = fingerprint
            log.info("%s %s: %s", verb, job_id, server.schedule.describe())

    def _schedule_startup_runs(self, has_run_before: bool) -> None:
        """Resume snapshots left in flight; with catch_up, run a slot missed while down."""
        history = self.ctx.history
        assert history is not None
        settings = self.loaded.settings
        now = self.clock.now()
        in_flight = {flight.server_key for flight in history.all_in_flight()}
        latest = history.latest_starts() if settings.catch_up and has_run_before else {}
        for job_id, server in self.servers.items():
            if server.key in in_flight:
                self._run_soon(job_id, None, "resume the snapshot left in flight")
                continue
            if not (settings.catch_up and has_run_before):
                continue
            slot = server.schedule.previous_fire_time(settings.timezone, now)
            last = latest.get(server.key)
            if slot is not None and (last is None or last < slot):
                self._run_soon(job_id, slot, f"catch up the missed slot {slot.isoformat()}")

    def _run_soon(self, job_id: str, slot: datetime | None, why: str) -> None:
        log.info("%s: %s", job_id, why)
        self.scheduler.add_job(
            self._run,
            trigger=DateTrigger(self.clock.now() + timedelta(seconds=STARTUP_DELAY)),
            args=(job_id, slot),
            id=f"{job_id}:startup",
            replace_existing=True,
        )

    # -- jobs --------------------------------------------------------------

    def _run_scheduled(self, job_id: str) -> None:
        server = self.servers.get(job_id)
        if server is None:
            return
        slot = server.schedule.previous_fire_time(self.loaded.settings.timezone, self.clock.now())
        self._run(job_id, slot)

    def _run(self, job_id: str, slot: datetime | None) -> JobResult | None:
        server = self.servers.get(job_id)
        if server is None or self.stopping.is_set():
            return None
        with self.slots:  # our own concurrency bound; queued runs wait, never drop
            if self.stopping.is_set():
                return None
            ctx = self.ctx
            with self.active_changed:
                self.active += 1
            try:
                result = run_job(server, ctx, slot=slot)
            finally:
                with self.active_changed:
                    self.active -= 1
                    self.active_changed.notify_all()
        self.last_result = f"{server.name} {result.status.value} at {_short(result.finished_at)}"
        self.notify.status(self._status_text())
        return result

    # -- health ------------------------------------------------------------

    def scheduler_alive(self) -> bool:
        """True when the scheduler thread runs and executes a probe job promptly."""
        thread = getattr(self.scheduler, "_thread", None)
        if thread is None or not thread.is_alive():
            return False
        answered = threading.Event()
        try:
            job = self.scheduler.add_job(answered.set, executor="probe", misfire_grace_time=None)
        except Exception:  # a scheduler that cannot take a job is not healthy
            return False
        ok = answered.wait(PROBE_TIMEOUT)
        if not ok:
            with contextlib.suppress(Exception):
                job.remove()
        return ok

    def _status_text(self) -> str:
        parts = [f"{len(self.servers)} server(s)"]
        upcoming = [
            (job.next_run_time, job.name)
            for job in self.scheduler.get_jobs()
            if job.id in self.servers and job.next_run_time is not None
        ]
        if upcoming:
            when, name = min(upcoming)
            parts.append(f"next: {name} at {_short(when)}")
        parts.append(f"last: {self.last_result}")
        if self.config_problem:
            parts.append(self.config_problem)
        return self.redactor.redact("; ".join(parts))

    @staticmethod
    def _pool_size(loaded: LoadedConfig) -> int:
        return max(loaded.settings.max_concurrent_jobs, min(len(loaded.servers), 64)) + 1


def _watchdog_interval() -> float | None:
    """Half of ``$WATCHDOG_USEC`` (when it is meant for this process), in seconds."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.05, int(usec) / 1_000_000 / 2)
    except ValueError:
        return None


def _short(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
