"""Local servers that speak the vendors' protocols, on loopback only.

- `SmtpSink`: a real SMTP server (aiosmtpd) that keeps every message it accepts; it refuses
  `nobody@` (550 5.1.1) and `busy@` (451), and answers a message to `slow@` only after 2 s.
- `FakeTwilio`: the Messages endpoint the `twilio` client calls
  (`POST /2010-04-01/Accounts/{sid}/Messages.json`, form body, Basic auth) and the Content API's
  create (`POST /v1/Content`, JSON; `contents` holds each one), answering each request after
  `latency` seconds (a number, or a range to draw from: Twilio's own take 100-300 ms), with a
  script of replies to messages: `"ok"`, `"timeout"` (answer after the client gave up; nothing
  is kept), `"not-json"` (the message is kept and the answer is a 201 whose body is not JSON), an
  error code such as `21610`, or an HTTP status alone such as `503`. `to` counts the requests
  per `To` number.
- `FakeFcm`: Google's token endpoint (verifies the JWT with the service account's public
  key) and FCM's `messages:send`; the token `"dead-token"` is unregistered, and a message to
  `"garbled-token"` is kept but answered with a 200 that is not JSON.
- `FakeRbm`: the same token endpoint and RCS Business Messaging's agentMessages (409 for a
  repeated agent-assigned message id; a message to `GARBLED_PHONE` is kept but answered with a
  200 that is not JSON) and capability check, answering in 100-300 ms; `rbm_push` makes the
  signed body of one of its webhook events.
- `HookSink`: a JSON receiver for the webhook channel.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

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


Latency = float | tuple[float, float]
"""Seconds a fake takes to answer: a fixed time, or a range (low, high) to draw each from."""


class _Http:
    """A ThreadingHTTPServer on loopback whose requests (POST and GET) go to `route(handler, body)`,
    each on its own thread; a route calls `pause()` where the vendor would take its time (`latency`),
    so many requests are in it at once, as at the vendor's own servers. `most_at_once` is the most
    requests it has held at one time."""

    def __init__(self, route: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, Any]],
                 latency: Latency = 0.0) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.holding():
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
        self.latency = latency
        self.most_at_once = 0
        self._held = 0
        self._counting = threading.Lock()
        self.httpd = _Listener(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @contextmanager
    def holding(self) -> Iterator[None]:
        with self._counting:
            self._held += 1
            self.most_at_once = max(self.most_at_once, self._held)
        try:
            yield
        finally:
            with self._counting:
                self._held -= 1

    def pause(self) -> None:
        """Take as long as the vendor does to answer."""
        low, high = self.latency if isinstance(self.latency, tuple) else (self.latency, self.latency)
        if high > 0:
            time.sleep(random.uniform(low, high))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeTwilio(_Http):
    def __init__(self, delay: float = 1.0, latency: Latency = 0.0) -> None:
        super().__init__(self._handle, latency)
        self.delay = delay
        self.script: list[Any] = []
        self.messages: list[dict[str, list[str]]] = []
        self.contents: list[dict[str, Any]] = []  # each Content API request, as JSON
        self.requests = 0
        self.bodies: list[str] = []  # the Body of every request, answered or not
        self.to: Counter[str] = Counter()  # requests per To number, answered or not
        self.times: list[float] = []  # time.monotonic() of every request as it came in
        self.calling: Counter[str] = Counter()  # requests per From number taken in and not yet answered
        self._lock = threading.Lock()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if handler.path == "/v1/Content":
            return self._content(handler, body)
        if handler.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return 404, {"code": 20404, "message": "not found", "status": 404}
        form = parse_qs(body.decode(), keep_blank_values=True)
        with self._lock:
            self.requests += 1
            self.times.append(time.monotonic())
            self.bodies.append(form.get("Body", [""])[0])
            self.to[form.get("To", [""])[0]] += 1
            step = self.script.pop(0) if self.script else "ok"
            sender = form.get("From", [""])[0]
            self.calling[sender] += 1
        try:
            self.pause()
        finally:
            with self._lock:
                self.calling[sender] -= 1
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

    def _content(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        """The Content API's create: JSON with friendly_name, language and one type per content type."""
        if handler.headers.get("Content-Type") != "application/json":
            return 400, {"code": 20001, "message": "expected JSON", "status": 400}
        request = json.loads(body)
        self.pause()
        types = request.get("types")
        if not request.get("friendly_name") or not request.get("language") or not isinstance(types, dict) or \
                not types or any(not k.startswith("twilio/") or v is None for k, v in types.items()):
            return 400, {"code": 20001, "message": "friendly_name, language and types are required", "status": 400}
        with self._lock:
            self.contents.append(request)
            sid = f"HX{len(self.contents):032d}"
        return 201, {"sid": sid, "account_sid": ACCOUNT_SID, "friendly_name": request["friendly_name"],
                     "language": request["language"], "types": types, "variables": {}}


def service_account(project: str = "demo-project") -> tuple[dict[str, str], rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return ({"type": "service_account", "project_id": project, "private_key_id": "k1", "private_key": pem,
             "client_email": f"sender@{project}.iam.gserviceaccount.com"}, key.public_key())


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _GoogleApi(_Http):
    """Google's token endpoint (`/token` checks the RS256 JWT of a service account and its scope) and
    an API that wants the token last issued."""

    scope = ""

    def __init__(self, public_key: rsa.RSAPublicKey, latency: Latency = 0.0) -> None:
        super().__init__(self._handle, latency)
        self.public_key = public_key
        self.tokens_issued = 0
        self.assertions: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        self.pause()
        if handler.path == "/token":
            return self._token(body)
        if handler.headers.get("Authorization") != f"Bearer access-{self.tokens_issued}":
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}}
        return self._api(handler, body)

    def _api(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

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
        claimed = json.loads(_unb64(claims))
        if self.scope and claimed.get("scope") != self.scope:
            return 400, {"error": "invalid_scope"}
        with self._lock:
            self.assertions.append(claimed)
            self.tokens_issued += 1
            issued = self.tokens_issued
        return 200, {"access_token": f"access-{issued}", "expires_in": 3599, "token_type": "Bearer"}


class FakeFcm(_GoogleApi):
    """FCM's `/v1/projects/{project}/messages:send`; the token `"dead-token"` is unregistered, and
    `"garbled-token"` is taken but answered with a 200 that is not JSON."""

    def __init__(self, public_key: rsa.RSAPublicKey, project: str = "demo-project") -> None:
        super().__init__(public_key)
        self.project = project
        self.sent: list[dict[str, Any]] = []

    def _api(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        if handler.path != f"/v1/projects/{self.project}/messages:send":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such project"}}
        message = json.loads(body)["message"]
        if message["token"] == "dead-token":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                                   "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                                "errorCode": "UNREGISTERED"}]}}
        with self._lock:
            self.sent.append(message)
            number = len(self.sent)
        if message["token"] == "garbled-token":  # taken, but the answer is not FCM's JSON
            return 200, b"<html>OK</html>"
        return 200, {"name": f"projects/{self.project}/messages/0:{number}"}


RBM_AGENT = "acme-agent"
RBM_CLIENT_TOKEN = "rbm-client-token-0123456789"
GARBLED_PHONE = "+15005550199"


class FakeRbm(_GoogleApi):
    """RBM's agentMessages (an agent-assigned `messageId` seen before is 409 ALREADY_EXISTS, as Google
    answers a repeat) and capabilities (a number in `not_capable` is 404 NOT_FOUND), 100-300 ms a
    request. `sent` holds each accepted message: phone, messageId, agentId, contentMessage."""

    scope = "https://www.googleapis.com/auth/rcsbusinessmessaging"

    def __init__(self, public_key: rsa.RSAPublicKey, agent_id: str = RBM_AGENT) -> None:
        super().__init__(public_key, latency=(0.1, 0.3))
        self.agent_id = agent_id
        self.sent: list[dict[str, Any]] = []
        self.not_capable: set[str] = set()
        self.capability_checks: list[str] = []
        self.script: list[int] = []  # HTTP statuses to answer the next agent messages with

    def _api(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        path, _, query = handler.path.partition("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        parts = path.split("/")  # '', 'v1', 'phones', '+1415...', 'agentMessages'
        if len(parts) != 5 or parts[:3] != ["", "v1", "phones"] or params.get("agentId") != self.agent_id:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no such resource {path}"}}
        phone = unquote(parts[3])
        if parts[4] == "capabilities" and handler.command == "GET":
            return self._capabilities(phone, params)
        if parts[4] == "agentMessages" and handler.command == "POST":
            return self._agent_message(phone, params, json.loads(body))
        return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": f"no such resource {path}"}}

    def _capabilities(self, phone: str, params: dict[str, str]) -> tuple[int, Any]:
        if not params.get("requestId"):
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "requestId is required"}}
        with self._lock:
            self.capability_checks.append(phone)
        if phone in self.not_capable:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found."}}
        return 200, {"features": ["RICHCARD_STANDALONE", "RICHCARD_CAROUSEL", "ACTION_CREATE_CALENDAR_EVENT",
                                  "ACTION_DIAL", "ACTION_OPEN_URL", "ACTION_SHARE_LOCATION",
                                  "ACTION_VIEW_LOCATION"]}

    def _agent_message(self, phone: str, params: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        message_id = params.get("messageId", "")
        with self._lock:
            status = self.script.pop(0) if self.script else 200
            if status != 200:
                return status, {"error": {"code": status, "status": "UNAVAILABLE", "message": f"HTTP {status}"}}
            if any(m["messageId"] == message_id for m in self.sent):
                return 409, {"error": {"code": 409, "status": "ALREADY_EXISTS",
                                       "message": "Requested entity already exists"}}
            if phone in self.not_capable:
                return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "not reachable by RCS"}}
            self.sent.append({"phone": phone, "messageId": message_id, "agentId": params["agentId"], **body})
        if phone == GARBLED_PHONE:  # taken, but the answer is not RBM's JSON
            return 200, b"<html>OK</html>"
        return 200, {"name": f"phones/{phone}/agentMessages/{message_id}", "sendTime": "2026-01-05T12:00:00Z",
                     **body}


def rbm_push(data: dict[str, Any], token: str = RBM_CLIENT_TOKEN) -> tuple[bytes, str]:
    """The body RBM's Pub/Sub push posts to an agent's webhook for one event, and its X-Goog-Signature."""
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    body = {"message": {"data": encoded, "messageId": f"ps-{abs(hash(encoded))}", "publishTime":
                        "2026-01-05T12:00:01Z"}, "subscription": "projects/rbm-acme-agent/subscriptions/rbm-agent"}
    signature = base64.b64encode(hmac.new(token.encode(), encoded.encode(), hashlib.sha512).digest()).decode()
    return json.dumps(body).encode(), signature


class HookSink(_Http):
    def __init__(self) -> None:
        super().__init__(self._handle)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        self._lock = threading.Lock()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        with self._lock:
            status = self.script.pop(0) if self.script else 200
            if status == 200:
                self.received.append(({k.lower(): v for k, v in handler.headers.items()}, body))
                return 200, {"id": f"hook-{len(self.received)}"}
        return status, {"error": "no"}
