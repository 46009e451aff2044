"""A small capturing SMTP server on loopback, for ``make demo`` and the tests.

It is a real SMTP server (aiosmtpd) run by an event loop in its own thread, so that
synchronous code (the demo, a scenario) and asynchronous tests can use it alike::

    with CaptureServer() as server:                 # 127.0.0.1, a free port
        settings = SmtpSettings(host="127.0.0.1", port=server.port)
        ...                                         # send mails
        for mail in server.messages: print(mail.subject, mail.rcpt_tos)

Options: STARTTLS with a certificate (:func:`make_self_signed` writes one for
``localhost``/``127.0.0.1``), AUTH PLAIN/LOGIN against a user table, per-recipient
refusals (``{"nobody@example.org": "550 5.1.1 no such user"}``) and a reply for DATA
(``"451 4.3.0 try later"``). :meth:`CaptureServer.stop` then :meth:`CaptureServer.start`
listen again on the same port, to play "the mail server went down and came back".

aiosmtpd is an optional dependency (extras ``demo`` and ``dev``): without it, this module
imports, and making a server raises :class:`~wesh.errors.ConfigError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

from wesh.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

__all__ = ["CaptureServer", "CapturedMail", "make_self_signed"]

_LOG = logging.getLogger(__name__)
_START_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class CapturedMail:
    """One message the server accepted.

    Attributes:
        mail_from: the envelope sender.
        rcpt_tos: the envelope recipients it accepted.
        data: the message as received.
        authenticated_as: the AUTH login of the session, if any.
        tls: whether the session was encrypted (STARTTLS) when the mail arrived.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    authenticated_as: str | None = None
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        """The parsed message (``email.policy.default``)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)  # noqa: S101 - the default policy's class
        return parsed

    @property
    def subject(self) -> str:
        """The decoded ``Subject``."""
        return str(self.message["Subject"] or "")

    def body(self, subtype: str = "plain") -> str:
        """Return the decoded ``text/<subtype>`` part (``""`` if there is none)."""
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or not isinstance(part, EmailMessage):
            return ""
        content = part.get_content()
        return content if isinstance(content, str) else ""


def make_self_signed(
    folder: Path, *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> tuple[Path, Path]:
    """Write a self-signed certificate and its key for ``hosts`` into ``folder``.

    Returns:
        ``(cert.pem, key.pem)``; the certificate is also the CA file a client trusts.
    """
    from cryptography import x509  # noqa: PLC0415 - only tests and the demo need it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _as_bytes(content: bytes | str | None) -> bytes:
    if content is None:
        return b""
    return content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content


class _Handler:
    """aiosmtpd handler: applies refusals, records accepted messages."""

    def __init__(self, owner: CaptureServer) -> None:
        self._owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._owner.refusals.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._owner.data_reply
        if reply is not None:
            return reply
        login = getattr(session, "auth_data", None)  # the user name our authenticator kept
        self._owner._record(
            CapturedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=_as_bytes(envelope.original_content or envelope.content),
                authenticated_as=login if isinstance(login, str) else None,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 Message accepted"


class CaptureServer:
    """An SMTP server on loopback that keeps what it receives (see the module docstring).

    Args:
        host: the address to listen on (loopback).
        port: 0 for a free port (kept across :meth:`stop`/:meth:`start`).
        cert: ``(cert.pem, key.pem)`` to offer STARTTLS.
        require_starttls: refuse MAIL before STARTTLS.
        implicit_tls: TLS from the first byte (port 465 style) instead of STARTTLS.
        users: login → password; AUTH is then offered (and required, after STARTTLS, when
            ``cert`` is given without ``implicit_tls``).
        refusals: recipient address → SMTP reply to RCPT (e.g. ``"550 no such user"``).
        data_reply: if set, the reply to every DATA (nothing is recorded).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert: tuple[Path, Path] | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        users: Mapping[str, str] | None = None,
        refusals: Mapping[str, str] | None = None,
        data_reply: str | None = None,
    ) -> None:
        try:
            from aiosmtpd.smtp import SMTP  # noqa: PLC0415 - a development dependency
        except ImportError as exc:
            raise ConfigError(
                "the capturing SMTP server needs aiosmtpd (pip install 'wesh[demo]')"
            ) from exc
        self._smtp_class = SMTP
        self.host = host
        self.port = port
        self._tls: ssl.SSLContext | None = None
        if cert is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(str(cert[0]), str(cert[1]))
        if implicit_tls and self._tls is None:
            raise UsageError("implicit TLS needs a certificate")
        self._implicit_tls = implicit_tls
        self._require_starttls = require_starttls
        self._users = dict(users or {})
        self.refusals: dict[str, str] = {k.lower(): v for k, v in (refusals or {}).items()}
        self.data_reply = data_reply
        self._lock = threading.Lock()
        self._messages: list[CapturedMail] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.connections = 0

    # --- what was received ----------------------------------------------------------------

    @property
    def messages(self) -> list[CapturedMail]:
        """A copy of the messages received so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._lock:
            self._messages.clear()

    def _record(self, mail: CapturedMail) -> None:
        with self._lock:
            self._messages.append(mail)
        _LOG.info("captured a mail from %s to %s", mail.mail_from, ", ".join(mail.rcpt_tos))

    # --- life -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._thread is not None

    def start(self) -> None:
        """Listen (on the same port as before after a :meth:`stop`).

        Raises:
            UsageError: already running.
            ConfigError: the port cannot be bound.
        """
        if self._thread is not None:
            raise UsageError("the capturing SMTP server is already running")
        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"smtp-capture-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_S) or self._error is not None:
            thread, self._thread = self._thread, None
            thread.join(_START_TIMEOUT_S)
            raise ConfigError(
                f"cannot start the capturing SMTP server: {self._error}",
                host=f"{self.host}:{self.port}",
            ) from self._error

    def stop(self) -> None:
        """Stop listening and close every open session (idempotent)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._thread = None

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> CaptureServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _factory(self) -> SMTP:
        from aiosmtpd.smtp import AuthResult  # noqa: PLC0415

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
        ) -> AuthResult:
            login = getattr(auth_data, "login", b"")
            password = getattr(auth_data, "password", b"")
            user = login.decode() if isinstance(login, bytes) else str(login)
            secret = password.decode() if isinstance(password, bytes) else str(password)
            ok = user in self._users and self._users[user] == secret
            return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

        self.connections += 1
        starttls = self._tls is not None and not self._implicit_tls
        return self._smtp_class(
            _Handler(self),
            hostname="wesh-capture",
            tls_context=None if self._implicit_tls else self._tls,
            require_starttls=self._require_starttls,
            # AUTH is required behind STARTTLS; elsewhere it is offered but optional
            # (aiosmtpd warns about required AUTH without required STARTTLS).
            auth_required=bool(self._users) and starttls,
            auth_require_tls=starttls or not self._users,  # no users: no AUTH offered
            authenticator=authenticate if self._users else None,
            timeout=30,
            loop=self._loop,
        )

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # aiosmtpd's TLS code asks for "the" loop of the thread
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
            self._loop = None

    async def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await loop.create_server(
                self._factory,
                self.host,
                self.port,
                ssl=self._tls if self._implicit_tls else None,
            )
        except OSError as exc:
            self._error = exc
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            current = asyncio.current_task()
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
