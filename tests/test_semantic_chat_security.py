"""The chat endpoint client's network policy, against real HTTP servers on 127.0.0.1 only: plain http
only to loopback, the API key never follows a redirect to another origin, and no URL credential or
key ever reaches an error message."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from semcodec.errors import MissingComponentError, SemcodecError
from semcodec.semantic.chat import ChatEndpoint, check_endpoint_url, redact_url

KEY = "sk-very-secret-0123456789"


class Server:
    """Answers every request with ``respond(path) -> (status, headers, body)`` and records it."""

    def __init__(self, respond: Callable[[str], tuple[int, dict, bytes]]):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                status, headers, body = respond(self.path)
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server API

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ok(text: str = "fine") -> tuple[int, dict, bytes]:
    body = {"choices": [{"message": {"role": "assistant", "content": text}}]}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable], Server]]:
    monkeypatch.setenv("TEST_CHAT_KEY", KEY)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # talk to the local servers directly
    started: list[Server] = []

    def start(respond: Callable[[str], tuple[int, dict, bytes]]) -> Server:
        started.append(Server(respond))
        return started[-1]

    yield start
    for s in started:
        s.close()


def _endpoint(url: str) -> ChatEndpoint:
    return ChatEndpoint(url, "m", api_key_env="TEST_CHAT_KEY", timeout=5)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/v1", "http://127.9.9.9/v1", "http://localhost:1234/v1", "http://[::1]:8080/v1",
     "http://[::ffff:127.0.0.1]/v1", "https://api.example.com/v1", "https://10.0.0.5/v1"],
)
def test_allowed_urls(url: str) -> None:
    assert check_endpoint_url(url).hostname


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.example.com/v1", "plain-http"),
        ("http://10.0.0.5:8080/v1", "plain-http"),
        ("http://localhost.example.com/v1", "plain-http"),
        ("http://127.0.0.1.example.com/v1", "plain-http"),
        ("file:///etc/passwd", "must be https"),
        ("ftp://127.0.0.1/v1", "must be https"),
        ("127.0.0.1:8080/v1", "must be https"),
        ("http://127.0.0.1:99999999/v1", "malformed"),
    ],
)
def test_refused_urls(url: str, message: str) -> None:
    with pytest.raises(SemcodecError, match=message):
        ChatEndpoint(url, "m")


def test_credentials_in_the_url_are_refused_and_never_printed() -> None:
    for url in ("https://alice:hunter2@api.example.com/v1", "http://hunter2@127.0.0.1:8080/v1"):
        with pytest.raises(SemcodecError, match="carries credentials") as err:
            ChatEndpoint(url, "m")
        assert "hunter2" not in str(err.value) and "alice" not in str(err.value)
        assert "***@" in str(err.value)


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example:8443/v1?key=abc&api-version=2&flag#frag") == \
        "https://***@h.example:8443/v1?key=***&api-version=***&flag=***"
    assert redact_url("https://h/v1") == "https://h/v1"


def test_key_is_sent_to_the_configured_origin(servers) -> None:  # noqa: ANN001
    srv = servers(lambda path: _ok("hello"))
    assert _endpoint(srv.origin + "/v1/").ask("hi") == "hello"
    (req,) = srv.requests
    assert req["path"] == "/v1/chat/completions" and req["headers"]["Authorization"] == f"Bearer {KEY}"


def test_query_parameters_are_kept_and_redacted(servers) -> None:  # noqa: ANN001
    srv = servers(lambda path: (500, {}, b"internal error"))
    ep = _endpoint(srv.origin + "/v1?key=" + KEY)
    with pytest.raises(SemcodecError, match="HTTP 500") as err:
        ep.ask("hi")
    assert srv.requests[0]["path"] == f"/v1/chat/completions?key={KEY}"  # the server still gets it
    assert KEY not in str(err.value) and KEY not in ep.name and "key=***" in str(err.value)


@pytest.mark.parametrize("code", [301, 302, 303])
def test_key_never_follows_a_redirect_to_another_origin(servers, code: int) -> None:  # noqa: ANN001
    other = servers(lambda path: _ok("from the other server"))
    first = servers(lambda path: (code, {"Location": other.origin + "/elsewhere"}, b""))
    assert first.origin != other.origin  # same host, another port: another origin
    _endpoint(first.origin + "/v1").ask("hi")
    assert first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    (followed,) = other.requests
    assert followed["path"] == "/elsewhere"
    assert "Authorization" not in followed["headers"] and KEY not in json.dumps(followed)


def test_key_follows_a_redirect_within_the_same_origin(servers) -> None:  # noqa: ANN001
    srv = servers(lambda path: _ok("moved") if path == "/new" else (302, {"Location": "/new"}, b""))
    assert _endpoint(srv.origin + "/v1").ask("hi") == "moved"
    assert [r["path"] for r in srv.requests] == ["/v1/chat/completions", "/new"]
    assert srv.requests[1]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_redirect_to_plain_http_elsewhere_is_refused_before_connecting(servers) -> None:  # noqa: ANN001
    target = "http://user:pw@chat.example.invalid/v1?key=abc"
    srv = servers(lambda path: (302, {"Location": target}, b""))
    with pytest.raises(SemcodecError, match="refusing plain-http|carries credentials") as err:
        _endpoint(srv.origin + "/v1").ask("hi")
    assert "pw" not in str(err.value).replace("plain-http", "") and "abc" not in str(err.value)
    srv2 = servers(lambda path: (302, {"Location": "http://chat.example.invalid/v1"}, b""))
    with pytest.raises(SemcodecError, match="refusing plain-http"):
        _endpoint(srv2.origin + "/v1").ask("hi")


def test_errors_never_echo_the_key(servers) -> None:  # noqa: ANN001
    srv = servers(lambda path: (401, {}, f"bad token Bearer {KEY}".encode()))
    with pytest.raises(SemcodecError, match="HTTP 401") as err:
        _endpoint(srv.origin + "/v1").ask("hi")
    assert KEY not in str(err.value) and "Bearer ***" in str(err.value)
    srv.close()
    with pytest.raises(MissingComponentError, match="cannot reach") as err:
        _endpoint(srv.origin + "/v1?api_key=" + KEY).ask("hi")
    assert KEY not in str(err.value)
    srv2 = servers(lambda path: (200, {}, f"not json {KEY}".encode()))
    with pytest.raises(SemcodecError, match="unexpected body") as err:
        _endpoint(srv2.origin + "/v1").ask("hi")
    assert KEY not in str(err.value)
