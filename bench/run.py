"""pairflow load benchmark: one command, real server, real HTTP, numbers against their ceilings.

    .venv/bin/python bench/run.py [--quick] [--record] [--database URL] [--profile DIR]

The server (`pairflow serve`, one worker) runs pinned to core 0; every load generator (wrk with
the Lua scripts in bench/lua, and this script's asyncio harnesses) runs pinned to core 1. The
server is started with --poll-interval 1 (so a 1 s poll is on time) and --code-ttl 3600.
Ceilings measured in the same run: bench/hello.py under the same uvicorn settings and wrk
settings, and RS256 signatures/s (the `cryptography` RSA-2048 PKCS#1 v1.5 SHA-256 sign alone, one core),
both at the start and again at the end; the higher of the two is the ceiling. For reference it
also measures uvicorn's own floor (bench/hello.py --bare: no framework, a poll-shaped POST).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
SERVER_CORE, LOAD_CORE = 0, 1
WRK_THREADS, WRK_CONNS = 1, 50
POLL_INTERVAL, CODE_TTL = 1, 3600
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"

_children: list[subprocess.Popen[Any]] = []


# ----------------------------------------------------------------------------- processes


def spawn(cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
    proc = subprocess.Popen(cmd, start_new_session=True, **kw)
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group id is its pid
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def cleanup() -> None:
    for proc in reversed(_children):
        stop(proc)


def on_signal(signum: int, _frame: Any) -> None:
    cleanup()
    sys.exit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, proc: subprocess.Popen[Any], log: Path | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early:\n{log.read_text()[-2000:] if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer {path}")


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM", "VmRSS")):
            out[line.split(":")[0]] = int(line.split()[1])  # kB
    return out


def core_busy(core: int) -> float:
    """Busy seconds of one CPU core (all processes), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            v = [int(x) for x in line.split()[1:]]
            return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- wrk


SERVER_PID: list[int] = []  # the pairflow server, when one runs: wrk phases note its CPU share
PHASE_NOTES: list[str] = []
OTHERS: list[float] = []  # share of the server core taken by processes that are not ours, per phase


def wrk(script: str, url: str, seconds: float, env: dict[str, str] | None = None, headers: list[str] = (),
        label: str | None = None) -> dict[str, int]:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(BENCH / "lua" / script)]
    for h in headers:
        cmd += ["-H", h]
    full_env = {**os.environ, "BENCH_LUA": str(BENCH / "lua"), "BENCH_THREADS": str(WRK_THREADS), **(env or {})}
    cpu0, busy0, t0 = (cpu_seconds(SERVER_PID[0]) if SERVER_PID else 0.0), core_busy(SERVER_CORE), time.monotonic()
    out = subprocess.run(cmd + [url], env=full_env, capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - t0
    line = next((text for text in out.stdout.splitlines() if text.startswith("BENCH ")), None)
    if line is None:
        sys.exit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    result = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
    if label:
        ours = (cpu_seconds(SERVER_PID[0]) - cpu0) if SERVER_PID else 0.0
        others = max(0.0, core_busy(SERVER_CORE) - busy0 - ours) / wall
        # A phase that ends early (its codes ran out) reports the time it was busy.
        busy_wall = min(wall, result["elapsed_ns"] / 1e9) if result.get("elapsed_ns") else wall
        PHASE_NOTES.append(f"{label} {ours / busy_wall:.0%}" + f" (other processes {others:.0%})")
        OTHERS.append(others)
    return result


# ----------------------------------------------------------------------------- raw HTTP client


class Conn:
    """One keep-alive HTTP/1.1 connection sending pre-built requests; enough for this server's replies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, data: bytes) -> tuple[int, bytes]:
        try:
            return await self._call(data)
        except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle keep-alive connection
            self.close()
            self.writer = None
            return await self._call(data)

    async def _call(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        body = await self.reader.readexactly(int(m.group(1))) if m else b""
        return int(head[9:12]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def post_bytes(port: int, path: str, form: str, basic: str, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{extra}Content-Length: {len(form)}\r\n\r\n{form}").encode()


async def call_all(port: int, requests: list[bytes], conns: int) -> list[tuple[int, bytes]]:
    """Send every request once over `conns` connections; answers in request order."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    it = iter(range(len(requests)))

    async def worker() -> None:
        c = Conn(port)
        try:
            for i in it:
                answers[i] = await c.call(requests[i])
        finally:
            c.close()

    await asyncio.gather(*(worker() for _ in range(min(conns, len(requests)) or 1)))
    return answers


# ----------------------------------------------------------------------------- the run


@dataclass
class Ctx:
    quick: bool
    database: str | None
    tmp: Path
    port: int = 0
    basic: str = ""
    server: subprocess.Popen[Any] | None = None
    profile: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def db_args(self) -> list[str]:
        return ["--data-dir", str(self.tmp / "data")] + (["--database", self.database] if self.database else [])


def admin(ctx: Ctx, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([PY, "-m", "pairflow", "admin", *args, *ctx.db_args()], input=stdin, capture_output=True, text=True)
    if out.returncode != 0 and "--stdin" not in args:
        sys.exit(f"admin {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def arun(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def measure_hello(ctx: Ctx) -> None:
    """The hello-world ceiling, and uvicorn's floor (bench/hello.py --bare) answering a poll-shaped POST."""
    for key, extra, script, label in (("hello", [], "get.lua", "hello-world"), ("floor", ["--bare"], "floor.lua", "uvicorn floor")):
        port = free_port()
        proc = spawn(["taskset", "-c", str(SERVER_CORE), PY, str(BENCH / "hello.py"), "--port", str(port), *extra])
        wait_http(port, "/", proc)
        SERVER_PID[:] = [proc.pid]
        wrk(script, f"http://127.0.0.1:{port}/", 1)  # warm-up
        r = wrk(script, f"http://127.0.0.1:{port}/", ctx.seconds(10, 3), label=label)
        rate = r["ok"] / (r["duration_us"] / 1e6)
        # Measured before and after the run; the higher one counts, so a noisy moment
        # cannot flatter the fractions.
        ctx.results[key] = max(rate, ctx.results.get(key, 0.0))
        log(f"{label}: {rate:.0f} req/s")
        SERVER_PID.clear()
        stop(proc)


RS256_LOOP = """
import sys, time
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
signing_input = b"e" * 420  # the size of pairflow's header and claims, base64url-encoded
for _ in range(20):
    key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
n, start, end = 0, time.perf_counter(), time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    n += 1
print(n / (time.perf_counter() - start))
"""


def measure_rs256(ctx: Ctx) -> None:
    out = subprocess.run(["taskset", "-c", str(SERVER_CORE), PY, "-c", RS256_LOOP, str(ctx.seconds(3, 1))],
                         capture_output=True, text=True, check=True)
    rate = float(out.stdout.strip())
    ctx.results["rs256"] = max(rate, ctx.results.get("rs256", 0.0))
    log(f"RS256 signatures: {rate:.0f}/s")


def seed_and_start(ctx: Ctx) -> None:
    suffix = f"{int(time.time())}{random.randrange(1000)}"
    org = f"Bench Org {suffix}"
    email = EMAIL if not ctx.database else f"bench{suffix}@example.com"  # a shared database keeps old runs
    ctx.results["email"] = email
    admin(ctx, "org", "create", org)
    admin(ctx, "user", "create", "--email", email, "--org", org, "--password-stdin", stdin=PASSWORD + "\n")
    made = json.loads(admin(ctx, "client", "create", "--name", f"Bench printer {suffix}", "--json"))
    ctx.basic = base64.b64encode(f"{made['client_id']}:{made['client_secret']}".encode()).decode()
    ctx.port = free_port()
    logfile = ctx.tmp / "server.log"
    ctx.server = spawn(
        ["taskset", "-c", str(SERVER_CORE), PY, "-m", "pairflow", "serve", "--port", str(ctx.port),
         "--poll-interval", str(POLL_INTERVAL), "--code-ttl", str(CODE_TTL), *ctx.db_args()],
        stdout=subprocess.DEVNULL, stderr=open(logfile, "w"),
    )
    wait_http(ctx.port, "/healthz", ctx.server, logfile)
    SERVER_PID[:] = [ctx.server.pid]
    log(f"pairflow serving on {ctx.url} (pid {ctx.server.pid})")


def profiled(ctx: Ctx, name: str, seconds: float) -> subprocess.Popen[Any] | None:
    if ctx.profile is None:
        return None
    ctx.profile.mkdir(parents=True, exist_ok=True)
    return spawn([shutil.which("py-spy") or str(Path(PY).parent / "py-spy"), "record", "--nonblocking", "-r", "200", "-p", str(ctx.server.pid), "-d", str(max(1, int(seconds))),
                  "-f", "raw", "-o", str(ctx.profile / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profile(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(proc)


def phase_pairs(ctx: Ctx) -> list[str]:
    out = ctx.tmp / "codes"
    env = {"BENCH_BASIC": ctx.basic, "BENCH_OUT": str(out)}
    wrk("pair.lua", f"{ctx.url}/oauth/pair", 1, {**env, "BENCH_OUT": str(ctx.tmp / "warm")})  # warm-up
    secs = ctx.seconds(10, 3)
    prof = profiled(ctx, "pair", secs - 1)
    r = wrk("pair.lua", f"{ctx.url}/oauth/pair", secs, env, label="pairs")
    finish_profile(prof)
    ctx.results["pairs"] = r["ok"] / (r["duration_us"] / 1e6)
    ctx.results["pairs_lat"] = (r["p50_us"], r["p99_us"])
    ctx.results["pairs_other"] = r["other"] + r["errors"]
    codes = []
    for f in sorted(ctx.tmp.glob("warm.*")) + sorted(ctx.tmp.glob("codes.*")):
        codes += [c for c in f.read_text().split() if c]
    log(f"pairs: {ctx.results['pairs']:.0f}/s ({len(codes)} codes kept)")
    return codes


async def more_codes(ctx: Ctx, n: int) -> list[str]:
    req = post_bytes(ctx.port, "/oauth/pair", "mode=device", ctx.basic)
    answers = await call_all(ctx.port, [req] * n, 50)
    return [json.loads(b)["pairing_code"] for s, b in answers if s == 200]


def phase_tokens(ctx: Ctx, codes: list[str], extra: list[str]) -> None:
    t = time.monotonic()
    out = admin(ctx, "pairing", "approve", "--user", ctx.results["email"], "--stdin", "--json", stdin="\n".join(codes + extra) + "\n")
    approved = json.loads(out)["approved"]
    log(f"approved {approved} codes with the admin CLI in {time.monotonic() - t:.1f}s")
    path = ctx.tmp / "approved.txt"
    path.write_text("\n".join(codes) + "\n")
    cap = ctx.seconds(30, 8)
    prof = profiled(ctx, "token", min(cap, len(codes) / 400))
    r = wrk("redeem.lua", f"{ctx.url}/oauth/access_token", cap, {"BENCH_BASIC": ctx.basic, "BENCH_CODES": str(path)}, label="tokens")
    finish_profile(prof)
    elapsed = r["elapsed_ns"] / 1e9 if "elapsed_ns" in r else r["duration_us"] / 1e6
    ctx.results["tokens"] = r["ok"] / elapsed
    ctx.results["tokens_lat"] = (r["p50_us"], r["p99_us"])
    ctx.results["tokens_other"] = r["other"]
    log(f"tokens: {r['ok']} issued in {elapsed:.1f}s = {ctx.results['tokens']:.0f}/s (non-200: {r['other']})")


def phase_pending(ctx: Ctx, codes: list[str]) -> None:
    path = ctx.tmp / "pending.txt"
    path.write_text("\n".join(codes) + "\n")
    secs = ctx.seconds(10, 3)
    prof = profiled(ctx, "poll", secs - 1)
    r = wrk("poll.lua", f"{ctx.url}/oauth/access_token", secs, {"BENCH_BASIC": ctx.basic, "BENCH_CODES": str(path)}, label="polls")
    finish_profile(prof)
    d = r["duration_us"] / 1e6
    ctx.results["polls"] = r["pending"] / d
    ctx.results["polls_slow"] = r["slow_down"] / d
    ctx.results["polls_other"] = r["other"] + r["errors"]
    ctx.results["polls_lat"] = (r["p50_us"], r["p99_us"])
    log(f"pending polls: {ctx.results['polls']:.0f}/s pending, {ctx.results['polls_slow']:.0f}/s slow_down, other {r['other']}")


async def redeem(ctx: Ctx, codes: list[str]) -> list[dict[str, Any]]:
    reqs = [post_bytes(ctx.port, "/oauth/access_token", f"grant_type=pairing_code&pairing_code={c}", ctx.basic) for c in codes]
    return [json.loads(b) for s, b in await call_all(ctx.port, reqs, 20) if s == 200]


def phase_refresh_and_me(ctx: Ctx, grants: list[dict[str, Any]]) -> None:
    path = ctx.tmp / "refresh.txt"
    path.write_text("\n".join(g["refresh_token"] for g in grants) + "\n")
    secs = ctx.seconds(10, 3)
    prof = profiled(ctx, "refresh", secs - 1)
    r = wrk("refresh.lua", f"{ctx.url}/oauth/access_token", secs, {"BENCH_BASIC": ctx.basic, "BENCH_CODES": str(path)}, label="refresh")
    finish_profile(prof)
    ctx.results["refresh"] = r["ok"] / (r["duration_us"] / 1e6)
    ctx.results["refresh_lat"] = (r["p50_us"], r["p99_us"])
    ctx.results["refresh_other"] = r["other"] + r.get("starved", 0)
    log(f"refreshes: {ctx.results['refresh']:.0f}/s (failed {r['other']}, starved {r.get('starved', 0)})")

    prof = profiled(ctx, "me", secs - 1)
    r = wrk("get.lua", f"{ctx.url}/api/me", secs, headers=[f"Authorization: Bearer {grants[0]['access_token']}"], label="/api/me")
    finish_profile(prof)
    ctx.results["me"] = r["ok"] / (r["duration_us"] / 1e6)
    ctx.results["me_lat"] = (r["p50_us"], r["p99_us"])
    ctx.results["me_other"] = r["other"]
    log(f"/api/me: {ctx.results['me']:.0f}/s (non-200 {r['other']})")


class Approver:
    """One signed-in browser session approving codes through the HTML pages."""

    def __init__(self, ctx: Ctx) -> None:
        import httpx

        self.ctx = ctx
        self.http = httpx.AsyncClient(base_url=ctx.url, follow_redirects=False, timeout=30)

    async def sign_in(self) -> None:
        page = await self.http.get("/auth/signin/")
        r = await self.http.post("/auth/signin/", data={"csrf": csrf(page.text), "email": self.ctx.results["email"],
                                                          "password": PASSWORD, "next": "/devices"})
        assert r.status_code == 303, r.text

    async def approve(self, code: str) -> float:
        """Approve one code; returns perf_counter() when the approving POST was sent (the person's click)."""
        import httpx

        try:
            page = await self.http.get("/oauth/authorize/pairing/", params={"pairing_code": code})
        except (httpx.ReadError, httpx.RemoteProtocolError):  # an idle keep-alive connection the server closed
            page = await self.http.get("/oauth/authorize/pairing/", params={"pairing_code": code})
        clicked = time.perf_counter()
        r = await self.http.post("/oauth/authorize/pairing/", data={"csrf": csrf(page.text), "pairing_code": code, "decision": "approve"})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return clicked

    async def close(self) -> None:
        await self.http.aclose()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def phase_wait(ctx: Ctx, codes: list[str]) -> None:
    """Devices hold `Prefer: wait=30` token requests; one session approves each; latency to the token.

    Each device is one raw keep-alive connection (the Conn class), not an httpx client: with
    a thousand connections open, a pooled client's own bookkeeping would be what is measured.
    """
    sent = 0
    arrived: dict[str, float] = {}
    failures: list[str] = []

    async def device(code: str) -> None:
        nonlocal sent
        conn = Conn(ctx.port)
        request = post_bytes(ctx.port, "/oauth/access_token", f"grant_type=pairing_code&pairing_code={code}", ctx.basic,
                             "Prefer: wait=30\r\n")
        try:
            for _ in range(5):
                sent += 1
                status, body = await conn.call(request)
                if status == 200:
                    arrived[code] = time.perf_counter()
                    return
                if json.loads(body).get("error") not in ("authorization_pending", "slow_down"):
                    failures.append(body.decode())
                    return
                await asyncio.sleep(1)
            failures.append("still pending")
        finally:
            conn.close()

    tasks = [asyncio.create_task(device(c)) for c in codes]
    while sent < len(codes):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the last requests reach the server and are held
    approver = Approver(ctx)
    await approver.sign_in()
    clicked = {}
    for code in codes:
        clicked[code] = await approver.approve(code)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    await approver.close()
    lat = [arrived[c] - clicked[c] for c in codes if c in arrived]
    ctx.results["wait"] = (pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(lat), len(failures))
    log(f"Prefer: wait approval->token: p50 {ctx.results['wait'][0]:.1f} ms p99 {ctx.results['wait'][1]:.1f} ms "
        f"({len(lat)} tokens, {len(failures)} failures)")


async def phase_plain(ctx: Ctx, codes: list[str], period: float = 5.0) -> None:
    """Devices poll every 5 s (random phase) without Prefer: wait; latency from the approve click to the token."""
    arrived: dict[str, float] = {}
    reqs = {c: post_bytes(ctx.port, "/oauth/access_token", f"grant_type=pairing_code&pairing_code={c}", ctx.basic) for c in codes}
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(100):
        pool.put_nowait(Conn(ctx.port))
    stop_at = time.perf_counter() + 600

    async def device(code: str) -> None:
        await asyncio.sleep(random.uniform(0, period))
        nxt = time.perf_counter()
        while time.perf_counter() < stop_at:
            conn = await pool.get()
            try:
                status, _ = await conn.call(reqs[code])
            finally:
                pool.put_nowait(conn)
            if status == 200:
                arrived[code] = time.perf_counter()
                return
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

    approver = Approver(ctx)
    await approver.sign_in()
    tasks = [asyncio.create_task(device(c)) for c in codes]
    await asyncio.sleep(period)  # every device is polling
    clicked = {}
    for code in codes:
        clicked[code] = await approver.approve(code)
    stop_at = time.perf_counter() + 3 * period
    await asyncio.wait_for(asyncio.gather(*tasks), 4 * period)
    await approver.close()
    while not pool.empty():
        pool.get_nowait().close()
    lat = [arrived[c] - clicked[c] for c in codes if c in arrived]
    ctx.results["plain"] = (pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(lat))
    log(f"plain 5 s polling approval->token: p50 {ctx.results['plain'][0]:.0f} ms p99 {ctx.results['plain'][1]:.0f} ms ({len(lat)} tokens)")


async def phase_many(ctx: Ctx, codes: list[str], seconds: float, period: float = 5.0, conns: int = 300) -> None:
    """len(codes) pending devices, each polling every `period` s from a random phase; latency from the scheduled time."""
    reqs = [post_bytes(ctx.port, "/oauth/access_token", f"grant_type=pairing_code&pairing_code={c}", ctx.basic) for c in codes]
    phases = sorted((random.uniform(0, period), i) for i in range(len(reqs)))
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    lat: list[float] = []
    kinds = {"pending": 0, "slow_down": 0, "other": 0}

    dropped = 0

    async def worker() -> None:
        nonlocal dropped
        conn = Conn(ctx.port)
        while (item := await queue.get()) is not None:
            due, data = item
            if time.perf_counter() > hard_stop:  # the server fell behind: do not run on for minutes
                dropped += 1
                continue
            status, body = await conn.call(data)
            lat.append(time.perf_counter() - due)
            kind = "pending" if b"authorization_pending" in body else "slow_down" if b"slow_down" in body else "other"
            kinds[kind] += 1
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    # open the connections before the clock starts
    pid = ctx.server.pid
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM: the peak of this phase
        hwm_reset = True
    except OSError:
        hwm_reset = False
    cpu0 = cpu_seconds(pid)
    start = time.perf_counter() + 0.5
    rounds = int(seconds / period)
    hard_stop = start + rounds * period + 5
    prof = profiled(ctx, "many", seconds - 1)
    for r in range(rounds):
        for phase, i in phases:
            due = start + r * period + phase
            delay = due - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
            queue.put_nowait((due, reqs[i]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    finish_profile(prof)
    wall = time.perf_counter() - start
    mem = proc_status(pid)
    cpu = (cpu_seconds(pid) - cpu0) / wall
    ctx.results["many"] = dict(devices=len(codes), polls=len(lat), rate=len(lat) / wall, p50=pct(lat, 50) * 1000,
                               p99=pct(lat, 99) * 1000, hwm=mem["VmHWM"] / 1024, rss=mem["VmRSS"] / 1024, cpu=cpu,
                               hwm_reset=hwm_reset, dropped=dropped, **kinds)
    m = ctx.results["many"]
    log(f"{len(codes)} devices: {m['rate']:.0f} polls/s, p50 {m['p50']:.1f} ms p99 {m['p99']:.1f} ms, "
        f"server peak {m['hwm']:.0f} MB, CPU {cpu:.0%}, {kinds}, not sent (server behind) {dropped}")


# ----------------------------------------------------------------------------- report


def table(ctx: Ctx) -> str:
    r = ctx.results
    hello, rs = r["hello"], r["rs256"]
    rows: list[tuple[str, str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "pass" if ok else "**miss**"

    def lat(key: str) -> str:
        p50, p99 = r[key]
        return f"wrk p50 {p50 / 1000:.1f} ms, p99 {p99 / 1000:.1f} ms"

    rows.append(("hello-world ceiling (bench/hello.py, best of start and end)", f"{hello:,.0f} req/s", "", "", ""))
    rows.append(("RS256 ceiling (cryptography sign alone, 2048-bit, 1 core, best of two)", f"{rs:,.0f} sig/s", "", "", ""))
    rows.append(("for reference: uvicorn's floor (bench/hello.py --bare, a poll-shaped POST, no framework)",
                 f"{r['floor']:,.0f} req/s", f"{r['floor'] / hello:.2f} × hello", "", ""))
    rows.append(("pairs (POST /oauth/pair)", f"{r['pairs']:,.0f} /s", f"{r['pairs'] / hello:.2f} × hello",
                 "≥ 0.5 × hello", verdict(r["pairs"] >= 0.5 * hello)))
    rows.append(("pending polls (authorization_pending)", f"{r['polls']:,.0f} /s (+{r['polls_slow']:,.0f} /s slow_down)",
                 f"{r['polls'] / hello:.2f} × hello", "≥ 0.5 × hello", verdict(r["polls"] >= 0.5 * hello)))
    rows.append(("tokens on approved codes (200s only)", f"{r['tokens']:,.0f} /s", f"{r['tokens'] / rs:.2f} × RS256",
                 "≥ 0.8 × RS256", verdict(r["tokens"] >= 0.8 * rs)))
    rows.append(("refreshes (chained rotation)", f"{r['refresh']:,.0f} /s", f"{r['refresh'] / rs:.2f} × RS256",
                 "≥ 0.8 × RS256", verdict(r["refresh"] >= 0.8 * rs)))
    rows.append(("GET /api/me (bearer verify)", f"{r['me']:,.0f} /s", f"{r['me'] / hello:.2f} × hello", "", ""))
    w = r["wait"]
    rows.append((f"approve click→token, {w[2]:,} devices Prefer: wait=30", f"p50 {w[0]:.1f} ms, p99 {w[1]:.1f} ms", "",
                 "p50 < 20 ms, p99 < 100 ms", verdict(w[0] < 20 and w[1] < 100)))
    p = r["plain"]
    rows.append((f"approve click→token, {p[2]:,} devices polling every 5 s", f"p50 {p[0]:,.0f} ms, p99 {p[1]:,.0f} ms", "", "", ""))
    m = r["many"]
    rows.append((f"{m['devices']:,} pending devices polling every 5 s", f"{m['rate']:,.0f} polls/s, p50 {m['p50']:.1f} ms, p99 {m['p99']:.1f} ms",
                 f"server CPU {m['cpu']:.0%}", "p99 < 50 ms", verdict(m["p99"] < 50)))
    rows.append(("server peak memory (VmHWM) in that phase", f"{m['hwm']:.0f} MB", "" if m["hwm_reset"] else "process lifetime",
                 "< 300 MB", verdict(m["hwm"] < 300)))
    lines = ["| measurement | result | vs ceiling | target | |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    def us(rate: float) -> str:
        return f"{1e6 / rate:.0f} µs"

    notes = [
        "",
        f"Time per request on core {SERVER_CORE} (1 / rate): hello-world {us(hello)}, uvicorn floor {us(r['floor'])}, "
        f"pending poll {us(r['polls'])}, pair {us(r['pairs'])}, /api/me {us(r['me'])}, token {us(r['tokens'])}, "
        f"refresh {us(r['refresh'])}, RS256 signature alone {us(rs)}.",
        f"wrk: -t{WRK_THREADS} -c{WRK_CONNS}; latencies under saturation: pairs {lat('pairs_lat')}; polls {lat('polls_lat')}; "
        f"tokens {lat('tokens_lat')}; refresh {lat('refresh_lat')}; /api/me {lat('me_lat')}.",
        f"Non-200/unexpected answers: pairs {r['pairs_other']}, polls {r['polls_other']}, tokens {r['tokens_other']}, "
        f"refresh {r['refresh_other']}, /api/me {r['me_other']}; Prefer: wait {w[3]} failures "
        f"(latency runs from sending the approving POST to the device reading its token); {m['devices']:,}-device phase answers: pending {m['pending']:,}, "
        f"slow_down {m['slow_down']:,}, other {m['other']:,}, not sent because the server fell >5 s behind {m['dropped']:,}.",
        f"CPU share of core {SERVER_CORE} during the wrk phases: {', '.join(PHASE_NOTES)}."
        + ("" if ctx.database else f" SQLite WAL file at the end: {r.get('wal_mb', 0):.0f} MB (database file {r.get('db_mb', 0):.0f} MB)."),
        f"Server started with --poll-interval {POLL_INTERVAL} --code-ttl {CODE_TTL} (so 1 s pending polls are on time); "
        f"database: {'SQLite (default, temp data dir)' if not ctx.database else redact(ctx.database)}.",
    ]
    if OTHERS and max(OTHERS) > 0.05:
        notes.append(f"**Warning: the machine was not quiet**: other processes took up to {max(OTHERS):.0%} of core {SERVER_CORE} "
                     f"during a phase (load average {os.getloadavg()[0]:.1f}); rerun on an idle machine before trusting small differences.")
    return "\n".join(lines + notes)


def redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def machine_notes() -> str:
    model = next((text.split(":", 1)[1].strip() for text in Path("/proc/cpuinfo").read_text().splitlines() if text.startswith("model name")), "?")
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].split(" Copyright")[0]
    mods = []
    for name in ("uvloop", "httptools"):
        try:
            __import__(name)
            mods.append(name)
        except ImportError:
            pass
    return (f"nproc {os.cpu_count()}, CPU {model}, Linux {platform.release()}, Python {platform.python_version()}, "
            f"{wrk_v}, uvicorn with {' + '.join(mods) or 'asyncio + h11'}; server pinned to core {SERVER_CORE}, load to core {LOAD_CORE}.")


def code_version() -> str:
    def run(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    dirty = run("status", "--porcelain", "--", "src")
    return run("rev-parse", "--short", "HEAD") + (" with uncommitted changes in src/" if dirty else "")


def record(ctx: Ctx, text: str, argv: list[str]) -> None:
    path = BENCH / "RESULTS.md"
    kind = "PostgreSQL" if ctx.database else "SQLite"
    title = f"## {kind}{' (quick smoke run)' if ctx.quick else ''}"
    section = "\n".join([
        title, "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}  ",
        f"Machine: {machine_notes()}  ",
        f"Code: {code_version()}  ",
        f"Command: `.venv/bin/python bench/run.py {' '.join(redact(a) for a in argv)}`", "",
        text, "",
    ])
    header = "# pairflow benchmark results\n\nWritten by `bench/run.py --record`; one section per database (a new run replaces its section).\n\n"
    old = path.read_text() if path.exists() else header
    parts = re.split(r"(?m)^(?=## )", old)
    parts = [p for p in parts if not p.startswith(title + "\n")]
    if not parts or not parts[0].startswith("# "):
        parts.insert(0, header)
    path.write_text("".join(p if p.endswith("\n\n") else p.rstrip("\n") + "\n\n" for p in parts) + section)
    log(f"recorded in {path}")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases, fewer devices: a smoke run (< 60 s)")
    parser.add_argument("--record", action="store_true", help="write the table into bench/RESULTS.md")
    parser.add_argument("--database", metavar="URL", help="SQLAlchemy URL (e.g. postgresql+asyncpg://...); default SQLite in a temp dir")
    parser.add_argument("--profile", metavar="DIR", type=Path, help="py-spy record (raw collapsed stacks) of the server in each phase")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(cleanup)
    os.sched_setaffinity(0, {LOAD_CORE})  # this process and every load generator it starts

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pairflow-bench-") as tmp:
        ctx = Ctx(quick=args.quick, database=args.database, tmp=Path(tmp), profile=args.profile and args.profile.resolve())
        q = args.quick
        n_tokens, n_refresh = (1500, 2 * WRK_CONNS) if q else (6000, 2 * WRK_CONNS)
        # The pending pool is large enough that, at 20k polls/s, no code is polled again within its 1 s interval.
        n_pool, n_wait, n_plain, n_many = (12000, 200, 200, 2000) if q else (40000, 1000, 1000, 10000)
        many_seconds = 10 if q else 30

        measure_hello(ctx)
        measure_rs256(ctx)
        seed_and_start(ctx)
        codes = phase_pairs(ctx)
        need = n_tokens + n_refresh + n_pool + n_wait + n_plain + n_many
        if len(codes) < need:
            t, missing = time.monotonic(), need - len(codes)
            codes += arun(more_codes(ctx, missing))
            log(f"created {missing} more codes in {time.monotonic() - t:.1f}s")
        take = iter(codes)
        tokens_codes = [next(take) for _ in range(n_tokens)]
        refresh_codes = [next(take) for _ in range(n_refresh)]
        pool = [next(take) for _ in range(n_pool)]
        wait_codes = [next(take) for _ in range(n_wait)]
        plain_codes = [next(take) for _ in range(n_plain)]
        many_codes = [next(take) for _ in range(n_many)]

        phase_tokens(ctx, tokens_codes, refresh_codes)
        phase_pending(ctx, pool)
        grants = arun(redeem(ctx, refresh_codes))
        phase_refresh_and_me(ctx, grants)
        arun(phase_wait(ctx, wait_codes))
        arun(phase_plain(ctx, plain_codes))
        arun(phase_many(ctx, many_codes, many_seconds))
        wal = ctx.tmp / "data" / "pairflow.db-wal"
        ctx.results["wal_mb"] = wal.stat().st_size / 2**20 if wal.exists() else 0
        db = ctx.tmp / "data" / "pairflow.db"
        ctx.results["db_mb"] = db.stat().st_size / 2**20 if db.exists() else 0
        stop(ctx.server)
        measure_hello(ctx)
        measure_rs256(ctx)

        text = table(ctx)
        print(text)
        print(f"\nMachine: {machine_notes()}\nTotal time {time.monotonic() - began:.0f}s.")
        if args.record:
            record(ctx, text, sys.argv[1:])


if __name__ == "__main__":
    main()
