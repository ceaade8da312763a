"""A loopback HTTP server with Range support serving a tmp folder, for the download tests."""
from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET files under ``server.folder``; honours ``Range: bytes=N-``; ``server.cut[path] = k`` sends k bytes then closes."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.server.folder) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, status = 0, 200
        header = self.headers.get("Range")
        if header and header.startswith("bytes=") and self.server.ranges:
            start, status = int(header[6:].split("-")[0]), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = self.server.cut.get(self.path)
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def http_server(tmp_path):
    """(base URL, server) for a ThreadingHTTPServer on 127.0.0.1 serving ``tmp_path / "www"``."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.folder, server.requests, server.cut, server.ranges = folder, [], {}, True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
