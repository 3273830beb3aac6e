"""A Hugging Face Hub on this machine, for the tests: it answers as the Hub does, for what sdlens
(huggingface_hub in CPython, fetch() in the page) asks of it.

* `GET /api/models/{repo}[/revision/{rev}]`: the model info (its commit `sha`, `siblings`, `cardData`);
* `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=true`: each file's size, git blob id
  (`oid`) and, for LFS files, `lfs.oid` (the sha256);
* `HEAD|GET /{repo}/resolve/{rev}/{path}`: small files served at once; LFS files answered with a
  302 to a second origin (the "CDN", as cdn-lfs.hf.co), which serves Range requests;
* CORS on every answer, preflight (OPTIONS) included; 401/403/404 with the Hub's X-Error-Code.

Faults a test can ask for: `cut` (path → times: the CDN closes the connection halfway through)
and `corrupt` (paths served with one byte changed). `requests` records what was asked.
`tree_page` (entries per page) makes the tree API page its answer as the Hub does past 1,000
files: a `cursor` query and a Link header naming the next page.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_FROM = 10_000  # files this big (and every .onnx) are LFS files, as the Hub's .gitattributes makes them


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str = ""
    licence: str | None = None
    access: str = "public"  # or "private", "gated"
    #: sizes the tree lists instead of the files' own (a repo with a file too large for a browser,
    #: or a download large enough to ask first, without making one)
    listed_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.commit:
            digest = hashlib.sha1()
            for path in sorted(self.files):
                digest.update(path.encode() + hashlib.sha256(self.files[path]).digest())
            self.commit = digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith((".onnx", ".onnx_data")) or len(self.files[path]) >= LFS_FROM


def git_oid(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, X-Repo-Commit, X-Linked-Size, "
                                         "X-Linked-Etag, X-Error-Code, Accept-Ranges, Link"}


@dataclass
class MockHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    tree_page: int = 0  # 0: the whole tree in one answer

    def start(self) -> "MockHub":
        self.hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=False))
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, cdn=True))
        for server in (self.hub, self.cdn):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_origin(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def stop(self) -> None:
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    def find(self, repo: str, revision: str) -> Repo | None:
        found = self.repos.get(repo)
        return found if found and revision in ("main", found.commit) else None

    def blob(self, sha256: str) -> tuple[str, bytes] | None:
        for repo in self.repos.values():
            for path, data in repo.files.items():
                if hashlib.sha256(data).hexdigest() == sha256:
                    return path, data
        return None


def _handler(hub: MockHub, cdn: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
            self.send_response(status)
            for k, v in {**CORS, "Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, head: bool = False):
            self._send(status, json.dumps({"error": message}).encode(),
                       {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}, head)

        def do_OPTIONS(self):  # noqa: N802 (CORS preflight)
            self._send(204, headers={"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                     "Access-Control-Allow-Headers": "Range, Authorization, Content-Type",
                                     "Access-Control-Max-Age": "600"})

        def do_HEAD(self):  # noqa: N802
            self.do_GET(head=True)

        def do_GET(self, head: bool = False):  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if cdn:
                return self._cdn(path, head)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                return self._info(m.group(1), m.group(2) or "main", head)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
            if m:
                return self._tree(m.group(1), m.group(2), (m.group(3) or "").strip("/"), head, url)
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(m.group(1), m.group(2), m.group(3), head)
            self._error(404, "EntryNotFound", f"no route {path}", head)

        def _repo(self, name: str, revision: str, head: bool) -> Repo | None:
            repo = hub.repos.get(name)
            authorised = self.headers.get("Authorization") == "Bearer hf_test_token"
            if repo is None or (repo.access == "private" and not authorised):
                self._error(401 if self.headers.get("Authorization") is None else 404, "RepoNotFound",
                            "Repository not found", head)
                return None
            if repo.access == "gated" and not authorised:
                self._error(403, "GatedRepo", f"Access to model {name} is restricted. You must have access to it "
                                              "and be authenticated to access it.", head)
                return None
            if revision not in ("main", repo.commit):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                return None
            return repo

        def _json(self, value, head: bool):
            self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json"}, head)

        def _info(self, name: str, revision: str, head: bool):
            repo = self._repo(name, revision, head)
            if repo:
                self._json({"id": name, "modelId": name, "sha": repo.commit, "private": repo.access == "private",
                            "gated": repo.access == "gated" and "manual",
                            "cardData": {"license": repo.licence} if repo.licence else {},
                            "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, head)

        def _tree(self, name: str, revision: str, under: str, head: bool, url=None):
            repo = self._repo(name, revision, head)
            if not repo:
                return
            entries, folders = [], set()
            for path in sorted(repo.files):
                if under and not path.startswith(under + "/"):
                    continue
                data = repo.files[path]
                parts = path.split("/")
                folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
                entry = {"type": "file", "oid": git_oid(data), "size": repo.listed_sizes.get(path, len(data)), "path": path}
                if repo.is_lfs(path):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entries.append(entry)
            dirs = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)
                    if not under or f.startswith(under + "/")]
            every = dirs + entries
            if not hub.tree_page:
                return self._json(every, head)
            start = int(urllib.parse.parse_qs(url.query).get("cursor", ["0"])[0])
            end = start + hub.tree_page
            headers = {"Content-Type": "application/json"}
            if end < len(every):
                headers["Link"] = f'<{hub.endpoint}{url.path}?recursive=true&cursor={end}>; rel="next"'
            self._send(200, json.dumps(every[start:end]).encode(), headers, head)

        def _resolve(self, name: str, revision: str, path: str, head: bool):
            repo = self._repo(name, revision, head)
            if not repo:
                return
            if path not in repo.files:
                return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}", head)
            data = repo.files[path]
            common = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
            if repo.is_lfs(path):
                sha = hashlib.sha256(data).hexdigest()
                return self._send(302, headers={**common, "Location": f"{hub.cdn_origin}/lfs/{sha}",
                                                "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                                                "ETag": f'"{git_oid(data)}"'}, head=head)
            self._send(200, data, {**common, "ETag": f'"{git_oid(data)}"', "Content-Type": "application/octet-stream"},
                       head)

        def _cdn(self, path: str, head: bool):
            found = hub.blob(path.rsplit("/", 1)[-1]) if path.startswith("/lfs/") else None
            if not found:
                return self._send(404, b"not found", head=head)
            name, data = found
            if name in hub.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start, status, headers = 0, 200, {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
                                              "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
            ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if ranged:
                start = int(ranged.group(1))
                end = int(ranged.group(2)) if ranged.group(2) else len(data) - 1
                if start >= len(data):
                    return self._send(416, headers={"Content-Range": f"bytes */{len(data)}"}, head=head)
                status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{len(data)}"
                data = data[start:end + 1]
            if head:
                return self._send(status, data, headers, head=True)
            if hub.cut.get(name, 0) > 0 and len(data) > 1:
                hub.cut[name] -= 1  # send the headers and half the bytes, then drop the connection
                self.send_response(status)
                for k, v in {**CORS, **headers, "Content-Length": str(len(data))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(status, data, headers)

    return Handler
