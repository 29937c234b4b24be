"""Email over SMTP with the standard library's `smtplib`.

One connection per message (simple and robust; a relay such as Postfix does the pooling),
`concurrency` of them at once. Error mapping: 4xx replies, refused connections and timeouts
before the message went out are temporary; 5xx replies are permanent, and a 5xx that names a
bad mailbox or domain (enhanced codes 5.1.x) also marks the address unusable. A refused login
is temporary: it is our configuration, not the recipient, and the channel's next provider may
take the message. Once the message and its final dot went out, a timeout or a dropped
connection instead of the relay's reply is in doubt: the relay may have queued it.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from channels.providers.base import (
    InDoubtDeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

BAD_MAILBOX = re.compile(rb"\b5\.1\.\d{1,3}\b")


class SmtpProvider:
    """`sender` is the From header; `unsubscribe_url` / `unsubscribe_mailto` feed the List-Unsubscribe
    header of marketing mail (`{user_id}` and `{message_id}` are filled in)."""

    def __init__(self, host: str, sender: str, port: int = 25, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 10.0,
                 unsubscribe_url: str | None = None, unsubscribe_mailto: str | None = None,
                 *, clock: Callable[[], float], name: str = "smtp", concurrency: int = 1) -> None:
        self.name = name
        self.concurrency = concurrency
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_mailto = unsubscribe_mailto
        self._clock = clock

    def __repr__(self) -> str:  # never shows the password
        return f"SmtpProvider(name={self.name!r}, host={self.host!r}, port={self.port})"

    def send(self, message: OutboundMessage) -> str:
        if not message.address:
            raise PermanentDeliveryError("no email address", unusable_address=True)
        email = self.compose(message)
        session: _Session | None = None
        try:
            session = _Session(self.host, self.port, timeout=self.timeout)
            self._deliver(session, email)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc) from exc
        except smtplib.SMTPAuthenticationError as exc:  # our credentials, not the recipient: fail over
            raise TemporaryDeliveryError(f"{self.host}:{self.port}: login refused ({exc.smtp_code})") from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused connections
            reason = f"{self.host}:{self.port}: {exc.__class__.__name__}: {exc}"
            if session is not None and session.body_sent:
                raise InDoubtDeliveryError(f"{reason} (after the message went out)") from exc
            raise TemporaryDeliveryError(reason) from exc
        finally:
            if session is not None:
                _quit(session)
        return str(email["Message-ID"])

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message: a text part, and an HTML alternative when the content has `html`."""
        content = message.content
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.address or ""
        email["Subject"] = str(content.get("subject", ""))
        email["Date"] = formatdate(self._clock(), localtime=False, usegmt=True)
        email["Message-ID"] = f"<{message.message_id}@{_domain(self.sender)}>"  # a retry keeps it: receivers dedupe
        email["X-Journey-Message-Id"] = message.message_id
        if message.category == "marketing":
            self._unsubscribe_headers(email, message)
        email.set_content(str(content.get("body", "")))
        if content.get("html"):
            email.add_alternative(str(content["html"]), subtype="html")
        return email

    def _unsubscribe_headers(self, email: EmailMessage, message: OutboundMessage) -> None:
        targets = []
        if self.unsubscribe_mailto:
            targets.append(f"<mailto:{_fill(self.unsubscribe_mailto, message)}>")
        if self.unsubscribe_url:
            targets.append(f"<{_fill(self.unsubscribe_url, message)}>")
        if targets:
            email["List-Unsubscribe"] = ", ".join(targets)
        if self.unsubscribe_url:  # RFC 8058 one-click, needs an https target
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    def _deliver(self, smtp: smtplib.SMTP, email: EmailMessage) -> None:
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if self.username:
            smtp.login(self.username, self._password or "")
        smtp.send_message(email)


class _Session(smtplib.SMTP):
    """Knows whether the message itself went out (its data and the final dot): a failure after
    that is in doubt, the relay may have queued it before its reply was lost."""

    body_sent = False

    def send(self, s: Any) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.body_sent = True


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye, quietly: the message's fate was settled by the relay's reply to it."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _fill(template: str, message: OutboundMessage) -> str:
    return template.replace("{user_id}", message.user_id).replace("{message_id}", message.message_id)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip("> ") or "localhost"


def _by_code(code: int, text: bytes | str) -> Exception:
    raw = text if isinstance(text, bytes) else text.encode()
    reason = f"SMTP {code}: {raw.decode(errors='replace')}"
    if 500 <= code < 600:
        return PermanentDeliveryError(reason, unusable_address=bool(BAD_MAILBOX.search(raw)))
    return TemporaryDeliveryError(reason)


def _refused(exc: smtplib.SMTPRecipientsRefused) -> Exception:
    code, text = next(iter(exc.recipients.values()), (450, b"recipient refused"))
    return _by_code(code, text)
