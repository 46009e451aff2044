"""The durable mail outbox: a mail is a row before it is a message, and never lost.

The alert engine calls :func:`enqueue` in the transaction of the state change that caused
the mail (insert-ignore on the UNIQUE ``dedup_key``: the same notice enqueued by two
workers is one row). :class:`OutboxWorker` sends the rows::

    queued ──claim (lease)──▶ sending ──250──────────────▶ sent      (sent_at)
      ▲                          │──4xx / down / timeout──▶ queued    (attempts+1, backoff)
      │                          │──auth or TLS config────▶ queued    (max backoff, logged)
      └──── requeue() ◀─ failed ◀┘──5xx for all / refused─            (failed_at, kept)

* **Claim with a lease.** A worker claims one due row at a time with
  ``UPDATE ... SET claimed_by, claimed_until WHERE id = :id AND sent_at IS NULL AND
  failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < :now)``; only the worker
  whose update changed the row sends it. A worker that dies mid-send leaves a claim that
  expires after ``lease_s``; another worker (or the restarted one) then sends the row.
  A send is cut at half the lease, so a live worker never loses its claim while sending.
* **Backoff.** ``min(max_backoff_s, base_backoff_s * 2 ** (attempts - 1))`` minus up to
  25 % jitter. When the server is unreachable the run stops at the first failure (the
  other rows stay due for the next run rather than all being pushed back).
* **Failed rows are kept** with their reason (``last_error``) for the operator; nothing is
  ever deleted. Some recipients refused (5xx) while others took the mail: the row is sent,
  ``last_error`` names the refused addresses. Some deferred (4xx): the row stays queued for
  those addresses only (``recipients`` is narrowed, ``last_error`` says who already has it).

The only duplicate SMTP cannot rule out: the server took the message but its reply was lost
(or marking the row failed). The mail is then sent again with the same ``Message-ID``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Table, and_, case, func, or_, select, update

from wesh.errors import (
    AuthenticationError,
    BadInputError,
    ConfigError,
    ConnectionFailed,
    DeviceTimeout,
    TransientError,
    UsageError,
    WeshError,
)
from wesh.hq.alerts.compose import Mail, standard_headers
from wesh.hq.alerts.model import json_ready
from wesh.hq.alerts.smtp import Delivery, SmtpSettings, send_mail
from wesh.hq.db import insert_ignore, transaction, translate_errors
from wesh.hq.models import CODE_LEN, DEDUP_LEN, NOTE_LEN, MailOutbox
from wesh.hq.timeutil import from_epoch_us

__all__ = [
    "OutboxEntry",
    "OutboxReport",
    "OutboxSettings",
    "OutboxStatus",
    "OutboxWorker",
    "backoff_s",
    "enqueue",
    "list_outbox",
    "outbox_status",
    "requeue",
]

_LOG = logging.getLogger(__name__)
_T = cast("Table", MailOutbox.__table__)
_JITTER: Final = 0.25

Clock = Callable[[], datetime]
Sender = Callable[[SmtpSettings, Mail], Awaitable[Delivery]]
OutboxState = Literal["queued", "sent", "failed"]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class OutboxSettings(BaseModel):
    """How the outbox worker paces itself (the ``[outbox]`` table of the alerts config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every_s: float = Field(default=15.0, gt=0, le=3600, description="pause between runs")
    lease_s: float = Field(default=120.0, gt=0, le=86_400, description="claim lifetime")
    base_backoff_s: float = Field(default=60.0, gt=0, le=86_400, description="first retry delay")
    max_backoff_s: float = Field(default=3600.0, gt=0, le=7 * 86_400, description="longest delay")
    batch: int = Field(default=50, ge=1, le=10_000, description="rows sent per run at most")


# --- enqueue ----------------------------------------------------------------------------


def enqueue(
    conn: Connection,
    mail: Mail,
    *,
    dedup_key: str,
    alert_id: int | None,
    notice_kind: str | None,
    now: datetime,
) -> bool:
    """Record ``mail`` for sending, unless a row with ``dedup_key`` exists already.

    Call it inside the transaction that caused the mail. The row is due at once.

    Returns:
        ``True`` if a row was inserted, ``False`` if the key was there (not an error).

    Raises:
        UsageError: no recipient, or a key longer than the column.
        BadInputError: a value the database refuses (an unknown ``alert_id``...).
    """
    if not mail.to:
        raise UsageError(f"mail {mail.message_id} has no recipient")
    if not dedup_key or len(dedup_key) > DEDUP_LEN:
        raise UsageError(f"dedup key must have 1..{DEDUP_LEN} characters: {dedup_key!r}")
    row = {
        "dedup_key": dedup_key,
        "alert_id": alert_id,
        "notice_kind": notice_kind,
        "lang": mail.lang,
        "recipients": list(mail.to),
        "subject": mail.subject,
        "body_text": mail.text,
        "body_html": mail.html,
        "message_id": mail.message_id,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    inserted = insert_ignore(MailOutbox, [row], conn) == 1
    if not inserted:
        _LOG.debug("outbox: %s already queued", dedup_key)
    return inserted


# --- sending ----------------------------------------------------------------------------


def backoff_s(attempts: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Return the delay before attempt ``attempts + 1`` (``attempts`` ≥ 1 failures so far).

    Exponential (``base_s``, doubled each time), capped at ``max_s``, minus up to 25 %
    random jitter so that workers and rows spread out.
    """
    delay = min(max_s, base_s * 2.0 ** min(max(attempts - 1, 0), 60))
    return delay * (1.0 - _JITTER * rng.random())


@dataclass(frozen=True, slots=True)
class OutboxReport:
    """What one :meth:`OutboxWorker.run_once` did.

    Attributes:
        claimed: rows this worker claimed.
        sent: rows sent (to at least the recipients that did not refuse them).
        retried: rows put back with a backoff (server down, 4xx, configuration).
        failed: rows given up on (permanent refusal), kept with their reason.
        lost: due rows another worker claimed first.
        stopped: why the run stopped early (server unreachable...), if it did.
        errors: one line per problem met.
    """

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    stopped: str | None = None
    errors: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        data = asdict(self)
        data["errors"] = list(self.errors)
        return data


@dataclass(slots=True)
class _Tally:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def report(self) -> OutboxReport:
        return OutboxReport(
            claimed=self.claimed,
            sent=self.sent,
            retried=self.retried,
            failed=self.failed,
            lost=self.lost,
            stopped=self.stopped,
            errors=tuple(self.errors),
        )


def _cap(text: str) -> str:
    return text if len(text) <= NOTE_LEN else text[: NOTE_LEN - 1] + "…"


class OutboxWorker:
    """Sends the outbox's due rows; several workers may run at once on one database.

    Args:
        engine: the HQ database.
        settings: the SMTP server.
        sender: the ``From`` address (``"wesh@example.org"`` or ``"Wesh <...>"``).
        worker_id: this worker's name in ``claimed_by`` (default: a random one).
        now: the clock (inject one in tests).
        lease_s: how long a claim lasts; a send is cut at half of it.
        max_backoff_s: the longest delay between two attempts.
        base_backoff_s: the delay after the first failure.
        batch: rows sent per run at most.
        rng: the jitter's random source.
        send: the SMTP seam (default :func:`~wesh.hq.alerts.smtp.send_mail`).
    """

    def __init__(
        self,
        engine: Engine,
        settings: SmtpSettings,
        *,
        sender: str,
        worker_id: str | None = None,
        now: Clock = _wall_clock,
        lease_s: float = 120.0,
        max_backoff_s: float = 3600.0,
        base_backoff_s: float = 60.0,
        batch: int = 50,
        rng: random.Random | None = None,
        send: Sender | None = None,
    ) -> None:
        if lease_s <= 0 or max_backoff_s <= 0 or base_backoff_s <= 0 or batch < 1:
            raise UsageError("lease_s, max_backoff_s, base_backoff_s and batch must be > 0")
        self.engine = engine
        self.settings = settings
        self.sender = sender
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        # claimed_by holds CODE_LEN characters: a long --worker-id is cut, not refused by SQL
        self.worker_id = (worker_id or f"outbox-{self._rng.getrandbits(32):08x}")[:CODE_LEN]
        self._now = now
        self.lease_s = lease_s
        self.max_backoff_s = max_backoff_s
        self.base_backoff_s = base_backoff_s
        self.batch = batch
        self._send: Sender = send or self._smtp_send

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        smtp: SmtpSettings,
        outbox: OutboxSettings,
        *,
        sender: str,
        worker_id: str | None = None,
        now: Clock = _wall_clock,
    ) -> OutboxWorker:
        """Return a worker paced by ``outbox`` (the alerts configuration's settings)."""
        return cls(
            engine,
            smtp,
            sender=sender,
            worker_id=worker_id,
            now=now,
            lease_s=outbox.lease_s,
            max_backoff_s=outbox.max_backoff_s,
            base_backoff_s=outbox.base_backoff_s,
            batch=outbox.batch,
        )

    async def _smtp_send(self, settings: SmtpSettings, mail: Mail) -> Delivery:
        return await send_mail(settings, mail, sender=self.sender)

    async def run(self, stop: asyncio.Event, every_s: float = 15.0) -> None:
        """Send due rows every ``every_s`` seconds until ``stop`` is set.

        Database errors are logged and the loop goes on (the next run retries).
        """
        while not stop.is_set():
            try:
                report = await self.run_once()
            except WeshError as exc:
                _LOG.warning("outbox %s: run failed, retrying later: %s", self.worker_id, exc)
            else:
                if report.claimed:
                    _LOG.info(
                        "outbox %s: %d sent, %d retried, %d failed",
                        self.worker_id,
                        report.sent,
                        report.retried,
                        report.failed,
                    )
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                continue

    async def run_once(self) -> OutboxReport:
        """Claim due rows one at a time, send each, record the outcome.

        Raises:
            TransientError, ConnectionFailed, WeshError: the database failed (rows
                already handled keep their outcome; a claimed row waits for its lease).
        """
        tally = _Tally()
        for row_id in self._due_ids(self._now()):
            mail = self._claim(row_id, self._now())
            if mail is None:
                tally.lost += 1
                continue
            tally.claimed += 1
            if not await self._deliver(row_id, mail, tally):
                break
        return tally.report()

    def _due_ids(self, now: datetime) -> list[int]:
        query = (
            select(_T.c.id)
            .where(
                _T.c.sent_at.is_(None),
                _T.c.failed_at.is_(None),
                _T.c.next_attempt_at <= now,
                or_(_T.c.claimed_until.is_(None), _T.c.claimed_until < now),
            )
            .order_by(_T.c.next_attempt_at, _T.c.id)
            .limit(self.batch)
        )
        with transaction(self.engine) as conn:
            return [int(row_id) for row_id in conn.execute(query).scalars()]

    def _claim(self, row_id: int, now: datetime) -> Mail | None:
        claim = (
            update(_T)
            .where(
                _T.c.id == row_id,
                _T.c.sent_at.is_(None),
                _T.c.failed_at.is_(None),
                or_(_T.c.claimed_until.is_(None), _T.c.claimed_until < now),
            )
            .values(
                claimed_by=self.worker_id,
                claimed_until=now + timedelta(seconds=self.lease_s),
            )
        )
        with transaction(self.engine) as conn:
            if conn.execute(claim).rowcount != 1:
                return None
            row = conn.execute(select(_T).where(_T.c.id == row_id)).one()
        return Mail(
            to=tuple(str(address) for address in row.recipients),
            subject=row.subject,
            text=row.body_text,
            html=row.body_html,
            lang=row.lang,
            message_id=row.message_id,
            headers=standard_headers(
                date=row.created_at,
                lang=row.lang,
                alert_id=row.alert_id,
                notice_kind=row.notice_kind,
            ),
            dedup_key=row.dedup_key,
        )

    async def _deliver(self, row_id: int, mail: Mail, tally: _Tally) -> bool:
        """Send one claimed row and record the outcome; ``False`` stops the run."""
        try:
            async with asyncio.timeout(self.lease_s / 2):
                delivery = await self._send(self.settings, mail)
        except TimeoutError as exc:
            error: WeshError = DeviceTimeout(
                f"sending took more than half the lease ({self.lease_s / 2:.0f} s)",
                host=self.settings.where,
            )
            error.__cause__ = exc
        except WeshError as exc:
            error = exc
        else:
            self._record_delivery(row_id, mail, delivery, tally)
            return True
        tally.errors.append(f"{mail.message_id}: {error}")
        if isinstance(error, AuthenticationError | ConfigError):
            _LOG.error("outbox %s: SMTP configuration problem: %s", self.worker_id, error)
            self._retry(row_id, error, delay_s=self.max_backoff_s)
            tally.retried += 1
            tally.stopped = f"SMTP configuration: {error}"
            return False
        if isinstance(error, BadInputError):
            _LOG.error("outbox %s: %s refused for good: %s", self.worker_id, mail.message_id, error)
            self._fail(row_id, error)
            tally.failed += 1
            return True
        attempts = self._retry(row_id, error, delay_s=None)
        _LOG.warning(
            "outbox %s: %s not sent (attempt %d), retrying later: %s",
            self.worker_id,
            mail.message_id,
            attempts,
            error,
        )
        tally.retried += 1
        if isinstance(error, ConnectionFailed | DeviceTimeout) or not isinstance(
            error, TransientError
        ):
            tally.stopped = f"SMTP server unavailable: {error}"
            return False
        return True

    def _mine(self, row_id: int) -> Any:  # noqa: ANN401 - an SQLAlchemy boolean clause
        return and_(_T.c.id == row_id, _T.c.claimed_by == self.worker_id)

    def _record_delivery(self, row_id: int, mail: Mail, delivery: Delivery, tally: _Tally) -> None:
        now = self._now()
        note = None
        if delivery.refused:
            note = "refused by " + "; ".join(
                f"{a}: {r}" for a, r in sorted(delivery.refused.items())
            )
        values: dict[str, Any] = {
            "attempts": _T.c.attempts + 1,
            "claimed_by": None,
            "claimed_until": None,
        }
        if delivery.deferred:
            attempts = self._attempts(row_id) + 1
            delay = backoff_s(
                attempts, base_s=self.base_backoff_s, max_s=self.max_backoff_s, rng=self._rng
            )
            deferred = "; ".join(f"{a}: {r}" for a, r in sorted(delivery.deferred.items()))
            already = ", ".join(delivery.accepted) or "nobody"
            values.update(
                recipients=sorted(delivery.deferred),
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=_cap(
                    f"deferred {deferred}; already sent to {already}"
                    + (f"; {note}" if note else "")
                ),
            )
            tally.retried += 1
        else:
            values.update(sent_at=now, last_error=_cap(note) if note else None)
            tally.sent += 1
        with transaction(self.engine) as conn:
            changed = conn.execute(update(_T).where(self._mine(row_id)).values(**values)).rowcount
        if changed != 1:
            _LOG.warning(
                "outbox %s: %s was sent but its claim had expired (another worker may send"
                " it again): raise lease_s",
                self.worker_id,
                mail.message_id,
            )

    def _attempts(self, row_id: int) -> int:
        with transaction(self.engine) as conn:
            value = conn.execute(select(_T.c.attempts).where(_T.c.id == row_id)).scalar_one()
        return int(value)

    def _retry(self, row_id: int, error: WeshError, *, delay_s: float | None) -> int:
        attempts = self._attempts(row_id) + 1
        if delay_s is None:
            delay_s = backoff_s(
                attempts, base_s=self.base_backoff_s, max_s=self.max_backoff_s, rng=self._rng
            )
        now = self._now()
        with transaction(self.engine) as conn:
            conn.execute(
                update(_T)
                .where(self._mine(row_id))
                .values(
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=delay_s),
                    last_error=_cap(str(error)),
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        return attempts

    def _fail(self, row_id: int, error: WeshError) -> None:
        with transaction(self.engine) as conn:
            conn.execute(
                update(_T)
                .where(self._mine(row_id))
                .values(
                    attempts=_T.c.attempts + 1,
                    failed_at=self._now(),
                    last_error=_cap(str(error)),
                    claimed_by=None,
                    claimed_until=None,
                )
            )


# --- the operator's view ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """The outbox at a glance (``wesh hq alerts outbox``).

    Attributes:
        queued: rows not sent yet and not failed.
        due: queued rows whose next attempt is now or past and not claimed.
        failing: queued rows that failed at least once (the server is down?).
        failed: rows given up on (permanent refusal), kept for the operator.
        sent: rows sent.
        oldest_queued_at: when the oldest queued row was made.
        oldest_age_s: its age in seconds at ``now``.
        next_attempt_at: the earliest next attempt of a queued row.
        last_error: the newest error message of a queued or failed row.
    """

    queued: int
    due: int
    failing: int
    failed: int
    sent: int
    oldest_queued_at: datetime | None
    oldest_age_s: float | None
    next_attempt_at: datetime | None
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        """Return the status as JSON-ready data (times in ISO 8601)."""
        return json_ready(asdict(self))


def outbox_status(conn: Connection, *, now: datetime | None = None) -> OutboxStatus:
    """Return the outbox's counts, oldest queued mail and last error at ``now``."""
    at = now or _wall_clock()
    queued = and_(_T.c.sent_at.is_(None), _T.c.failed_at.is_(None))
    due = and_(
        queued,
        _T.c.next_attempt_at <= at,
        or_(_T.c.claimed_until.is_(None), _T.c.claimed_until < at),
    )

    def count(condition: Any) -> Any:  # noqa: ANN401 - SQLAlchemy expressions
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = select(
        count(queued),
        count(due),
        count(and_(queued, _T.c.attempts > 0)),
        count(_T.c.failed_at.is_not(None)),
        count(_T.c.sent_at.is_not(None)),
        func.min(case((queued, _T.c.created_at), else_=None)),
        func.min(case((queued, _T.c.next_attempt_at), else_=None)),
    )
    last_error_query = (
        select(_T.c.last_error)
        .where(_T.c.last_error.is_not(None), _T.c.sent_at.is_(None))
        .order_by(_T.c.id.desc())
        .limit(1)
    )
    with translate_errors(conn.engine):
        row = conn.execute(query).one()
        last_error = conn.execute(last_error_query).scalar()
    oldest, next_at = _instant(row[5]), _instant(row[6])
    return OutboxStatus(
        queued=int(row[0]),
        due=int(row[1]),
        failing=int(row[2]),
        failed=int(row[3]),
        sent=int(row[4]),
        oldest_queued_at=oldest,
        oldest_age_s=(at - oldest).total_seconds() if oldest is not None else None,
        next_attempt_at=next_at,
        last_error=last_error,
    )


def _instant(value: datetime | int | None) -> datetime | None:
    """Return an aggregate's instant (typed by the column, or the stored integer)."""
    if value is None or isinstance(value, datetime):
        return value
    return from_epoch_us(int(value))


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row, for listings (no bodies)."""

    id: int
    state: OutboxState
    dedup_key: str
    alert_id: int | None
    notice_kind: str | None
    lang: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    failed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """Return the entry as JSON-ready data (times in ISO 8601)."""
        return {**json_ready(asdict(self)), "recipients": list(self.recipients)}


def list_outbox(
    conn: Connection, *, state: OutboxState | None = None, limit: int = 100
) -> list[OutboxEntry]:
    """Return outbox rows, newest first (``state``: only queued, sent or failed ones)."""
    query = select(_T).order_by(_T.c.id.desc()).limit(max(1, limit))
    if state == "queued":
        query = query.where(_T.c.sent_at.is_(None), _T.c.failed_at.is_(None))
    elif state == "sent":
        query = query.where(_T.c.sent_at.is_not(None))
    elif state == "failed":
        query = query.where(_T.c.failed_at.is_not(None))
    with translate_errors(conn.engine):
        rows = conn.execute(query).all()
    return [
        OutboxEntry(
            id=row.id,
            state="sent" if row.sent_at else "failed" if row.failed_at else "queued",
            dedup_key=row.dedup_key,
            alert_id=row.alert_id,
            notice_kind=row.notice_kind,
            lang=row.lang,
            recipients=tuple(row.recipients),
            subject=row.subject,
            message_id=row.message_id,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            attempts=row.attempts,
            last_error=row.last_error,
            sent_at=row.sent_at,
            failed_at=row.failed_at,
        )
        for row in rows
    ]


def requeue(conn: Connection, *, now: datetime, ids: Collection[int] | None = None) -> int:
    """Make failed rows (all, or those of ``ids``) due again at ``now``; return how many.

    For the operator, once the cause is fixed (a recipient's address corrected...).
    """
    statement = (
        update(_T)
        .where(_T.c.failed_at.is_not(None), _T.c.sent_at.is_(None))
        .values(failed_at=None, next_attempt_at=now, claimed_by=None, claimed_until=None)
    )
    if ids is not None:
        if not ids:
            return 0
        statement = statement.where(_T.c.id.in_(list(ids)))
    with translate_errors(conn.engine):
        return int(conn.execute(statement).rowcount)
