"""Local servers that speak the vendors' protocols, on loopback only.

- `SmtpSink`: a real SMTP server (aiosmtpd) that keeps every message it accepts; it refuses
  `nobody@` (550 5.1.1) and `busy@` (451), and answers a message to `slow@` only after 2 s.
- `FakeTwilio`: the Messages endpoint the `twilio` client calls
  (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form body, Basic auth), answering each
  request after `latency` seconds (Twilio's own take 100-300 ms), with a script of replies:
  `"ok"`, `"timeout"` (answer after the client gave up; nothing is kept), `"not-json"` (the
  message is kept and the answer is a 201 whose body is not JSON), an error code such as
  `21610`, or an HTTP status alone such as `503`. `to` counts the requests per `To` number.
- `FakeFcm`: Google's token endpoint (verifies the JWT with the service account's public
  key) and FCM's `messages:send`; the token `"dead-token"` is unregistered, and a message to
  `"garbled-token"` is kept but answered with a 200 that is not JSON.
- `HookSink`: a JSON receiver for the webhook channel.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """aiosmtpd on 127.0.0.1, a free port; `messages` are parsed `email.message.Message`s."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(BytesParser().parsebytes(envelope.original_content or envelope.content))
        if any(rcpt.startswith("slow@") for rcpt in envelope.rcpt_tos):  # kept, but the reply comes late
            await asyncio.sleep(2)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 mailbox unknown"
        if address.startswith("busy@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class _Listener(ThreadingHTTPServer):
    request_queue_size = 256  # many senders connect at once: none waits for a SYN retransmit


class _Http:
    """A ThreadingHTTPServer on loopback whose requests go to `route(handler, body)`."""

    def __init__(self, route: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, Any]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, doc = outer.route(self, body)
                if status == 0:  # "timeout": the client has given up; say nothing
                    return
                payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.route = route
        self.httpd = _Listener(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeTwilio(_Http):
    def __init__(self, delay: float = 1.0, latency: float = 0.0) -> None:
        super().__init__(self._handle)
        self.delay = delay
        self.latency = latency
        self.script: list[Any] = []
        self.messages: list[dict[str, list[str]]] = []
        self.requests = 0
        self.bodies: list[str] = []  # the Body of every request, answered or not
        self.to: Counter[str] = Counter()  # requests per To number, answered or not
        self.times: list[float] = []  # time.monotonic() of every request as it came in
        self._lock = threading.Lock()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if handler.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404, {"code": 20404, "message": "not found", "status": 404}
        if handler.headers.get("Authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        form = parse_qs(body.decode(), keep_blank_values=True)
        with self._lock:
            self.requests += 1
            self.times.append(time.monotonic())
            self.bodies.append(form.get("Body", [""])[0])
            self.to[form.get("To", [""])[0]] += 1
            step = self.script.pop(0) if self.script else "ok"
        if self.latency:
            time.sleep(self.latency)
        if step == "timeout":
            time.sleep(self.delay)
            return 0, None
        if isinstance(step, int) and step < 1000:  # an HTTP status alone, such as 503
            return step, {"code": 20000 + step, "message": f"HTTP {step}", "more_info": "", "status": step}
        if isinstance(step, int):
            status = 429 if step == 20429 else 400
            return status, {"code": step, "message": f"error {step}", "more_info": "", "status": status}
        with self._lock:
            self.messages.append(form)
            sid = f"SM{len(self.messages):032d}"
        if step == "not-json":
            return 201, b"<html>Created</html>"
        return 201, {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": form["To"][0],
                     "body": form.get("Body", [""])[0], "num_segments": "1"}


def service_account(project: str = "demo-project") -> tuple[dict[str, str], rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return ({"type": "service_account", "project_id": project, "private_key_id": "k1", "private_key": pem,
             "client_email": f"sender@{project}.iam.gserviceaccount.com"}, key.public_key())


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeFcm(_Http):
    """`/token` checks the RS256 JWT; `/v1/projects/{project}/messages:send` needs the issued token."""

    def __init__(self, public_key: rsa.RSAPublicKey, project: str = "demo-project") -> None:
        super().__init__(self._handle)
        self.public_key = public_key
        self.project = project
        self.sent: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.assertions: list[dict[str, Any]] = []

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        if handler.path == "/token":
            return self._token(body)
        if handler.path != f"/v1/projects/{self.project}/messages:send":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such project"}}
        if handler.headers.get("Authorization") != f"Bearer access-{self.tokens_issued}":
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}}
        message = json.loads(body)["message"]
        if message["token"] == "dead-token":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                                   "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                                "errorCode": "UNREGISTERED"}]}}
        self.sent.append(message)
        if message["token"] == "garbled-token":  # taken, but the answer is not FCM's JSON
            return 200, b"<html>OK</html>"
        return 200, {"name": f"projects/{self.project}/messages/0:{len(self.sent)}"}

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        header, claims, signature = form["assertion"].split(".")
        try:
            self.public_key.verify(_unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        self.assertions.append(json.loads(_unb64(claims)))
        self.tokens_issued += 1
        return 200, {"access_token": f"access-{self.tokens_issued}", "expires_in": 3599, "token_type": "Bearer"}


class HookSink(_Http):
    def __init__(self) -> None:
        super().__init__(self._handle)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            self.received.append(({k.lower(): v for k, v in handler.headers.items()}, body))
            return 200, {"id": f"hook-{len(self.received)}"}
        return status, {"error": "no"}
