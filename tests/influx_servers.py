"""Servers for the InfluxDB writer tests: a real influxd (1.x) started with a
generated configuration, and a scripted loopback HTTP server that records the
requests it gets (the 2.x stand-in and the fault server)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from conftest import free_port

CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


class Influxd:
    """influxd on free loopback ports (HTTP and RPC) with its data in ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.http = free_port()
        self.rpc = free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        self.conf = os.path.join(root, "influxd.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(root=root, rpc=self.rpc, http=self.http))
        self.proc: subprocess.Popen | None = None

    def start(self, cpu: int | None = None) -> None:
        cmd = ["influxd", "-config", self.conf]
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.log = open(os.path.join(self.root, "influxd.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 204:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("influxd did not start; see " + self.log.name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()

    def query(self, q: str, db: str | None = None, method: str = "GET") -> dict:
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params)
        if method == "POST":
            req = urllib.request.Request(self.url + "/query", data=data.encode(), method="POST")
        else:
            req = urllib.request.Request(self.url + "/query?" + data)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def create_db(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"', method="POST")

    def rows(self, db: str, q: str = "SELECT * FROM /.*/") -> dict[str, list[dict]]:
        """``{measurement: [row dicts]}`` for ``q``."""
        out: dict[str, list[dict]] = {}
        for res in self.query(q, db).get("results", []):
            if "error" in res:
                raise RuntimeError(res["error"])
            for s in res.get("series", []):
                rows = out.setdefault(s["name"], [])
                for v in s["values"]:
                    # a multi-measurement query has every measurement's columns
                    rows.append(
                        {c: x for c, x in zip(s["columns"], v, strict=True) if x is not None}
                    )
        return out

    def count(self, db: str, measurement: str, fld: str) -> int:
        res = self.query(f'SELECT count("{fld}") FROM "{measurement}"', db)["results"][0]
        if "series" not in res:
            return 0
        return res["series"][0]["values"][0][1]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    """Answers each request with the next (status, headers) of ``script``, then 204;
    records every request with its body decompressed."""

    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                u = urllib.parse.urlsplit(target)
                self.requests.append(
                    Request(method, u.path, urllib.parse.parse_qs(u.query), headers, body)
                )
                self.times.append(time.monotonic())
                status, extra, payload = self.script.pop(0) if self.script else (204, {}, b"")
                out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(payload)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
