"""Loopback HTTP servers standing in for a Teams incoming webhook and Slack's Web API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class RecordingServer:
    """Answers each POST with the next status of ``statuses`` (the last one repeats) and keeps the bodies."""

    def __init__(self, statuses: list[int] | None = None, slack: bool = False) -> None:
        self.statuses = list(statuses or [200])
        self.slack = slack
        self.received: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
                status = server.statuses.pop(0) if len(server.statuses) > 1 else server.statuses[0]
                if status < 300:
                    server.received.append(server._text_of(body, self.headers.get("Content-Type", "")))
                reply = json.dumps({"ok": status < 300, "channel": "C1", "ts": "1.0"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def _text_of(self, body: str, content_type: str) -> str:
        if self.slack:
            fields = json.loads(body) if "json" in content_type else {k: v[0] for k, v in parse_qs(body).items()}
            return fields.get("text", "")
        payload = json.loads(body)
        content = payload["attachments"][0]["content"]
        return "\n".join(block["text"] for block in content.get("body", [])) or content.get("text", "")

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
