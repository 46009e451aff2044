"""send_mail against real SMTP servers on loopback (aiosmtpd): TLS, AUTH, refusals, errors."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.hq.alerts.smtpd import smtp_server
from wesh.errors import (
    AuthenticationError,
    BadInputError,
    ConfigError,
    ConnectionFailed,
    DeviceTimeout,
    TransientError,
    UsageError,
)
from wesh.hq.alerts.capture import CaptureServer
from wesh.hq.alerts.compose import Mail, compose_test_mail
from wesh.hq.alerts.smtp import SmtpSettings, send_mail

NOW = datetime(2026, 1, 15, 7, 30, tzinfo=UTC)
SENDER = "Wesh <wesh@example.org>"
SECRET = "s3cret-Pa55"


def _mail(*to: str) -> Mail:
    return compose_test_mail(
        to=list(to or ("gardien@example.org",)), lang="fr", sender_domain="example.org", now=NOW
    )


async def test_starttls_and_auth_deliver_the_mail(tmp_path: Path) -> None:
    with smtp_server(tmp_path, tls=True, require_starttls=True, users={"wesh": SECRET}) as smtp:
        mail = _mail("a@example.org", "b@example.org")
        delivery = await send_mail(smtp.settings, mail, sender=SENDER)
        [got] = smtp.messages
    assert delivery.accepted == ("a@example.org", "b@example.org")
    assert not delivery.refused and not delivery.deferred
    assert got.tls and got.authenticated_as == "wesh"
    assert got.mail_from == "wesh@example.org"
    assert got.rcpt_tos == ("a@example.org", "b@example.org")
    message = got.message
    assert message["Subject"] == "[wesh] Message de test"
    assert message["Message-ID"] == mail.message_id
    assert message["From"] == SENDER
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert "courriel" in got.body("plain")
    assert "<html" in got.body("html")


async def test_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, implicit_tls=True, users={"wesh": SECRET}) as smtp:
        assert smtp.settings.tls
        await send_mail(smtp.settings, _mail(), sender=SENDER)
        [got] = smtp.messages
    assert got.tls and got.authenticated_as == "wesh"


async def test_auto_starttls_is_used_when_offered(tmp_path: Path) -> None:
    with smtp_server(tmp_path, tls=True) as smtp:
        settings = smtp.settings.model_copy(update={"starttls": "auto"})
        await send_mail(settings, _mail(), sender=SENDER)
        [got] = smtp.messages
    assert got.tls


async def test_always_refuses_a_server_without_starttls(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        settings = smtp.settings.model_copy(update={"starttls": "always"})
        with pytest.raises(ConfigError, match="STARTTLS"):
            await send_mail(settings, _mail(), sender=SENDER)
        assert smtp.messages == []


def test_only_loopback_hosts_may_get_credentials_in_clear() -> None:
    # Tests reach loopback only, so the remote case is checked on the host test itself.
    from wesh.hq.alerts import smtp as smtp_module  # noqa: PLC0415

    assert smtp_module._is_loopback("127.0.0.1")
    assert smtp_module._is_loopback("::1")
    assert smtp_module._is_loopback("localhost")
    assert not smtp_module._is_loopback("smtp.example.org")
    assert not smtp_module._is_loopback("192.0.2.1")


async def test_plain_auth_on_loopback_without_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, users={"wesh": SECRET}) as smtp:
        await send_mail(smtp.settings, _mail(), sender=SENDER)
        [got] = smtp.messages
    assert got.authenticated_as == "wesh" and not got.tls


async def test_wrong_password_is_an_authentication_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(tmp_path, tls=True, users={"wesh": SECRET}) as smtp:
        settings = SmtpSettings(
            **{**smtp.settings.model_dump(), "password": "not-the-password"}  # type: ignore[arg-type]
        )
        with pytest.raises(AuthenticationError, match="wesh") as raised:
            await send_mail(settings, _mail(), sender=SENDER)
        assert smtp.messages == []
    assert "not-the-password" not in str(raised.value)
    assert "not-the-password" not in caplog.text
    assert "not-the-password" not in repr(settings) and "not-the-password" not in str(settings)


async def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    with smtp_server(tmp_path, tls=True, users={"wesh": SECRET}) as smtp:
        data = smtp.settings.model_dump()
        data.update(password=None, password_file=secret)
        await send_mail(SmtpSettings(**data), _mail(), sender=SENDER)
        assert len(smtp.messages) == 1
        data.update(password_file=tmp_path / "missing")
        with pytest.raises(ConfigError, match="password file"):
            await send_mail(SmtpSettings(**data), _mail(), sender=SENDER)


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="username"):
        SmtpSettings(password="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not both"):
        SmtpSettings(username="u", password="x", password_file=Path("/p"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="implicit TLS"):
        SmtpSettings(tls=True, starttls="always")
    with pytest.raises(ValidationError):
        SmtpSettings(port=0)
    with pytest.raises(ValidationError):
        SmtpSettings(hots="typo")  # type: ignore[call-arg]
    assert SmtpSettings().starttls == "auto"


async def test_untrusted_certificate_is_a_config_error(tmp_path: Path) -> None:
    with smtp_server(tmp_path, tls=True) as smtp:
        untrusted = smtp.settings.model_copy(update={"cafile": None})
        with pytest.raises(ConfigError, match="certificate"):
            await send_mail(untrusted, _mail(), sender=SENDER)
        unverified = smtp.settings.model_copy(update={"cafile": None, "verify": False})
        await send_mail(unverified, _mail(), sender=SENDER)
        assert len(smtp.messages) == 1


async def test_server_down_is_transient(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        smtp.server.stop()
        with pytest.raises(ConnectionFailed) as raised:
            await send_mail(smtp.settings, _mail(), sender=SENDER)
        assert isinstance(raised.value, TransientError)
        smtp.server.start()
        await send_mail(smtp.settings, _mail(), sender=SENDER)
        assert len(smtp.messages) == 1


async def test_a_server_that_never_answers_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def mute(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout_s=0.2)
        with pytest.raises(DeviceTimeout) as raised:
            await send_mail(settings, _mail(), sender=SENDER)
        assert isinstance(raised.value, TransientError)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "error"),
    [("550 5.1.1 no such user", BadInputError), ("450 4.2.0 mailbox busy", TransientError)],
)
async def test_every_recipient_refused(tmp_path: Path, reply: str, error: type[Exception]) -> None:
    refusals = {"a@example.org": reply, "b@example.org": reply}
    with smtp_server(tmp_path, refusals=refusals) as smtp:
        with pytest.raises(error, match=r"a@example\.org") as raised:
            await send_mail(smtp.settings, _mail("a@example.org", "b@example.org"), sender=SENDER)
        assert smtp.messages == []
    assert "b@example.org" in str(raised.value)
    if error is BadInputError:
        assert not isinstance(raised.value, ConfigError)


async def test_some_recipients_refused_or_deferred(tmp_path: Path) -> None:
    refusals = {"gone@example.org": "550 5.1.1 no such user", "busy@example.org": "451 later"}
    with smtp_server(tmp_path, refusals=refusals) as smtp:
        mail = _mail("ok@example.org", "gone@example.org", "busy@example.org")
        delivery = await send_mail(smtp.settings, mail, sender=SENDER)
        [got] = smtp.messages
    assert delivery.accepted == ("ok@example.org",)
    assert delivery.refused == {"gone@example.org": "550 5.1.1 no such user"}
    assert delivery.deferred == {"busy@example.org": "451 later"}
    assert got.rcpt_tos == ("ok@example.org",)


@pytest.mark.parametrize(
    ("reply", "error"),
    [("554 5.6.0 message refused", BadInputError), ("451 4.3.0 try later", TransientError)],
)
async def test_data_refused(tmp_path: Path, reply: str, error: type[Exception]) -> None:
    with smtp_server(tmp_path, data_reply=reply) as smtp, pytest.raises(error, match=reply[:3]):
        await send_mail(smtp.settings, _mail(), sender=SENDER)


async def test_bad_arguments() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=1)
    with pytest.raises(UsageError, match="sender"):
        await send_mail(settings, _mail(), sender="")
    empty = Mail(to=(), subject="s", text="t", html="h", lang="fr", message_id="<x@y>")
    with pytest.raises(UsageError, match="recipient"):
        await send_mail(settings, empty, sender=SENDER)


def test_capture_server_restarts_on_the_same_port() -> None:
    server = CaptureServer()
    server.start()
    try:
        port = server.port
        assert port > 0 and server.running
        server.restart()
        assert server.port == port
        with pytest.raises(UsageError, match="already running"):
            server.start()
    finally:
        server.stop()
    assert not server.running
    server.stop()  # idempotent


async def test_credentials_for_a_server_without_auth_are_a_config_error(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp:
        data = smtp.settings.model_dump()
        data.update(username="wesh", password=SECRET)
        with pytest.raises(ConfigError, match="no AUTH"):
            await send_mail(SmtpSettings(**data), _mail(), sender=SENDER)
        assert smtp.messages == []
