"""Real SMTP servers for the alert tests: aiosmtpd on loopback, stopped by the test.

Built on :class:`wesh.hq.alerts.capture.CaptureServer` (the demo's capturing server)::

    with smtp_server(tmp_path, tls=True, users={"wesh": "s3cret"}) as smtp:
        await send_mail(smtp.settings, mail, sender="wesh@example.org")
        assert smtp.server.messages[0].rcpt_tos == ("a@example.org",)

``smtp.settings`` are the client settings that reach it (STARTTLS ``always`` and the CA
file when ``tls``; the first user's credentials when ``users``). ``smtp.server.stop()`` and
``smtp.server.start()`` play a mail server going down and coming back on the same port.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wesh.hq.alerts.capture import CapturedMail, CaptureServer, make_self_signed
from wesh.hq.alerts.smtp import SmtpSettings

__all__ = ["SmtpFixture", "smtp_server"]


@dataclass
class SmtpFixture:
    """A running server and the client settings that reach it."""

    server: CaptureServer
    settings: SmtpSettings
    cafile: Path | None

    @property
    def messages(self) -> list[CapturedMail]:
        """What the server received so far."""
        return self.server.messages

    def by_message_id(self) -> dict[str, int]:
        """Message-ID → how many times it arrived."""
        counts: dict[str, int] = {}
        for mail in self.server.messages:
            key = str(mail.message["Message-ID"])
            counts[key] = counts.get(key, 0) + 1
        return counts


@contextmanager
def smtp_server(
    folder: Path,
    *,
    tls: bool = False,
    implicit_tls: bool = False,
    require_starttls: bool = False,
    users: Mapping[str, str] | None = None,
    refusals: Mapping[str, str] | None = None,
    data_reply: str | None = None,
    timeout_s: float = 10.0,
) -> Iterator[SmtpFixture]:
    """Run a capturing SMTP server on 127.0.0.1 for the duration of the block."""
    cert = make_self_signed(folder / "smtp-tls") if (tls or implicit_tls) else None
    server = CaptureServer(
        cert=cert,
        require_starttls=require_starttls,
        implicit_tls=implicit_tls,
        users=users,
        refusals=refusals,
        data_reply=data_reply,
    )
    server.start()
    try:
        username, password = next(iter((users or {}).items()), (None, None))
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            starttls="always" if tls else "never" if implicit_tls else "auto",
            tls=implicit_tls,
            username=username,
            password=password,
            cafile=cert[0] if cert else None,
            timeout_s=timeout_s,
        )
        yield SmtpFixture(server=server, settings=settings, cafile=cert[0] if cert else None)
    finally:
        server.stop()
