"""The master supervising its workers, and its signals.

Each test runs its own talas-master (the talas_server fixture kills it at the
end, pass or fail) and drives it with real clients under load:
- a worker killed with SIGKILL is replaced within 1 s, and only the requests
  that were on the killed worker may fail;
- SIGHUP with a broken config keeps the old config and workers; with a good
  one it swaps workers without failing a single request;
- SIGTERM lets an in-flight download finish, refuses new connections, exits 0;
- SIGUSR1 reopens the logs;
- a worker that keeps dying young is respawned with backoff;
- a worker respawned after the configuration file was edited runs the text
  its generation was validated with (the master hands it over), not the file.
"""

import http.client
import json
import os
import re
import signal
import socket
import threading
import time


import talas_fixtures as tf


class Load:
    """THREADS clients requesting PATHS in a loop until stop() (bounded by
    MAX_SECONDS in any case).  Even-numbered threads open a new connection
    per request, odd ones keep their connection alive and reconnect after
    an error.  Every request is recorded as a dict: start, end, ok, status,
    pid (from /api/health bodies), error."""

    def __init__(self, port, threads=8, paths=("/api/health",), max_seconds=30):
        self.port = port
        self.threads = threads
        self.paths = paths
        self.max_seconds = max_seconds
        self.stop_event = threading.Event()
        self.results = []
        self.lock = threading.Lock()
        self._threads = []

    def start(self):
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, i):
        keepalive = i % 2 == 1
        deadline = time.monotonic() + self.max_seconds
        conn = None
        n = 0
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            path = self.paths[n % len(self.paths)]
            n += 1
            rec = {"thread": i, "start": time.monotonic(), "path": path, "ok": False,
                   "status": None, "pid": None, "error": None, "keepalive": keepalive,
                   "retried": False}
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    hdrs = {} if keepalive else {"Connection": "close"}
                    conn.request("GET", path, headers=hdrs)
                    resp = conn.getresponse()
                    body = resp.read()
                    rec["status"] = resp.status
                    rec["ok"] = resp.status == 200
                    if path == "/api/health" and resp.status == 200:
                        rec["pid"] = json.loads(body)["pid"]
                    if not keepalive or resp.will_close:
                        conn.close()
                        conn = None
                    break
                except Exception as e:  # noqa: BLE001 - every failure is recorded
                    rec["error"] = f"{type(e).__name__}: {e}"
                    if conn is not None:
                        conn.close()
                    conn = None
                    # A server may close an idle keep-alive connection at any
                    # time (RFC 9112 9.3.1); like browsers and curl, retry a
                    # GET once on a fresh connection when a reused one died
                    # before any response byte.
                    stale = isinstance(e, (http.client.RemoteDisconnected,
                                           ConnectionResetError, BrokenPipeError))
                    if attempt == 1 and reused and stale:
                        rec["retried"] = True
                        rec["error"] = None
                        continue
                    break
            rec["end"] = time.monotonic()
            with self.lock:
                self.results.append(rec)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout=15)
        assert not any(t.is_alive() for t in self._threads), "load threads hung"
        return list(self.results)


def failures(results):
    return [r for r in results if not r["ok"]]


def summary(results, limit=10):
    bad = failures(results)
    return (f"{len(results)} requests, {len(bad)} failed: "
            + "; ".join(f"[t{r['thread']} {r['path']} status={r['status']} {r['error']}]"
                        for r in bad[:limit]))


# ------------------------------------------------------------- (a) SIGKILL

def test_killed_worker_is_replaced_under_load(talas_server, library_dir):
    threads = 8
    srv = talas_server([library_dir], workers=4)
    pids = srv.wait_worker_pids(4)
    load = Load(srv.port, threads=threads).start()
    try:
        time.sleep(1.0)
        victim = pids[1]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new = tf.wait_for(lambda: [p for p in srv.worker_pids() if p not in pids], 1.0,
                          interval=0.01, what="a new worker pid within 1 s of SIGKILL")
        t_respawn = time.monotonic()
        time.sleep(1.5)
    finally:
        results = load.stop()

    assert len(new) == 1, new
    assert srv.worker_pids() == sorted([p for p in pids if p != victim] + new)
    bad = failures(results)
    # An HTTP answer other than 200 is never acceptable; a connection error
    # is, but only for requests that were on (or queued for) the victim at
    # the instant it died: at most one per client thread, all started
    # before the replacement existed.
    assert [r for r in bad if r["status"] is not None] == [], summary(results)
    assert len(bad) <= threads, summary(results)
    late = [r for r in bad if r["start"] > t_respawn]
    assert late == [], "requests started after the respawn failed: " + summary(late)
    after = [r for r in results if r["ok"] and r["start"] > t_kill]
    served_by = {r["pid"] for r in after}
    survivors = set(pids) - {victim}
    assert survivors <= served_by, (survivors, served_by)
    assert new[0] in served_by, f"replacement {new[0]} served nothing: {served_by}"
    assert victim not in {r["pid"] for r in results if r["ok"] and r["start"] > t_respawn}
    assert len(after) > 100, summary(results)
    log = tf.read_text(srv.error_log, limit=200000)
    assert re.search(rf"\(pid {victim}\) killed by signal 9", log), log[-2000:]
    assert srv.health()["status"] == "ok"


def test_respawned_worker_runs_its_generations_config_text(talas_server, library_dir):
    srv = talas_server([library_dir])
    pids = srv.wait_worker_pids(2)
    gen = srv.health()["generation"]
    good = srv.config_text()
    # an edit nobody reloaded: it must not reach the running generation
    srv.write_config(good + "bogus_key: 1\n")
    os.kill(pids[0], signal.SIGKILL)
    new = tf.wait_for(lambda: [p for p in srv.worker_pids() if p not in pids], 5,
                      what="a replacement worker")
    # the replacement serves, with the same generation (two tries: a
    # connection lands on either worker)
    time.sleep(0.5)
    for _ in range(6):
        h = srv.health()
        assert h["status"] == "ok" and h["generation"] == gen, h
    assert len(srv.tracks()) == len(tf.LIBRARY_TRACKS)
    assert srv.worker_pids() == sorted([pids[1]] + new)
    log = tf.read_text(srv.error_log, limit=200000)
    assert "bogus_key" not in log, log[-2000:]
    assert re.search(rf"#worker: worker 0 \(generation {gen}\) serving", log.split(f"pid {pids[0]}) killed")[-1])
    # the master, which does read the file on a reload, refuses it
    srv.reload()
    tf.wait_for(lambda: "bogus_key" in tf.read_text(srv.error_log, limit=200000), 5,
                what="the reload to refuse the edited file")
    assert srv.health()["generation"] == gen


# ------------------------------------------------------------- (b) bad HUP

def test_reload_with_broken_config_keeps_serving(talas_server, library_dir):
    srv = talas_server([library_dir])
    pids = srv.worker_pids()
    good = srv.config_text()
    text = good + "bogus_key: 1\n"
    line = len(text.splitlines())
    srv.write_config(text)
    srv.reload()
    pat = re.compile(rf"{re.escape(str(srv.config_path))}:{line}:\d+: bogus_key:")
    tf.wait_for(lambda: pat.search(tf.read_text(srv.error_log, limit=200000)), 5,
                what=f"'{srv.config_path}:{line}:COL: bogus_key:' in the error log")
    time.sleep(0.5)
    assert srv.running()
    assert srv.worker_pids() == pids
    assert srv.health()["status"] == "ok"
    assert len(srv.tracks()) == len(tf.LIBRARY_TRACKS)

    # The old config keeps serving; a corrected one is then taken.
    srv.write_config(good.replace("workers: 2", "workers: 3"))
    srv.reload()
    tf.wait_for(lambda: (lambda p: len(p) == 3 and not set(p) & set(pids))(srv.worker_pids()),
                10, what="3 new workers after a good reload")
    assert srv.health()["status"] == "ok"


# ------------------------------------------------------------ (c) good HUP

def test_reload_adds_library_path_without_failures(talas_server, library_dir, tmp_path):
    lib2 = tmp_path / "lib2"
    tf.make_track(lib2 / "Second" / "reload.mp3", "Reload Track", artist="Second Path")
    srv = talas_server([library_dir])
    old = srv.worker_pids()
    assert len(old) == 2
    load = Load(srv.port, threads=6,
                paths=("/api/health", "/api/tracks?limit=2", "/api/tracks?q=sine")).start()
    try:
        time.sleep(0.5)
        srv.write_config(library_paths=[library_dir, lib2])
        t_reload = time.monotonic()
        srv.reload()
        new = srv.wait_worker_pids(2, timeout=15, exclude=old)
        tf.wait_for(lambda: srv.track_by_title("Reload Track"), 30,
                    what="the new library path's track")
        # Old workers finish what they were doing and go away.
        tf.wait_for(lambda: not any(tf.pid_alive(p) for p in old), 15,
                    what="old workers to exit")
        time.sleep(0.5)
    finally:
        results = load.stop()
    assert failures(results) == [], summary(results)
    assert len(results) > 100, summary(results)
    served_after = {r["pid"] for r in results if r["start"] > t_reload + 0.2 and r["pid"]}
    assert set(new) & served_after, (new, served_after)
    titles = {t["title"] for t in srv.tracks()}
    assert titles == {t[1] for t in tf.LIBRARY_TRACKS.values()} | {"Reload Track"}


# ----------------------------------------------------------- (d) SIGTERM

def connection_refused(port):
    """True when a new connection is refused. A connect() that raced into
    the backlog of a listening socket as it closed is reset by the kernel:
    that is a refusal too."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


def test_sigterm_lets_download_finish(talas_server, tmp_path):
    tf.require_tool("curl", "curl")
    lib = tmp_path / "big"
    lib.mkdir()
    big = tf.make_big_wav(lib / "big.wav", seconds=240)  # ~42 MB
    size = big.stat().st_size
    digest = tf.sha256_file(big)
    srv = talas_server([lib], shutdown_timeout="30s")
    t = srv.track_by_title("Big WAV")
    assert t is not None
    out = tmp_path / "download"
    # ~10 MiB/s: the download lasts about 4 s, far more than socket buffers.
    curl = tf.subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", "--limit-rate", "10M", "-o", str(out),
         "-w", "%{http_code} %{size_download}", f"{srv.base_url}/stream/{t['id']}"],
        stdout=tf.subprocess.PIPE, stderr=tf.subprocess.PIPE, text=True)
    try:
        tf.wait_for(lambda: out.exists() and out.stat().st_size > 2_000_000, 10,
                    what="the download to start")
        srv.send_signal(signal.SIGTERM)
        t_term = time.monotonic()
        refused_after = None
        while time.monotonic() - t_term < 3:
            if connection_refused(srv.port):
                refused_after = time.monotonic() - t_term
                break
            time.sleep(0.05)
        still_running = curl.poll() is None
        stdout, stderr = curl.communicate(timeout=60)
    finally:
        if curl.poll() is None:
            curl.kill()
            curl.wait()
    assert still_running, "download finished before it could be tested"
    assert curl.returncode == 0, f"curl exit {curl.returncode}: {stderr}"
    assert stdout.split() == ["200", str(size)]
    assert out.stat().st_size == size
    assert tf.sha256_file(out) == digest
    assert srv.wait_exit(timeout=35) == 0
    # Checked last so that a failure here still tells about the download.
    assert refused_after is not None, \
        "new connections were still accepted 3 s after SIGTERM (listening socket kept open)"


def test_sigint_idle_exits_cleanly(talas_server, library_dir):
    srv = talas_server([library_dir])
    pids = srv.worker_pids()
    assert srv.stop(sig=signal.SIGINT, timeout=15) == 0
    assert not any(tf.pid_alive(p) for p in pids), "workers outlived the master"


def test_sigterm_idle_exits_quickly(talas_server, library_dir):
    srv = talas_server([library_dir])
    pids = srv.worker_pids()
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    assert srv.wait_exit(timeout=15) == 0
    assert time.monotonic() - t0 < 5, "idle graceful stop should not wait for the deadline"
    assert not any(tf.pid_alive(p) for p in pids), "workers outlived the master"


# ----------------------------------------------------------- (e) SIGUSR1

def test_sigusr1_reopens_logs(talas_server, library_dir):
    srv = talas_server([library_dir], access_format="json")
    access, error = srv.access_log, srv.error_log

    def logged(path, marker):
        return marker in tf.read_text(path, limit=10_000_000)

    srv.get("/api/tracks/usr1-before-0000")
    tf.wait_for(lambda: logged(access, "usr1-before-0000"), 5,
                what="the access log line of a request")
    old_access = access.with_name("access.log.1")
    old_error = error.with_name("error.log.1")
    os.rename(access, old_access)
    os.rename(error, old_error)
    srv.send_signal(signal.SIGUSR1)
    i = 0

    def reopened():
        nonlocal i
        i += 1
        srv.get(f"/api/tracks/usr1-probe-{i:05d}")
        return access.exists() and "usr1-probe-" in tf.read_text(access)
    tf.wait_for(reopened, 5, interval=0.1, what="a new access log after SIGUSR1")
    tf.wait_for(error.exists, 5, what="a new error log after SIGUSR1")
    time.sleep(0.5)  # let every worker act on the reopen
    markers = [f"usr1-after-{k:05d}" for k in range(20)]
    for m in markers:
        srv.get(f"/api/tracks/{m}")
    tf.wait_for(lambda: all(logged(access, m) for m in markers), 5,
                what="all requests after the reopen in the new access log")
    old_text = tf.read_text(old_access, limit=10_000_000)
    assert not any(m in old_text for m in markers)
    lines = [l for l in tf.read_text(access, limit=10_000_000).splitlines() if l.strip()]
    for l in lines:
        json.loads(l)  # access_format: json means one JSON object per line
    assert srv.health()["status"] == "ok"


# ------------------------------------------------------- (f) dying young

def test_worker_dying_young_is_respawned_with_backoff(talas_server, library_dir):
    """Kill each replacement as soon as it appears: it dies before serving
    anything, again and again.  The master must keep respawning, but wait
    longer and longer between attempts, and stay up (the other worker
    serving meanwhile)."""
    srv = talas_server([library_dir], workers=2)
    pids = srv.worker_pids()
    survivor, current = pids[0], pids[1]
    gaps = []
    for _ in range(6):
        t0 = time.monotonic()
        os.kill(current, signal.SIGKILL)
        known = set(pids) | {current}
        nxt = tf.wait_for(lambda: [p for p in srv.worker_pids() if p not in known], 40,
                          interval=0.005, what="a respawn")
        gaps.append(time.monotonic() - t0)
        pids = srv.worker_pids()
        current = nxt[0]
        assert survivor in pids
        assert srv.health()["status"] == "ok"
    assert gaps[-1] > gaps[0] and gaps[-1] >= 0.2, f"no backoff: gaps {gaps}"
    assert srv.running()
