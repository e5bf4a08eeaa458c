"""Captioners without model weights: given text, files, EXIF/XMP metadata, and the OpenAI-compatible
endpoint against a real HTTP server on 127.0.0.1; Srr over that endpoint; configuration errors."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from semcodec.errors import MissingComponentError, SemcodecError
from semcodec.semantic.captioners import (
    ChatCaptioner,
    FileCaptioner,
    MetadataCaptioner,
    TextCaptioner,
    itc_style,
    limit_words,
    make_captioner,
    read_image_description,
    resulic_style,
)
from semcodec.semantic.chat import ChatEndpoint
from semcodec.semantic.config import SemanticConfig
from semcodec.semantic.srr import semantic_residual


class ChatServer:
    """A real OpenAI-style ``/v1/chat/completions`` server; ``reply(body) -> str`` scripts answers."""

    def __init__(self, reply: Callable[[dict], str]):
        self.reply, self.requests = reply, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": outer.reply(body)},
                     "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server() -> Iterator[Callable[[Callable[[dict], str]], ChatServer]]:
    servers = []

    def start(reply: Callable[[dict], str]) -> ChatServer:
        servers.append(ChatServer(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_limit_words():
    text = "One two three. Four five six seven eight nine ten eleven twelve."
    assert limit_words(text, None) == text
    assert limit_words("  a   b\nc ", 5) == "a b c"
    assert limit_words(text, 4) == "One two three."  # sentence end inside the last third of the budget
    cut = limit_words(" ".join(f"w{i}" for i in range(80)), 50)
    assert len(cut.split()) == 50 and cut.endswith(".")


def test_given_text_and_file(tmp_path, natural_image):
    assert TextCaptioner("a red car").caption(natural_image) == "a red car"
    assert len(TextCaptioner(" ".join(["word"] * 60), max_words=50).caption(natural_image).split()) == 50
    f = tmp_path / "cap.txt"
    f.write_text("a harbour at dusk\n", encoding="utf-8")
    assert FileCaptioner(f).caption(natural_image) == "a harbour at dusk"
    f.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(SemcodecError):
        FileCaptioner(f)


def test_exif_and_xmp_descriptions(tmp_path, natural_image):
    jpg = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif[0x010E] = "Two boats moored in a calm harbour"
    Image.fromarray(natural_image).save(jpg, exif=exif)
    assert read_image_description(jpg) == "Two boats moored in a calm harbour"
    png = tmp_path / "xmp.png"
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>'
           '<rdf:li xml:lang="de">Ein Hund</rdf:li><rdf:li xml:lang="x-default">A dog on a beach</rdf:li>'
           '</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>')
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    Image.fromarray(natural_image).save(png, pnginfo=info)
    assert read_image_description(png) == "A dog on a beach"
    assert MetadataCaptioner(png).caption(natural_image) == "A dog on a beach"
    plain = tmp_path / "plain.png"
    Image.fromarray(natural_image).save(plain)
    assert read_image_description(plain) is None
    with pytest.raises(SemcodecError):
        MetadataCaptioner(plain).caption(natural_image)
    # make_captioner prefers given text, then metadata; with neither and no model it explains what to set
    cfg = SemanticConfig()
    assert make_captioner("itc", cfg, text="given").caption(natural_image) == "given"
    assert make_captioner("itc", cfg, image_path=png).caption(natural_image) == "A dog on a beach"
    with pytest.raises(MissingComponentError, match="SEMCODEC_VLM"):
        make_captioner("itc", cfg, image_path=plain)


def test_endpoint_captioner_request_shape(chat_server, natural_image, monkeypatch):
    long_answer = " ".join(["sunny"] * 70)
    srv = chat_server(lambda body: long_answer)
    monkeypatch.setenv("MY_TEST_KEY", "sk-test-123")
    cfg = SemanticConfig(chat_url=srv.url + "/", chat_model="gpt-4o", chat_api_key_env="MY_TEST_KEY")
    cap = make_captioner("itc", cfg)
    assert isinstance(cap, ChatCaptioner)
    text = cap.caption(natural_image)
    assert len(text.split()) == 50  # ITC limit enforced on an over-long answer
    (req,) = srv.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test-123"
    body = req["body"]
    assert body["model"] == "gpt-4o" and body["temperature"] == 0
    (msg,) = body["messages"]
    assert msg["role"] == "user"
    kinds = [c["type"] for c in msg["content"]]
    assert kinds == ["text", "image_url"]
    assert "50 words" in msg["content"][0]["text"]
    url = msg["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert np.array_equal(sent, natural_image)  # the exact pixels, inline
    # ResULIC style: different prompt (no feelings) and 40-word limit
    srv.requests.clear()
    assert len(ChatCaptioner(cfg.chat_endpoint(), resulic_style()).caption(natural_image).split()) == 40
    assert "feelings" in srv.requests[0]["body"]["messages"][0]["content"][0]["text"]


def test_endpoint_errors(chat_server, natural_image):
    with pytest.raises(MissingComponentError, match="SEMCODEC_CHAT_URL"):
        SemanticConfig().chat_endpoint()
    srv = chat_server(lambda body: "x")
    with pytest.raises(SemcodecError, match="HTTP 404"):
        ChatEndpoint(srv.url + "/wrong", "m").ask("hi")
    with pytest.raises(MissingComponentError, match="cannot reach"):
        ChatEndpoint("http://127.0.0.1:9/v1", "m", timeout=2).ask("hi")


def test_srr_sends_only_the_residual(chat_server, natural_image):
    decoded = np.clip(natural_image.astype(int) + 30, 0, 255).astype(np.uint8)

    def reply(body):
        content = body["messages"][0]["content"]
        prompt = content[0]["text"]
        if len(content) == 2:  # captioning request: say what the image is
            img = np.asarray(Image.open(io.BytesIO(base64.b64decode(content[1]["image_url"]["url"].split(",")[1]))))
            return "a red kite over green hills" if img.mean() < natural_image.mean() + 10 else "green hills"
        assert "A: a red kite over green hills" in prompt and "B: green hills" in prompt
        return "Missing: a red kite"

    srv = chat_server(reply)
    cfg = SemanticConfig(chat_url=srv.url, chat_model="m")
    cap = ChatCaptioner(cfg.chat_endpoint(), resulic_style())
    res = semantic_residual(natural_image, decoded, cap, cfg.text_chat())
    assert res.caption_original == "a red kite over green hills" and res.caption_decoded == "green hills"
    assert res.residual == "a red kite"
    # agreement: identical captions short-circuit to "" without asking the LLM
    n = len(srv.requests)
    assert semantic_residual(natural_image, natural_image, cap, cfg.text_chat()).residual == ""
    assert len(srv.requests) == n + 2
    srv.reply = lambda body: "green hills" if len(body["messages"][0]["content"]) == 2 else "NONE"
    assert semantic_residual(natural_image, decoded, cap, cfg.text_chat(),
                             caption_original="green hills, a sky").residual == ""


def test_missing_backends_say_what_to_set():
    cfg = SemanticConfig()
    for call, needle in [(cfg.vision_chat, "SEMCODEC_VLM"), (cfg.text_chat, "SEMCODEC_LLM"),
                         (cfg.grounder, "SEMCODEC_GROUNDING_DINO"), (cfg.segmenter, "SEMCODEC_SAM")]:
        with pytest.raises(MissingComponentError, match=needle):
            call()
    with pytest.raises(MissingComponentError, match="SEMCODEC_VLM"):
        SemanticConfig(vlm="/nonexistent/model-folder").vision_chat()


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("SEMCODEC_CHAT_URL", "http://h/v1")
    monkeypatch.setenv("SEMCODEC_SAM", "/sam")
    cfg = SemanticConfig.from_env(sam="/other", vlm=None)
    assert cfg.chat_url == "http://h/v1" and cfg.sam == "/other" and cfg.vlm is None
    assert itc_style().max_words == 50


def test_srr_residual_and_itc_caption(chat_server, natural_image):
    """What resulic (srr=True) and itc send as text: the Srr residual vs the plain caption."""
    from semcodec.semantic.captioners import make_captioner
    from semcodec.semantic.srr import semantic_residual

    decoded = natural_image // 2

    def reply(body):
        content = body["messages"][0]["content"]
        if len(content) == 2:
            img = np.asarray(Image.open(io.BytesIO(base64.b64decode(content[1]["image_url"]["url"].split(",")[1]))))
            return "a bright striped sign by a road" if img.mean() > decoded.mean() + 5 else "a dark road"
        return "a bright striped sign"

    srv = chat_server(reply)
    cfg = SemanticConfig(chat_url=srv.url, chat_model="m")
    res = semantic_residual(natural_image, decoded, make_captioner("resulic", cfg), cfg.text_chat())
    assert res.residual == "a bright striped sign"
    assert make_captioner("itc", cfg).caption(natural_image) == "a bright striped sign by a road"
