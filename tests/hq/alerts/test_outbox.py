"""The mail outbox against real SMTP servers on loopback and real databases.

Nothing sleeps: the worker's clock is injected and moved by hand; a server "goes down" by
being stopped and "comes back" on the same port.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from tests.hq.alerts.smtpd import SmtpFixture, smtp_server
from wesh.errors import UsageError
from wesh.hq.alerts.compose import Mail, compose_notice
from wesh.hq.alerts.model import Notice, Place, Subject
from wesh.hq.alerts.outbox import (
    OutboxSettings,
    OutboxWorker,
    backoff_s,
    enqueue,
    list_outbox,
    outbox_status,
    requeue,
)
from wesh.hq.alerts.smtp import Delivery, SmtpSettings
from wesh.hq.db import make_engine, transaction
from wesh.hq.models import MailOutbox

T0 = datetime(2026, 1, 16, 3, 0, tzinfo=UTC)
SENDER = "Wesh <wesh@example.org>"
PLACE = Place(
    1,
    "AG",
    "Agence Nord",
    2,
    "R1",
    "Résidence Les Tilleuls",
    3,
    "B1",
    "Bâtiment B",
    12,
    "12",
    "Logement 12",
)


class Clock:
    """A hand-moved clock."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _mail(n: int, *to: str) -> Mail:
    notice = Notice(
        kind="fired",
        alert_id=n,
        rule="frost",
        subject=Subject("channel", n),
        place=PLACE,
        severity="critical",
        started_at=T0,
        fired_at=T0,
        value=10.0,
        unit="°C",
        threshold=12.0,
    )
    return compose_notice(
        notice,
        to=list(to or ("gardien@example.org",)),
        lang="fr",
        base_url="https://hq.example.org",
        sender_domain="example.org",
    )


def _enqueue(engine: Engine, *mails: Mail, now: datetime = T0) -> None:
    with transaction(engine) as conn:
        for mail in mails:
            assert mail.dedup_key is not None
            assert enqueue(
                conn, mail, dedup_key=mail.dedup_key, alert_id=None, notice_kind="fired", now=now
            )


def _rows(engine: Engine) -> list[MailOutbox]:
    with transaction(engine) as conn:
        return list(conn.execute(select(MailOutbox).order_by(MailOutbox.id)).all())  # type: ignore[arg-type]


def _worker(engine: Engine, settings: SmtpSettings, clock: Clock, **kw: object) -> OutboxWorker:
    return OutboxWorker(engine, settings, sender=SENDER, now=clock, rng=random.Random(7), **kw)  # type: ignore[arg-type]


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[SmtpFixture]:
    with smtp_server(tmp_path, tls=True, require_starttls=True, users={"wesh": "s3cret"}) as smtp:
        yield smtp


# --- enqueue ------------------------------------------------------------------------------


def test_enqueue_is_idempotent(store: Engine) -> None:
    mail = _mail(1)
    assert mail.dedup_key is not None
    with transaction(store) as conn:
        assert enqueue(
            conn, mail, dedup_key=mail.dedup_key, alert_id=None, notice_kind="fired", now=T0
        )
        assert not enqueue(
            conn,
            mail,
            dedup_key=mail.dedup_key,
            alert_id=None,
            notice_kind="fired",
            now=T0 + timedelta(minutes=1),
        )
    with transaction(store) as conn:  # another transaction, as another worker would
        assert not enqueue(
            conn, mail, dedup_key=mail.dedup_key, alert_id=None, notice_kind="fired", now=T0
        )
    [row] = _rows(store)
    assert row.recipients == ["gardien@example.org"]
    assert row.created_at == row.next_attempt_at == T0
    assert row.attempts == 0 and row.sent_at is None and row.failed_at is None


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_enqueue_refuses_bad_rows(store: Engine) -> None:
    mail = _mail(1)
    with transaction(store) as conn:
        with pytest.raises(UsageError, match="dedup key"):
            enqueue(conn, mail, dedup_key="x" * 129, alert_id=None, notice_kind=None, now=T0)
        empty = Mail(to=(), subject="s", text="t", html="h", lang="fr", message_id="<a@b>")
        with pytest.raises(UsageError, match="recipient"):
            enqueue(conn, empty, dedup_key="k", alert_id=None, notice_kind=None, now=T0)


# --- sending ------------------------------------------------------------------------------


async def test_sends_due_mails_once(store: Engine, tls_smtp: SmtpFixture) -> None:
    clock = Clock()
    _enqueue(store, _mail(1), _mail(2, "a@example.org", "b@example.org"), _mail(3))
    worker = _worker(store, tls_smtp.settings, clock)
    clock.advance(30)
    report = await worker.run_once()
    assert (report.claimed, report.sent, report.retried, report.failed) == (3, 3, 0, 0)
    assert report.stopped is None and not report.errors
    again = await worker.run_once()
    assert again.claimed == 0
    assert sorted(tls_smtp.by_message_id().values()) == [1, 1, 1]
    second = next(m for m in tls_smtp.messages if len(m.rcpt_tos) == 2)
    assert second.rcpt_tos == ("a@example.org", "b@example.org")
    assert second.tls and second.authenticated_as == "wesh"
    message = second.message
    assert message["Date"] == "Fri, 16 Jan 2026 04:00:00 +0100"  # created_at, not sent time
    assert message["X-Wesh-Notice"] == "fired" and message["X-Wesh-Alert"] is None
    assert "Risque de gel" in second.body("plain")
    rows = _rows(store)
    assert all(row.sent_at == clock.at and row.attempts == 1 for row in rows)
    assert all(row.claimed_by is None and row.last_error is None for row in rows)
    with transaction(store) as conn:
        status = outbox_status(conn, now=clock.at)
    assert (status.queued, status.due, status.sent, status.failed) == (0, 0, 3, 0)
    assert status.oldest_queued_at is None and status.last_error is None


async def test_server_down_then_back_delivers_exactly_once(
    store: Engine, tls_smtp: SmtpFixture
) -> None:
    clock = Clock()
    _enqueue(store, _mail(1), _mail(2))
    worker = _worker(store, tls_smtp.settings, clock)
    tls_smtp.server.stop()
    report = await worker.run_once()
    # The first failure stops the run: the second row is not pushed back for nothing.
    assert (report.claimed, report.retried, report.sent) == (1, 1, 0)
    assert report.stopped is not None and "unavailable" in report.stopped
    first, second = _rows(store)
    assert first.attempts == 1 and first.last_error and "SMTP" in first.last_error
    assert 45 <= (first.next_attempt_at - clock.at).total_seconds() <= 60
    assert first.claimed_by is None and first.sent_at is None and first.failed_at is None
    assert second.attempts == 0
    with transaction(store) as conn:
        status = outbox_status(conn, now=clock.at)
    assert (status.queued, status.due, status.failing, status.sent) == (2, 1, 1, 0)
    assert status.oldest_queued_at == T0 and status.oldest_age_s == 0
    assert status.last_error == first.last_error

    await worker.run_once()  # the second row fails too
    tls_smtp.server.start()
    nothing = await worker.run_once()  # both are backing off: nothing is due yet
    assert nothing.claimed == 0 and tls_smtp.messages == []

    clock.advance(61)
    report = await worker.run_once()
    assert report.sent == 2
    assert sorted(tls_smtp.by_message_id().values()) == [1, 1]
    clock.advance(3600)
    assert (await worker.run_once()).claimed == 0
    assert len(tls_smtp.messages) == 2
    assert all(row.sent_at is not None and row.attempts == 2 for row in _rows(store))


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
async def test_backoff_grows_and_is_capped(store: Engine, tmp_path: Path) -> None:
    clock = Clock()
    _enqueue(store, _mail(1))
    with smtp_server(tmp_path) as smtp:
        smtp.server.stop()
        worker = _worker(store, smtp.settings, clock, base_backoff_s=60, max_backoff_s=600)
        delays = []
        for _ in range(8):
            await worker.run_once()
            [row] = _rows(store)
            delay = (row.next_attempt_at - clock.at).total_seconds()
            delays.append(delay)
            clock.at = row.next_attempt_at
        assert row.attempts == 8
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(600, 60 * 2 ** (attempt - 1))
        assert 0.75 * ceiling <= delay <= ceiling, (attempt, delay)
    assert delays[-1] > 0.75 * 600 and max(delays) <= 600


@given(
    attempts=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=86_400),
    cap=st.floats(min_value=0.001, max_value=7 * 86_400),
    seed=st.integers(),
)
def test_backoff_stays_within_bounds(attempts: int, base: float, cap: float, seed: int) -> None:
    delay = backoff_s(attempts, base_s=base, max_s=cap, rng=random.Random(seed))
    # past 2**80 times the smallest base, any cap is reached
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 80))
    assert 0.75 * ceiling <= delay <= ceiling


async def test_refused_for_good_is_kept_and_can_be_requeued(store: Engine, tmp_path: Path) -> None:
    clock = Clock()
    _enqueue(store, _mail(1, "gone@example.org"), _mail(2, "ok@example.org"))
    refusals = {"gone@example.org": "550 5.1.1 no such user"}
    with smtp_server(tmp_path, refusals=refusals) as smtp:
        worker = _worker(store, smtp.settings, clock)
        report = await worker.run_once()
        assert (report.claimed, report.failed, report.sent) == (2, 1, 1)
        failed, sent = _rows(store)
        assert failed.failed_at == clock.at and failed.sent_at is None
        assert failed.last_error and "gone@example.org" in failed.last_error
        assert "550" in failed.last_error
        clock.advance(86_400)
        assert (await worker.run_once()).claimed == 0  # never retried on its own
        with transaction(store) as conn:
            status = outbox_status(conn, now=clock.at)
            assert (status.queued, status.failed, status.sent) == (0, 1, 1)
            [entry] = list_outbox(conn, state="failed")
            assert entry.id == failed.id and entry.state == "failed"
            assert entry.as_json()["recipients"] == ["gone@example.org"]
            assert {e.state for e in list_outbox(conn)} == {"failed", "sent"}
            assert requeue(conn, now=clock.at, ids=[sent.id]) == 0  # only failed rows
            assert requeue(conn, now=clock.at) == 1
        smtp.server.refusals.clear()  # the address was fixed on the server side
        report = await worker.run_once()
        assert report.sent == 1
        assert sorted(smtp.by_message_id().values()) == [1, 1]


async def test_some_recipients_refused_others_deferred(store: Engine, tmp_path: Path) -> None:
    clock = Clock()
    mail = _mail(1, "ok@example.org", "gone@example.org", "busy@example.org")
    _enqueue(store, mail)
    refusals = {"gone@example.org": "550 5.1.1 no such user", "busy@example.org": "452 full"}
    with smtp_server(tmp_path, refusals=refusals) as smtp:
        worker = _worker(store, smtp.settings, clock)
        report = await worker.run_once()
        assert (report.sent, report.retried) == (0, 1)
        [row] = _rows(store)
        assert row.recipients == ["busy@example.org"] and row.sent_at is None
        assert row.last_error and "already sent to ok@example.org" in row.last_error
        assert "gone@example.org" in row.last_error
        del smtp.server.refusals["busy@example.org"]
        clock.advance(61)
        assert (await worker.run_once()).sent == 1
        [row] = _rows(store)
        assert row.sent_at == clock.at and row.attempts == 2
        got = [m.rcpt_tos for m in smtp.messages]
    assert got == [("ok@example.org",), ("busy@example.org",)]


async def test_authentication_failure_keeps_mails_queued(store: Engine, tmp_path: Path) -> None:
    clock = Clock()
    _enqueue(store, _mail(1), _mail(2))
    with smtp_server(tmp_path, tls=True, users={"wesh": "s3cret"}) as smtp:
        data = smtp.settings.model_dump()
        data["password"] = "wrong"
        worker = _worker(store, SmtpSettings(**data), clock, max_backoff_s=900)
        report = await worker.run_once()
        assert (report.claimed, report.retried, report.failed) == (1, 1, 0)
        assert report.stopped and "configuration" in report.stopped
        first, _second = _rows(store)
        assert first.failed_at is None and first.next_attempt_at == clock.at + timedelta(
            seconds=900
        )
        assert first.last_error and "wrong" not in first.last_error
        fixed = _worker(store, smtp.settings, clock)  # the operator fixes the password
        clock.advance(900)
        assert (await fixed.run_once()).sent == 2
        assert len(smtp.messages) == 2


# --- several workers, restarts ------------------------------------------------------------


@pytest.mark.timeout(300)
def test_two_workers_racing_send_each_mail_once(
    store: Engine, engine_url: str, tmp_path: Path
) -> None:
    count = 40
    _enqueue(store, *(_mail(n) for n in range(1, count + 1)))
    other = make_engine(engine_url)  # a second headquarters process, its own pool
    start = threading.Barrier(2)
    reports: dict[str, list[int]] = {"hq-1": [], "hq-2": []}
    failures: list[BaseException] = []
    try:
        with smtp_server(tmp_path) as smtp:

            def work(engine: Engine, name: str) -> None:
                worker = OutboxWorker(
                    engine, smtp.settings, sender=SENDER, worker_id=name, now=Clock(), batch=7
                )
                try:
                    start.wait()
                    while True:
                        report = asyncio.run(worker.run_once())
                        reports[name].append(report.sent)
                        if report.claimed == 0 and report.lost == 0:
                            return
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    failures.append(exc)

            threads = [
                threading.Thread(target=work, args=(store, "hq-1")),
                threading.Thread(target=work, args=(other, "hq-2")),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            delivered = smtp.by_message_id()
    finally:
        other.dispose()
    assert not failures, failures
    assert len(delivered) == count and set(delivered.values()) == {1}
    assert sum(reports["hq-1"]) + sum(reports["hq-2"]) == count
    rows = _rows(store)
    assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    assert {row.claimed_by for row in rows} == {None}


async def test_a_worker_that_dies_mid_send_loses_nothing(
    store: Engine, engine_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    _enqueue(store, _mail(1), _mail(2))
    sending = asyncio.Event()

    async def hang(_settings: SmtpSettings, _mail: Mail) -> Delivery:
        sending.set()
        await asyncio.Event().wait()  # never returns: the process dies here
        raise AssertionError("unreachable")

    dying = _worker(store, SmtpSettings(), clock, lease_s=120, send=hang, worker_id="hq-old")
    task = asyncio.create_task(dying.run_once())
    await sending.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first, _second = _rows(store)
    assert first.claimed_by == "hq-old" and first.claimed_until == T0 + timedelta(seconds=120)

    restarted = make_engine(engine_url)  # headquarters restarts: new engine, new worker
    try:
        with smtp_server(tmp_path) as smtp:
            worker = _worker(restarted, smtp.settings, clock, worker_id="hq-new")
            report = await worker.run_once()  # the old claim still holds: row 2 only
            assert report.sent == 1
            assert list(smtp.by_message_id()) == [_mail(2).message_id]
            assert _rows(store)[0].sent_at is None
            clock.advance(121)  # the lease expires
            report = await worker.run_once()
            assert report.sent == 1
            assert sorted(smtp.by_message_id().values()) == [1, 1]
    finally:
        restarted.dispose()
    assert all(row.sent_at is not None for row in _rows(store))


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
async def test_a_claim_taken_by_another_worker_is_skipped(store: Engine, tmp_path: Path) -> None:
    clock = Clock()
    _enqueue(store, _mail(1))
    with transaction(store) as conn:  # another worker claimed it a moment ago
        conn.execute(
            update(MailOutbox).values(claimed_by="hq-2", claimed_until=T0 + timedelta(seconds=60))
        )
    with smtp_server(tmp_path) as smtp:
        worker = _worker(store, smtp.settings, clock)
        assert (await worker.run_once()).claimed == 0
        assert smtp.messages == []


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
async def test_run_until_stopped(store: Engine) -> None:
    clock = Clock()
    _enqueue(store, _mail(1))
    stop = asyncio.Event()
    sent: list[str] = []

    async def record(_settings: SmtpSettings, mail: Mail) -> Delivery:
        sent.append(mail.message_id)
        stop.set()
        return Delivery(accepted=mail.to)

    worker = OutboxWorker(store, SmtpSettings(), sender=SENDER, now=clock, send=record)
    await asyncio.wait_for(worker.run(stop, every_s=3600), timeout=30)
    assert len(sent) == 1
    assert _rows(store)[0].sent_at == T0


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_worker_from_settings(store: Engine) -> None:
    paced = OutboxSettings(lease_s=300, base_backoff_s=10, max_backoff_s=99, batch=3)
    worker = OutboxWorker.from_settings(store, SmtpSettings(), paced, sender=SENDER, worker_id="w")
    assert (worker.lease_s, worker.base_backoff_s, worker.max_backoff_s, worker.batch) == (
        300,
        10,
        99,
        3,
    )
    assert worker.worker_id == "w"
    with pytest.raises(UsageError):
        OutboxWorker(store, SmtpSettings(), sender=SENDER, lease_s=0)


@pytest.mark.parametrize("engine_url", ["sqlite"], indirect=True)
def test_status_as_json(store: Engine) -> None:
    _enqueue(store, _mail(1))
    with transaction(store) as conn:
        status = outbox_status(conn, now=T0 + timedelta(minutes=5))
        entries = list_outbox(conn, state="queued", limit=5)
    data = status.as_json()
    assert data["queued"] == 1 and data["due"] == 1 and data["oldest_age_s"] == 300
    assert data["oldest_queued_at"] == T0.isoformat()
    [entry] = entries
    assert entry.as_json()["created_at"] == T0.isoformat()
    assert entry.as_json()["state"] == "queued"


def test_a_long_worker_name_fits_the_claim_column(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hq.sqlite3'}")
    try:
        worker = _worker(engine, SmtpSettings(), Clock(), worker_id="w" * 200)
        assert worker.worker_id == "w" * 64  # claimed_by is String(64): cut, never refused
    finally:
        engine.dispose()
