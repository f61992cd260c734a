"""Chaos: Talas under faults, with a real talas-master and real clients.

(a) kill -9 of random workers, again and again, under a mixed load (Range
    reads of originals, progressive transcodes, HLS segments, WebSocket
    clients): the master respawns each one, and no client on another worker
    sees an error.  Every failure is attributed to the worker pid that served
    its connection (/api/health on the same keep-alive connection, GetStatus
    on a WebSocket), so that the killed worker's own connections, which may
    fail, are told apart from everything else, which may not.
(b) kill -9 of the master and all its workers in the middle of many cold
    transcodes (cache writes), restart: `talasctl cache verify` is clean,
    whole transcodes stored before the kill come back byte-identical without
    an encode, no chunk committed before the kill is lost, and what had been
    served of the interrupted transcodes is a prefix of what is served after.
(c) a map too small for the load (MDB_MAP_FULL) and a full disk (a 6 MiB
    tmpfs, when this process may mount one): eviction keeps transcodes
    being served.
(d) SIGHUP every second under load (30 s; TALAS_CHAOS_FULL=1: 60 s): zero
    failed requests.
(e) a library file truncated or replaced while it is streamed, original and
    transcode: no crash, the response ends (complete, or cut by closing the
    connection), later requests see the new file.
(f) kill -9 of a worker in the middle of cold transcodes: the master, which
    aborts on any LMDB write (talas_storage_forbid_writes), stays up; the
    worker that replaces the victim releases its encode claims before it
    serves (and says so in the log); the interrupted transcodes are encoded
    once more and served whole and identical; `talasctl cache verify` is
    clean.

The figures (requests, failures, respawn times, entries verified) are
printed (pytest -s) and written to $TALAS_BUILDDIR/tests/artifacts/chaos.json.
"""

import asyncio
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import talas_fixtures as tf

FULL = os.environ.get("TALAS_CHAOS_FULL", "") not in ("", "0")
ARTIFACT = tf.BUILDDIR / "tests" / "artifacts" / "chaos.json"
_artifact_lock = threading.Lock()


def report(section, figures):
    """Print FIGURES and store them under SECTION in chaos.json."""
    print(f"\nchaos {section}: {json.dumps(figures, sort_keys=True)}")
    with _artifact_lock:
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(ARTIFACT.read_text())
        except (OSError, ValueError):
            data = {}
        data[section] = figures
        tmp = ARTIFACT.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, ARTIFACT)


def ffmpeg(args, timeout=120):
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"] + list(args),
           timeout=timeout)


def make_flac(out, seconds, title, freq):
    """A tone with some pink noise (so that encoders work for real)."""
    ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.05:r=44100:s=3",
            "-filter_complex", "[0][1]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo",
            "-ar", "44100", "-c:a", "flac", "-metadata", f"title={title}",
            "-metadata", "artist=Chaos", str(out)])
    return out


def decoded_seconds(body, tmp_path, name):
    """Seconds of audio in BODY, decoded by ffmpeg (errors tolerated)."""
    p = tmp_path / f"{name}-{hashlib.sha1(body).hexdigest()[:10]}"
    p.write_bytes(body)
    cp = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "quiet", "-i", str(p),
                         "-ac", "1", "-ar", "8000", "-f", "s16le", "-"],
                        capture_output=True, timeout=120)
    return len(cp.stdout) / 2 / 8000


def ids_by_title(srv):
    return {t["title"]: t["id"] for t in srv.tracks()}


def ctl_verify(srv):
    """`talasctl cache verify`: (clean, entries, chunks, bytes, text)."""
    cp = srv.talasctl("cache", "verify", timeout=120)
    m = re.search(r"^checked: (\d+) entries, (\d+) chunks, (\d+) bytes", cp.stdout, re.M)
    assert m, cp.stdout + cp.stderr
    clean = cp.returncode == 0 and "cache: clean" in cp.stdout
    return clean, int(m.group(1)), int(m.group(2)), int(m.group(3)), cp.stdout + cp.stderr


def stats(srv):
    return srv.get_json("/api/stats")["cache"]


def settled_stats(srv, quiet=1.8, timeout=30):
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        s = stats(srv)
        if s != last:
            last, since = s, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return s
        time.sleep(0.25)
    raise AssertionError(f"/api/stats kept changing for {timeout}s: {last}")


def parse_playlist_uris(text):
    lines = text.strip().split("\n")
    assert lines[0] == "#EXTM3U", text
    uris = [l for l in lines if l and not l.startswith("#")]
    m = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    return (m.group(1) if m else None), uris


@pytest.fixture(scope="module")
def chaoslib(tmp_path_factory):
    """Sources: six 20 s FLACs (cold transcodes), an MP3 for Range reads."""
    d = tmp_path_factory.mktemp("chaoslib")
    for k in range(6):
        make_flac(d / f"chaos{k}.flac", 20, f"Chaos {k}", 300 + 50 * k)
    tf.make_track(d / "range.mp3", "Range MP3", seconds=60, freq=440)
    return d


# ------------------------------------------------------------ the clients

class Recorder:
    """Every request of every client: kind, start, end, ok, pid (the worker
    that served its connection, None when not known yet), error."""

    def __init__(self):
        self.lock = threading.Lock()
        self.results = []
        self.stop = threading.Event()

    def add(self, rec):
        rec["end"] = time.monotonic()
        with self.lock:
            self.results.append(rec)


class HttpClient(threading.Thread):
    """One keep-alive connection at a time; its first request is
    /api/health, which names the worker that serves it (the kernel keeps a
    connection on the worker that accepted it).  KIND picks the work."""

    def __init__(self, rec, port, kind, ctx, seed, retry_stale=False):
        super().__init__(daemon=True)
        self.rec, self.port, self.kind, self.ctx = rec, port, kind, ctx
        self.rnd = random.Random(seed)
        self.conn = None
        self.pid = None
        self.n = 0
        self.retry_stale = retry_stale

    def _get(self, path, headers=None):
        if self.conn is None:
            # the previous answer closed the connection (Connection: close,
            # as a retiring worker sends): go on with a new one
            self._connect()
        self.conn.request("GET", path, headers=headers or {})
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status, resp.headers, body

    def _connect(self):
        # A connection a retiring worker accepted just before it stopped
        # listening is answered with Connection: close: a good answer, but
        # the connection is gone; take another (a few times at most).
        for _ in range(5):
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.pid = None
            st, _, body = self._get("/api/health")
            if st != 200:
                raise AssertionError(f"/api/health: {st}")
            self.pid = json.loads(body)["pid"]
            if self.conn is not None:
                return
        raise AssertionError("/api/health closed five new connections in a row")

    def run(self):
        while not self.rec.stop.is_set():
            self.n += 1
            r = {"kind": self.kind, "start": time.monotonic(), "ok": False, "pid": None,
                 "error": None, "path": None, "retried": False}
            for attempt in (1, 2):
                reused = self.conn is not None
                try:
                    if self.conn is None:
                        self._connect()
                    r["pid"] = self.pid
                    getattr(self, "do_" + self.kind)(r)
                    r["ok"] = True
                    r["error"] = None
                    break
                except Exception as e:  # noqa: BLE001 - every failure is recorded
                    r["error"] = f"{type(e).__name__}: {e}"
                    r["pid"] = self.pid
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = None
                    # Like browsers and curl (RFC 9112 9.3.1): a GET on a
                    # reused connection that died before any byte of the
                    # answer is retried once on a new one.
                    stale = isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError,
                                           BrokenPipeError))
                    if self.retry_stale and attempt == 1 and reused and stale:
                        r["retried"] = True
                        continue
                    break
            self.rec.add(r)
            if self.kind in ("range", "health"):
                # leave the 2 CPUs of a CI machine to the encoders too
                time.sleep(0.01)
        if self.conn is not None:
            self.conn.close()

    def do_range(self, r):
        data = self.ctx["range_bytes"]
        a = self.rnd.randrange(0, len(data) - 1)
        b = min(len(data) - 1, a + self.rnd.randrange(1, 256 * 1024))
        r["path"] = self.ctx["range_path"]
        st, h, body = self._get(r["path"], {"Range": f"bytes={a}-{b}"})
        if st != 206 or body != data[a:b + 1]:
            raise AssertionError(f"range {a}-{b}: status {st}, {len(body)} bytes, wrong content")

    def do_transcode(self, r):
        jobs = self.ctx["transcodes"]
        path = jobs[self.rnd.randrange(len(jobs)) if self.n > len(jobs) else
                    (self.n + self.ctx["offset"]()) % len(jobs)]
        r["path"] = path
        st, h, body = self._get(path)
        if st != 200 or not body:
            raise AssertionError(f"{path}: status {st}, {len(body)} bytes: {body[:200]!r}")
        self._same_as_before(path, body)

    def do_hls(self, r):
        track = self.ctx["hls_tracks"][self.rnd.randrange(len(self.ctx["hls_tracks"]))]
        r["path"] = f"/hls/{track}/master.m3u8"
        st, _, body = self._get(r["path"])
        if st != 200:
            raise AssertionError(f"{r['path']}: {st}")
        rungs = [l for l in body.decode().split("\n") if l and not l.startswith("#")]
        rung = rungs[self.rnd.randrange(len(rungs))].split("/")[0]
        r["path"] = f"/hls/{track}/{rung}/playlist.m3u8"
        st, _, body = self._get(r["path"])
        if st != 200:
            raise AssertionError(f"{r['path']}: {st}")
        init, segs = parse_playlist_uris(body.decode())
        for uri in [init, segs[self.rnd.randrange(len(segs))]]:
            r["path"] = f"/hls/{track}/{rung}/{uri}"
            st, _, seg = self._get(r["path"])
            if st != 200 or not seg:
                raise AssertionError(f"{r['path']}: {st}, {len(seg)} bytes")
            self._same_as_before(r["path"], seg)

    def do_health(self, r):
        r["path"] = "/api/health"
        st, _, body = self._get(r["path"])
        if st != 200 or json.loads(body)["pid"] != self.pid:
            raise AssertionError(f"/api/health: {st} {body[:200]!r}")

    def _same_as_before(self, path, body):
        """Transcodes are deterministic: a URL always gives the same bytes,
        whichever worker encoded or stored them."""
        digest = hashlib.sha256(body).hexdigest()
        with self.ctx["lock"]:
            ref = self.ctx["digests"].setdefault(path, digest)
        if ref != digest:
            raise AssertionError(f"{path}: other bytes than before ({len(body)} bytes)")


class WsClient(threading.Thread):
    """A WebSocket client: GetStatus names its worker, then a Ping every
    50 ms, each one a request; reconnects after an error."""

    def __init__(self, rec, port, user):
        super().__init__(daemon=True)
        self.rec, self.port, self.user = rec, port, user
        self.closes = []  # close codes of the connections the server ended

    def run(self):
        asyncio.run(self.main())

    async def main(self):
        import websockets
        url = f"ws://127.0.0.1:{self.port}/api/ws?user_id={self.user}"
        n = 0
        while not self.rec.stop.is_set():
            pid = None
            r = {"kind": "ws", "start": time.monotonic(), "ok": False, "pid": None,
                 "error": None, "path": "/api/ws", "retried": False}
            try:
                async with websockets.connect(url, open_timeout=10, close_timeout=2) as ws:
                    n += 1
                    await ws.send(json.dumps({"command": "GetStatus", "command_id": f"s{n}"}))
                    pid = (await self._response(ws, f"s{n}"))["data"]["worker_pid"]
                    r["pid"] = pid
                    r["ok"] = True
                    self.rec.add(r)
                    while not self.rec.stop.is_set():
                        n += 1
                        r = {"kind": "ws", "start": time.monotonic(), "ok": False, "pid": pid,
                             "error": None, "path": "/api/ws", "retried": False}
                        await ws.send(json.dumps({"command": "Ping", "command_id": f"p{n}"}))
                        m = await self._response(ws, f"p{n}")
                        if not m.get("success"):
                            raise AssertionError(f"Ping: {m}")
                        r["ok"] = True
                        self.rec.add(r)
                        await asyncio.sleep(0.05)
                    r = None
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                if r is not None:
                    r["error"] = f"{type(e).__name__}: {e}"
                    r["pid"] = pid
                    code = getattr(e, "code", None)
                    if code is not None:
                        self.closes.append(code)
                        r["close_code"] = code
                    self.rec.add(r)
                await asyncio.sleep(0.05)

    @staticmethod
    async def _response(ws, cid):
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("event") == "CommandResponse" and m.get("command_id") == cid:
                return m


def start_load(srv, ids, rec, range_bytes, mix, retry_stale=False):
    """Starts the clients of MIX ({kind: count}); returns them."""
    hls_tracks = [ids[f"Chaos {k}"] for k in (4, 5)]
    transcodes = [f"/stream/{ids[f'Chaos {k}']}?profile={p}" for p in ("mp3", "low", "high")
                  for k in range(4)]
    counter = iter(range(1 << 30))
    lock = threading.Lock()

    def offset():
        with lock:
            return next(counter)
    ctx = {"range_bytes": range_bytes, "range_path": f"/stream/{ids['Range MP3']}",
           "transcodes": transcodes, "hls_tracks": hls_tracks, "digests": {},
           "lock": threading.Lock(), "offset": offset}
    clients = []
    seed = 0
    for kind, count in mix.items():
        for i in range(count):
            seed += 1
            if kind == "ws":
                c = WsClient(rec, srv.port, f"chaos{i}")
            else:
                c = HttpClient(rec, srv.port, kind, ctx, seed, retry_stale=retry_stale)
            c.start()
            clients.append(c)
    return clients


def stop_load(rec, clients):
    rec.stop.set()
    for c in clients:
        c.join(timeout=60)
    assert not any(c.is_alive() for c in clients), "load clients hung"
    return list(rec.results)


def by_kind(results):
    out = {}
    for r in results:
        k = out.setdefault(r["kind"], {"requests": 0, "failures": 0})
        k["requests"] += 1
        k["failures"] += 0 if r["ok"] else 1
    return out


def describe(bad, limit=12):
    return "; ".join(f"[{r['kind']} pid={r['pid']} {r['path']} {r['error']}]" for r in bad[:limit])


# ------------------------------------------------ (a) kill -9 of workers

LOAD_KINDS = ("range", "transcode", "hls", "health", "ws")

def test_killed_workers_under_mixed_load(talas_server, chaoslib):
    pytest.importorskip("websockets", reason="install Debian package python3-websockets")
    kills = 20 if FULL else 8
    srv = talas_server([chaoslib], workers=3,
                       extra_yaml="transcode:\n  threads: 1\ncache:\n  max_size: 128MiB\n")
    ids = ids_by_title(srv)
    range_bytes = (chaoslib / "range.mp3").read_bytes()
    born = {p: time.monotonic() - 10 for p in srv.wait_worker_pids(3)}
    rec = Recorder()
    clients = start_load(srv, ids, rec, range_bytes,
                         {"range": 2, "transcode": 2, "hls": 1, "health": 1, "ws": 2})
    killed, respawns, kill_times = set(), [], []
    try:
        time.sleep(2.0)
        for _ in range(kills):
            # A worker younger than 2 s would be respawned with backoff:
            # that is test_supervision's business, not this one's.
            def old_enough():
                now = time.monotonic()
                for p in srv.worker_pids():
                    born.setdefault(p, now)
                c = [p for p in srv.worker_pids() if now - born[p] >= 2.2]
                return c
            cands = tf.wait_for(old_enough, 10, interval=0.05, what="a worker alive for 2 s")
            victim = random.choice(cands)
            before = set(srv.worker_pids())
            t_kill = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            killed.add(victim)
            kill_times.append(t_kill)
            new = tf.wait_for(lambda: [p for p in srv.worker_pids() if p not in before], 5,
                              interval=0.002, what="a replacement worker")
            t_new = time.monotonic()
            born[new[0]] = t_new
            respawns.append(round((t_new - t_kill) * 1000, 1))
            time.sleep(0.3)
        time.sleep(1.5)

        # The load goes on until every kind has been answered rightly a few
        # times: under the sanitizers a whole cold transcode lasts longer
        # than the kills' pace, and most of those in flight die with their
        # worker (10 of 13 in one run).
        def served_enough():
            with rec.lock:
                kinds = by_kind(rec.results)
            return all(kinds.get(k, {}).get("requests", 0) - kinds.get(k, {}).get("failures", 0) >= 5
                       for k in LOAD_KINDS)
        tf.wait_for(served_enough, 90, interval=0.2, what="five right answers of every kind of load")
    finally:
        results = stop_load(rec, clients)

    def excused(r):
        if r["pid"] is not None:
            return r["pid"] in killed
        # No worker had answered on this connection yet: it may have been
        # accepted by the victim just before it died.
        return any(r["start"] - 0.05 <= t <= r["end"] for t in kill_times)

    bad = [r for r in results if not r["ok"]]
    on_killed = [r for r in bad if excused(r)]
    others = [r for r in bad if not excused(r)]
    figures = {
        "workers": 3, "kills": len(respawns), "requests": len(results),
        "failures_total": len(bad), "failures_on_killed_workers": len(on_killed),
        "failures_elsewhere": len(others), "by_kind": by_kind(results),
        "respawn_ms": respawns, "respawn_ms_max": max(respawns),
        "unattributed_near_kill": len([r for r in on_killed if r["pid"] is None]),
    }
    report("a_kill_workers", figures)
    assert others == [], f"{len(others)} failures outside the killed workers: {describe(others)}"
    assert len(respawns) == kills
    assert max(respawns) < 1000, respawns
    kinds = by_kind(results)
    for kind in LOAD_KINDS:
        ok = kinds.get(kind, {"requests": 0, "failures": 0})
        assert ok["requests"] - ok["failures"] >= 5, (kind, kinds)
    log = tf.read_text(srv.error_log, limit=2_000_000)
    for p in killed:
        assert re.search(rf"\(pid {p}\) killed by signal 9", log), p
    assert srv.health()["status"] == "ok"
    clean, entries, chunks, _, text = ctl_verify(srv)
    assert clean, text


# ------------------------------------- (b) kill -9 of everything mid-write

class Reader(threading.Thread):
    """GET PATH, keeping every byte received until the connection ends."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.body = bytearray()
        self.status = None
        self.error = None

    def run(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            c.request("GET", self.path)
            resp = c.getresponse()
            self.status = resp.status
            while True:
                d = resp.read1(65536)
                if not d:
                    break
                self.body += d
        except Exception as e:  # noqa: BLE001
            self.error = f"{type(e).__name__}: {e}"


def test_kill_everything_mid_cache_writes(talas_server, chaoslib, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for k in range(6):
        os.link(chaoslib / f"chaos{k}.flac", lib / f"chaos{k}.flac")
    srv = talas_server([lib], workers=2,
                       extra_yaml="transcode:\n  threads: 2\ncache:\n  max_size: 128MiB\n")
    ids = ids_by_title(srv)
    # whole transcodes, committed before any kill
    warm = [f"/stream/{ids['Chaos 0']}?profile=mp3", f"/stream/{ids['Chaos 1']}?profile=high"]
    warm_bodies = {}
    for p in warm:
        st, h, body = srv.get(p, timeout=120)
        assert st == 200 and body
        warm_bodies[p] = body
    # the second play of a whole AAC transcode has a length: it is stored
    st, h, body = srv.get(warm[1], timeout=60)
    assert st == 200 and body == warm_bodies[warm[1]] and h["Content-Length"]

    rounds = []
    cold_profiles = ["mp3", "low", "high", "mobile", "medium"]
    for rnd in range(2):
        clean0, e0, c0, b0, text0 = ctl_verify(srv)
        assert clean0, text0
        readers = []
        for k in range(2, 6):
            for p in cold_profiles[rnd * 2:rnd * 2 + 3]:
                readers.append(Reader(srv.port, f"/stream/{ids[f'Chaos {k}']}?profile={p}"))
        for r in readers:
            r.start()

        # Kill once chunks are being committed, while they still are.
        def committing():
            _, _, chunks, _, _ = ctl_verify(srv)
            return chunks >= c0 + 6 and chunks
        tf.wait_for(committing, 60, interval=0.1, what="cold transcodes to store chunks")
        _, e_before, c_before, b_before, _ = ctl_verify(srv)
        tree = tf.process_tree(srv.master_pid)
        srv.kill()  # SIGKILL to the master's process group and every child seen
        # a killed process may take a moment to unmap its memory and exit
        tf.wait_for(lambda: not any(tf.pid_alive(p) for p in tree), 10, what="every process to be gone")
        for r in readers:
            r.join(timeout=30)
        served = {r.path: bytes(r.body) for r in readers}
        # The storage as the kill left it, before anything opens it again.
        clean1, e1, c1, b1, text1 = ctl_verify(srv)
        srv.start(wait_scan=True)
        clean2, e2, c2, b2, text2 = ctl_verify(srv)
        s0 = settled_stats(srv)
        for p, body in warm_bodies.items():
            st, h, again = srv.get(p, timeout=60)
            assert st == 200 and again == body, f"{p}: changed after a kill -9"
        s1 = settled_stats(srv)
        # the interrupted transcodes: what had been served is a prefix
        prefixes_ok = 0
        for p, before in served.items():
            st, h, after = srv.get(p, timeout=120)
            assert st == 200 and after, (p, st)
            assert after[:len(before)] == before, f"{p}: served bytes differ after the restart"
            prefixes_ok += 1
        unfinished = sum(1 for r in readers if r.error or r.status is None)
        rounds.append({"chunks_committed_before_kill": c_before, "entries_before_kill": e_before,
                       "verify_after_kill": {"clean": clean1, "entries": e1, "chunks": c1},
                       "verify_after_restart": {"clean": clean2, "entries": e2, "chunks": c2},
                       "streams_cut_by_kill": unfinished, "streams": len(readers),
                       "prefixes_checked": prefixes_ok,
                       "warm_reencoded": s1["transcodes_started"] - s0["transcodes_started"]})
        assert clean1, text1
        assert clean2, text2
        assert c1 >= c_before and c2 >= c_before, (c_before, c1, c2)
        assert s1["transcodes_started"] == s0["transcodes_started"], \
            "a transcode stored before the kill was encoded again"
        assert unfinished >= 1, "every transcode finished before the kill: nothing was tested"
    clean, entries, chunks, _, text = ctl_verify(srv)
    report("b_kill_all_mid_write", {"rounds": rounds, "final_entries_verified": entries,
                                    "final_chunks_verified": chunks})
    assert clean, text


# ------------------------------------------------ (c) map full, disk full

def fill_cache(srv, ids, tmp_path, profiles):
    """Every Chaos track in every profile, three at a time; each response
    must be whole and decode to the track's length."""
    import concurrent.futures as cf
    paths = [f"/stream/{ids[f'Chaos {k}']}?profile={p}" for p in profiles for k in range(6)]

    def one(p):
        return p, srv.get(p, timeout=180)
    out = []
    with cf.ThreadPoolExecutor(3) as ex:
        for p, (st, h, body) in ex.map(one, paths):
            assert st == 200, (p, st, body[:300])
            out.append((p, body))
    for p, body in out[::5]:
        secs = decoded_seconds(body, tmp_path, "fill")
        assert abs(secs - 20) < 0.5, (p, secs)
    return len(out)


def test_map_full_evicts_and_keeps_serving(talas_server, chaoslib, tmp_path):
    # 3 MiB of map for 18 transcodes of ~0.3-0.8 MiB: LMDB runs out of
    # pages (MDB_MAP_FULL) before cache.max_size is reached.
    srv = talas_server([chaoslib], workers=2,
                       extra_yaml="transcode:\n  threads: 2\ncache:\n  max_size: 2304KiB\n")
    srv.write_config(text=srv.config_text().replace("map_size: 256MiB", "map_size: 3MiB"))
    srv.stop()
    srv.start(wait_scan=True)
    ids = ids_by_title(srv)
    served = fill_cache(srv, ids, tmp_path, ("mp3", "high", "low"))
    served += fill_cache(srv, ids, tmp_path, ("mp3",))
    s = settled_stats(srv)
    clean, entries, chunks, nbytes, text = ctl_verify(srv)
    report("c_map_full", {"map_size": "3MiB", "max_size": "2304KiB", "transcodes_served": served,
                          "evictions": s["evictions"], "map_full_retries": s["map_full_retries"],
                          "transcodes_failed": s["transcodes_failed"], "cache_bytes": s["bytes"],
                          "entries_verified": entries, "chunks_verified": chunks})
    assert s["evictions"] > 0, s
    assert s["map_full_retries"] > 0, f"MDB_MAP_FULL never happened: {s}"
    assert s["transcodes_failed"] == 0, s
    assert clean, text
    assert srv.health()["status"] == "ok"


def test_disk_full_keeps_serving(talas_server, chaoslib, tmp_path):
    """The storage on a 6 MiB tmpfs that fills up: LMDB's writes fail with
    ENOSPC while the map is not full.  Needs mount(2) (root): skipped
    otherwise."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "tmpfs", str(mnt)],
                        capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {cp.stderr.strip()}")
    try:
        srv = talas_server([chaoslib], workers=2, start=False,
                           extra_yaml="transcode:\n  threads: 2\ncache:\n  max_size: 48MiB\n")
        srv.storage_path = mnt / "talas.lmdb"
        srv.write_config(text=srv.config_text().replace("map_size: 256MiB", "map_size: 64MiB"))
        srv.start(wait_scan=True)
        ids = ids_by_title(srv)
        served = fill_cache(srv, ids, tmp_path, ("mp3", "high", "low"))
        served += fill_cache(srv, ids, tmp_path, ("mp3",))
        s = settled_stats(srv)
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        log = tf.read_text(srv.error_log, limit=2_000_000)
        enospc = len(re.findall(r"no space left on the storage's file system", log))
        assert srv.health()["status"] == "ok"
        clean, entries, chunks, nbytes, text = ctl_verify(srv)
        report("c_disk_full", {"fs_size": "6MiB", "fs_free_at_end": free, "transcodes_served": served,
                               "evictions": s["evictions"], "map_full_retries": s["map_full_retries"],
                               "transcodes_failed": s["transcodes_failed"],
                               "enospc_log_lines": enospc, "entries_verified": entries})
        assert clean, text
        assert s["transcodes_failed"] == 0, s
        assert enospc > 0, "the file system never filled up: nothing was tested"
        # eviction made room inside the file: the cache kept working
        assert s["evictions"] > 0, s
        assert entries > 0 and chunks > 0
        srv.kill()
    finally:
        for srv_ in list(tf._live_servers):
            if str(srv_.storage_path).startswith(str(mnt)):
                srv_.kill()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ----------------------------------------------- (d) SIGHUP every second

def test_sighup_every_second_under_load(talas_server, chaoslib):
    seconds = 60 if FULL else 30
    # shutdown_timeout as the default (30 s): a retiring worker cuts what
    # is left at its deadline, and cold encodes are slow on 2 loaded CPUs
    srv = talas_server([chaoslib], workers=2, shutdown_timeout="30s",
                       extra_yaml="transcode:\n  threads: 1\ncache:\n  max_size: 128MiB\n")
    ids = ids_by_title(srv)
    range_bytes = (chaoslib / "range.mp3").read_bytes()
    rec = Recorder()
    clients = start_load(srv, ids, rec, range_bytes,
                         {"range": 2, "transcode": 1, "hls": 1, "health": 2}, retry_stale=True)
    hups = 0
    gens = set()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            srv.reload()
            hups += 1
            time.sleep(1.0)
            gens.add(srv.health()["generation"])
        time.sleep(2.0)
    finally:
        results = stop_load(rec, clients)
    bad = [r for r in results if not r["ok"]]
    log = tf.read_text(srv.error_log, limit=5_000_000)
    figures = {"seconds": seconds, "sighups": hups, "requests": len(results),
               "failures": len(bad), "retried_on_stale_keepalive": sum(r["retried"] for r in results),
               "generations_seen": len(gens), "by_kind": by_kind(results),
               "reloads_rolled_back": len(re.findall(r"reload rolled back", log)),
               "reloads_failed": len(re.findall(r"reload failed", log))}
    report("d_sighup_every_second", figures)
    assert bad == [], f"{len(bad)} failed requests: {describe(bad)}"
    assert len(gens) >= seconds // 4, f"few generations served: {sorted(gens)}"
    assert figures["reloads_failed"] == 0
    assert not re.search(r"killed by signal", log)
    assert srv.health()["status"] == "ok"


# --------------------------------------- (e) library file changed mid-stream

class SlowReader(threading.Thread):
    """GET PATH on a small receive buffer, RATE bytes a second, recording
    the headers and whether the response ended whole, cut, or not at all."""

    def __init__(self, port, path, rate=400_000):
        super().__init__(daemon=True)
        self.port, self.path, self.rate = port, path, rate
        self.head = b""
        self.body = bytearray()
        self.how = None
        self.fast = threading.Event()

    def run(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(30)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    self.how = "closed before headers"
                    return
                buf += d
            self.head, _, rest = buf.partition(b"\r\n\r\n")
            self.body += rest
            while True:
                d = s.recv(8192)
                if not d:
                    self.how = "eof"
                    break
                self.body += d
                if not self.fast.is_set():
                    time.sleep(8192 / self.rate)
        except OSError as e:
            self.how = f"{type(e).__name__}"
        finally:
            s.close()

    def header(self, name):
        m = re.search(rb"(?im)^" + name.encode() + rb":\s*(.*?)\s*$", self.head)
        return m.group(1).decode() if m else None

    def status(self):
        return tf.parse_status_line(self.head + b"\r\n")


def dechunk(body):
    """The payload of a chunked body, and whether its last chunk came."""
    out, i = bytearray(), 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return bytes(out), False
        n = int(body[i:j].split(b";")[0], 16)
        if n == 0:
            return bytes(out), True
        out += body[j + 2:j + 2 + n]
        if len(body) < j + 2 + n + 2:
            return bytes(out), False
        i = j + 2 + n + 2


def test_library_file_changed_while_streamed(talas_server, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    big = tf.make_big_wav(lib / "big.wav", seconds=60)       # ~10 MB
    make_flac(lib / "long.flac", 90, "Long FLAC", 500)
    srv = talas_server([lib], workers=2)
    ids = ids_by_title(srv)
    pids = srv.worker_pids()
    seen = {}

    # 1. original, truncated to a third under a slow download
    size0 = big.stat().st_size
    rd = SlowReader(srv.port, f"/stream/{ids['Big WAV']}")
    rd.start()
    tf.wait_for(lambda: len(rd.body) > 1_000_000, 20, what="the download to start")
    os.truncate(big, size0 // 3)
    rd.fast.set()
    rd.join(timeout=30)
    assert not rd.is_alive(), "the response neither ended nor was cut"
    assert rd.status() == 200 and int(rd.header("Content-Length")) == size0
    seen["original_truncated"] = {"content_length": size0, "received": len(rd.body),
                                  "new_size": size0 // 3, "ended": rd.how}
    # what a client sees: fewer bytes than Content-Length, then the close
    assert len(rd.body) < size0 and rd.how == "eof", seen
    assert bytes(rd.body[:1000]) == big.read_bytes()[:1000]
    time.sleep(1.1)  # the file cache keeps an open file one second
    st, h, body = srv.get(f"/stream/{ids['Big WAV']}")
    assert st == 200 and body == big.read_bytes(), (st, len(body))

    # 2. original, replaced (rename over it) under a slow download
    old = big.read_bytes()
    rd = SlowReader(srv.port, f"/stream/{ids['Big WAV']}")
    rd.start()
    tf.wait_for(lambda: len(rd.body) > 300_000, 20, what="the download to start")
    tmp = lib / ".big.new.wav"
    tf.make_big_wav(tmp, seconds=20)
    new = tmp.read_bytes()
    os.replace(tmp, big)
    rd.fast.set()
    rd.join(timeout=30)
    seen["original_replaced"] = {"received": len(rd.body), "old_size": len(old),
                                 "new_size": len(new), "ended": rd.how}
    # the response in flight goes on with the file it opened: whole and old
    assert bytes(rd.body) == old and rd.how == "eof", seen
    time.sleep(1.1)
    st, h, body = srv.get(f"/stream/{ids['Big WAV']}")
    assert st == 200 and body == new, (st, len(body), len(new))

    # 3. cold transcode, source truncated under a slow listener
    src = lib / "long.flac"
    tpath = f"/stream/{ids['Long FLAC']}?profile=mp3"
    rd = SlowReader(srv.port, tpath, rate=40_000)
    rd.start()
    tf.wait_for(lambda: len(rd.body) > 150_000, 30, what="the transcode to start")
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 3])  # in place: same inode, a third left
    truncated_seconds = decoded_seconds(src.read_bytes(), tmp_path, "src-trunc")
    rd.fast.set()
    rd.join(timeout=60)
    assert not rd.is_alive(), "the transcode response neither ended nor was cut"
    body = bytes(rd.body)
    if rd.header("Transfer-Encoding") == "chunked":
        body, complete = dechunk(body)
    else:
        complete = len(body) == int(rd.header("Content-Length") or -1)
    seen["transcode_truncated"] = {
        "status": rd.status(), "content_length": rd.header("Content-Length"),
        "received": len(body), "complete": complete, "ended": rd.how,
        "decoded_seconds": round(decoded_seconds(body, tmp_path, "cut"), 2),
        "source_seconds_before": 90, "source_seconds_after": round(truncated_seconds, 2)}
    assert rd.status() == 200
    # Later requests: a changed source is another transcode, of the new file.
    st, h, later = srv.get(tpath, timeout=120)
    later_s = decoded_seconds(later, tmp_path, "later")
    seen["transcode_truncated"]["later_request_seconds"] = round(later_s, 2)
    assert st == 200 and abs(later_s - truncated_seconds) < 1.0, seen

    # 4. cold transcode, source replaced (rename over it) under a listener
    make_flac(lib / ".long.new.flac", 45, "Long FLAC", 700)
    tpath2 = f"/stream/{ids['Long FLAC']}?profile=low"
    rd = SlowReader(srv.port, tpath2, rate=20_000)
    rd.start()
    tf.wait_for(lambda: len(rd.body) > 50_000, 30, what="the transcode to start")
    os.replace(lib / ".long.new.flac", src)
    rd.fast.set()
    rd.join(timeout=60)
    assert not rd.is_alive()
    body = bytes(rd.body)
    if rd.header("Transfer-Encoding") == "chunked":
        body, complete = dechunk(body)
    else:
        complete = len(body) == int(rd.header("Content-Length") or -1)
    st, h, later = srv.get(tpath2, timeout=120)
    later_s = decoded_seconds(later, tmp_path, "later2")
    seen["transcode_replaced"] = {"status": rd.status(), "received": len(body),
                                  "complete": complete, "ended": rd.how,
                                  "decoded_seconds": round(decoded_seconds(body, tmp_path, "r"), 2),
                                  "later_request_seconds": round(later_s, 2), "new_seconds": 45}
    assert st == 200 and abs(later_s - 45) < 1.0, seen

    # No worker died on the way, and the catalog follows after a rescan.
    assert srv.worker_pids() == pids, "a worker died"
    log = tf.read_text(srv.error_log, limit=2_000_000)
    assert not re.search(r"killed by signal|exited with status", log), log[-3000:]
    srv.talasctl("scan", check=True, timeout=120)
    t = srv.track_by_title("Long FLAC")
    assert t is not None and abs(t["duration_ms"] - 45000) < 500, t
    report("e_file_changed_mid_stream", seen)


# ------------------------------------- (f) kill -9 of a worker mid-encode

class PidReader(threading.Thread):
    """/api/health, then GET PATH on the same keep-alive connection: the
    worker that serves the transcode (pid) and every byte received."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.pid = None
        self.body = bytearray()
        self.status = None
        self.error = None
        self.done = False

    def run(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            c.request("GET", "/api/health")
            r = c.getresponse()
            self.pid = json.loads(r.read())["pid"]
            c.request("GET", self.path)
            resp = c.getresponse()
            self.status = resp.status
            while True:
                d = resp.read1(16384)
                if not d:
                    break
                self.body += d
                time.sleep(0.02)  # a listener, not a download: the encode lasts
            self.done = True
        except Exception as e:  # noqa: BLE001
            self.error = f"{type(e).__name__}: {e}"


def test_worker_killed_mid_encode_master_never_writes(talas_server, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for k in range(4):
        make_flac(lib / f"mid{k}.flac", 60, f"Mid {k}", 350 + 60 * k)
    srv = talas_server([lib], workers=2,
                       extra_yaml="transcode:\n  threads: 1\ncache:\n  max_size: 128MiB\n")
    ids = ids_by_title(srv)
    master = srv.master_pid
    rounds = []
    for prof in ("mp3", "low", "high"):
        paths = [f"/stream/{ids[f'Mid {k}']}?profile={prof}" for k in range(4)]
        readers = [PidReader(srv.port, p) for p in paths]
        for r in readers:
            r.start()

        def streaming():
            live = [r for r in readers if r.pid and len(r.body) > 0 and not r.done]
            return live[0] if live else None
        first = tf.wait_for(streaming, 60, interval=0.01, what="a cold transcode to stream")
        victim = first.pid
        os.kill(victim, signal.SIGKILL)
        tf.wait_for(lambda: len(srv.worker_pids()) == 2 and victim not in srv.worker_pids(), 10,
                    what="a replacement worker")
        for r in readers:
            r.join(timeout=120)
        assert not any(r.is_alive() for r in readers), "a transcode hung"
        pattern = re.compile(rf"#worker: released (\d+) encode claim\(s\) of dead worker {victim}\b")
        m = tf.wait_for(lambda: pattern.search(tf.read_text(srv.error_log, limit=5_000_000)), 10,
                        what=f"the new worker to release the claims of {victim}")
        released = int(m.group(1))
        cut = [r for r in readers if r.pid == victim]
        # The interrupted transcodes again: the rest is encoded once more,
        # what had been served is a prefix, the whole decodes to the track,
        # and a second play is the same bytes (from the cache).
        s1 = settled_stats(srv)
        for r in cut:
            st, h, after = srv.get(r.path, timeout=180)
            assert st == 200 and after, (r.path, st)
            assert after[:len(r.body)] == bytes(r.body), f"{r.path}: served bytes differ after the kill"
            secs = decoded_seconds(after, tmp_path, "mid")
            assert abs(secs - 60) < 0.5, (r.path, secs)
            st, h, again = srv.get(r.path, timeout=60)
            assert st == 200 and again == after, f"{r.path}: a second play differs"
        s2 = settled_stats(srv)
        clean, entries, chunks, _, text = ctl_verify(srv)
        rounds.append({"profile": prof, "victim": victim, "streams_on_victim": len(cut),
                       "cut_by_kill": sum(1 for r in cut if not r.done),
                       "claims_released_by_successor": released,
                       "encodes_after_kill": s2["transcodes_started"] - s1["transcodes_started"],
                       "verify_clean": clean, "entries": entries, "chunks": chunks})
        # the master is the same process: an LMDB write would have aborted it
        assert srv.running() and srv.master_pid == master and tf.pid_alive(master)
        assert clean, text
        assert rounds[-1]["encodes_after_kill"] >= 1, rounds[-1]
    log = tf.read_text(srv.error_log, limit=5_000_000)
    report("f_kill_worker_mid_encode", {"rounds": rounds})
    assert not re.search(r"forbade LMDB writes|#master: .*killed by signal 6", log), log[-3000:]
    for r in rounds:
        assert re.search(rf"\(pid {r['victim']}\) killed by signal 9", log), r
    # at least one kill caught claims in flight: the release was tested
    assert any(r["claims_released_by_successor"] > 0 for r in rounds), rounds
    assert srv.health()["status"] == "ok"
