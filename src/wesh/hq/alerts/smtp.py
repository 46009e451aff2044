"""Sending one mail over SMTP (aiosmtplib), with errors sorted by what to do about them.

Configured in one place, :class:`SmtpSettings` (the ``[smtp]`` table of the alerts
configuration)::

    [smtp]
    host = "smtp.example.org"
    port = 587
    starttls = "always"          # auto: if offered; always: never send in clear; never
    username = "wesh"
    password_file = "/etc/wesh/smtp-password"   # or password = "..."
    cafile = "/etc/ssl/certs/internal-ca.pem"   # optional; verify = false to skip checks

:func:`send_mail` opens a connection, upgrades it (implicit TLS with ``tls = true``, else
STARTTLS as configured), logs in if a username is set, sends, and quits. Credentials are
never sent in clear to a remote host: without TLS, AUTH is allowed only on loopback.
Passwords are never logged nor put in error messages.

Errors leave as :mod:`wesh.errors`, sorted for the outbox:

=============================================  ===================================  =========
what happened                                  raised                               outbox
=============================================  ===================================  =========
refused, unreachable, reset, timeout, 4xx      TransientError (ConnectionFailed,    retry with
reply, 4xx for every recipient                 DeviceTimeout)                       backoff
AUTH refused (535...)                          AuthenticationError                  retry, slowly
STARTTLS required but not offered, TLS         ConfigError                          retry, slowly
certificate refused, password file unreadable
5xx for every recipient, message refused (5xx) BadInputError                        failed, kept
=============================================  ===================================  =========

When only some recipients are refused, the mail went to the others: :func:`send_mail`
returns a :class:`Delivery` naming the refused (5xx) and deferred (4xx) addresses.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
from wesh.hq.alerts.compose import Mail, to_message

__all__ = ["Delivery", "SmtpSettings", "send_mail"]

_LOG = logging.getLogger(__name__)


class SmtpSettings(BaseModel):
    """How to reach the mail server (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="localhost", min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    starttls: Literal["auto", "always", "never"] = "auto"
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    cafile: Path | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        if self.tls and self.starttls == "always":
            raise ValueError("tls = true is implicit TLS: set starttls to 'auto' or 'never'")
        return self

    @property
    def where(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"

    def secret(self) -> str | None:
        """Return the password (read from ``password_file`` if set), or ``None``.

        Raises:
            ConfigError: the password file cannot be read or is empty.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the SMTP password file: {exc.__class__.__name__}",
                where=str(self.password_file),
            ) from exc
        secret = text.rstrip("\r\n")
        if not secret:
            raise ConfigError("the SMTP password file is empty", where=str(self.password_file))
        return secret

    def tls_context(self) -> ssl.SSLContext:
        """Return the TLS context for implicit TLS and STARTTLS.

        Raises:
            ConfigError: ``cafile`` cannot be loaded.
        """
        try:
            context = ssl.create_default_context(
                cafile=str(self.cafile) if self.cafile is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the SMTP CA file: {exc}", where=str(self.cafile)
            ) from exc
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the server said about each recipient of a mail it accepted.

    Attributes:
        accepted: addresses the server took.
        refused: address → server reply, for permanent refusals (5xx).
        deferred: address → server reply, for temporary refusals (4xx): send again later.
    """

    accepted: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)
    deferred: Mapping[str, str] = field(default_factory=dict)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:300]


async def send_mail(settings: SmtpSettings, mail: Mail, *, sender: str) -> Delivery:
    """Send ``mail`` from ``sender`` (``"wesh@example.org"`` or ``"Wesh <wesh@...>"``).

    Returns:
        The :class:`Delivery`: who accepted it, who refused it (some recipients only).

    Raises:
        TransientError: the server is down, slow, or answered 4xx (retry later).
        AuthenticationError: the server refused the credentials.
        ConfigError: TLS required but not offered, a certificate refused, a password
            that would travel in clear, an unreadable password file.
        BadInputError: the server refused every recipient or the message for good (5xx).
        UsageError: the mail has no recipient or a header cannot be encoded.
    """
    envelope_from = parseaddr(sender)[1]
    if not envelope_from:
        raise UsageError(f"not a sender address: {sender!r}")
    if not mail.to:
        raise UsageError(f"mail {mail.message_id} has no recipient")
    message = to_message(mail, sender=sender)
    password = settings.secret()
    context = settings.tls_context() if (settings.tls or settings.starttls != "never") else None
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.tls,
        start_tls=False,  # decided below, so that "auto" and "always" mean what we say
        tls_context=context,
        timeout=settings.timeout_s,
    )
    try:
        await client.connect()
        try:
            errors = await _converse(
                client,
                settings=settings,
                message=message,
                envelope_from=envelope_from,
                password=password,
                mail=mail,
            )
        finally:
            await _quit(client)
    except WeshError:
        raise
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise _all_refused(exc, settings, mail) from exc
    except aiosmtplib.SMTPException as exc:
        raise _translate(exc, settings, mail) from exc
    except ssl.SSLError as exc:
        raise _tls_error(exc, settings) from exc
    except (OSError, TimeoutError) as exc:
        raise ConnectionFailed(
            f"cannot reach the SMTP server: {exc.__class__.__name__}: {exc}", host=settings.where
        ) from exc
    refused = {a: _reply(r.code, r.message) for a, r in errors.items() if r.code >= 500}
    deferred = {a: _reply(r.code, r.message) for a, r in errors.items() if r.code < 500}
    accepted = tuple(address for address in mail.to if address not in errors)
    if refused or deferred:
        _LOG.warning(
            "SMTP %s took %s for %d recipient(s) but refused %s and deferred %s",
            settings.where,
            mail.message_id,
            len(accepted),
            sorted(refused),
            sorted(deferred),
        )
    return Delivery(accepted=accepted, refused=refused, deferred=deferred)


async def _converse(
    client: aiosmtplib.SMTP,
    *,
    settings: SmtpSettings,
    message: EmailMessage,
    envelope_from: str,
    password: str | None,
    mail: Mail,
) -> Mapping[str, aiosmtplib.SMTPResponse]:
    encrypted = settings.tls
    await client.ehlo()
    if not settings.tls and settings.starttls != "never":
        if client.supports_extension("starttls"):
            await client.starttls()
            encrypted = True
        elif settings.starttls == "always":
            raise ConfigError(
                "the SMTP server does not offer STARTTLS and starttls = 'always'",
                host=settings.where,
            )
    if settings.username:
        if not encrypted and not _is_loopback(settings.host):
            raise ConfigError(
                "refusing to send SMTP credentials in clear: enable STARTTLS or TLS",
                host=settings.where,
            )
        try:
            await client.login(settings.username, password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.code < 500:
                raise TransientError(
                    f"SMTP login deferred: {_reply(exc.code, exc.message)}", host=settings.where
                ) from exc
            raise AuthenticationError(
                f"SMTP login refused for user {settings.username!r}: "
                f"{_reply(exc.code, exc.message)}",
                host=settings.where,
            ) from exc
        except aiosmtplib.SMTPException as exc:
            if "not supported" in str(exc):
                raise ConfigError(
                    "the SMTP server offers no AUTH here (is STARTTLS required first?)",
                    host=settings.where,
                ) from exc
            raise
    errors, _reply_text = await client.sendmail(
        envelope_from,
        list(mail.to),
        message.as_bytes(),
    )
    return errors


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _all_refused(
    exc: aiosmtplib.SMTPRecipientsRefused, settings: SmtpSettings, mail: Mail
) -> WeshError:
    replies = {r.recipient: _reply(r.code, r.message) for r in exc.recipients}
    shown = "; ".join(f"{address}: {reply}" for address, reply in sorted(replies.items()))
    if any(r.code < 500 for r in exc.recipients):
        return TransientError(f"every recipient deferred ({shown})", host=settings.where)
    return BadInputError(
        f"every recipient refused for mail {mail.message_id} ({shown})", host=settings.where
    )


def _translate(exc: aiosmtplib.SMTPException, settings: SmtpSettings, mail: Mail) -> WeshError:
    where = settings.where
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return DeviceTimeout(f"the SMTP server did not answer in time: {exc}", host=where)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
            return _tls_error(exc.__cause__, settings)
        return ConnectionFailed(f"cannot talk to the SMTP server: {exc}", host=where)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = _reply(exc.code, exc.message)
        if exc.code < 500:
            return TransientError(f"the SMTP server deferred the mail: {reply}", host=where)
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            return ConfigError(
                f"the SMTP server refused the sender {exc.sender}: {reply}", host=where
            )
        return BadInputError(f"the SMTP server refused mail {mail.message_id}: {reply}", host=where)
    if isinstance(exc.__cause__, ssl.SSLError):
        return _tls_error(exc.__cause__, settings)
    return TransientError(f"SMTP error: {exc}", host=where)


def _tls_error(exc: ssl.SSLError, settings: SmtpSettings) -> WeshError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigError(
            f"the SMTP server's certificate was refused: {exc.verify_message}"
            " (set cafile, or verify = false on a trusted network)",
            host=settings.where,
        )
    return ConnectionFailed(f"TLS failed with the SMTP server: {exc}", host=settings.where)
