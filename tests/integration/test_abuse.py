"""Abuse limits: each test plays one attack against a real talas-master and
checks both sides of the limit that answers it: the attacker gets what the
limits table (talas-master(8), LIMITS) says, and other clients keep being
served.

Every docstring says how the test was checked to fail without its limit
(the limit raised out of reach, or set to 0 = off, in the test's config,
and the test run once that way).

Loopback clients can use any source address in 127.0.0.0/8: attackers
connect from 127.0.0.2, well-behaved clients from 127.0.0.1, so that
per-address limits can be told apart from per-worker ones.
"""

import asyncio
import json
import selectors
import socket
import statistics
import threading
import time

import pytest

import talas_fixtures as tf

ATTACKER = "127.0.0.2"
CLIENT = "127.0.0.1"


# ---------------------------------------------------------------- helpers

def connect(srv, src=CLIENT, rcvbuf=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((srv.host, srv.port))
    return s


def read_head(s, timeout=5):
    """Reads a response's status line and headers from S: (status, {name:
    value}, bytes of body already read), or (None, {}, b"") when the server
    closed the connection first."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            return None, {}, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def exchange(s, path, timeout=5):
    """One keep-alive GET on S: (status, headers, body), or (None, {}, b"")
    when the connection was closed without a response."""
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    except OSError:
        return None, {}, b""
    status, headers, body = read_head(s, timeout)
    if status is None:
        return status, headers, body
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def get_from(srv, path, src=CLIENT, timeout=5):
    s = connect(srv, src, timeout=timeout)
    try:
        return exchange(s, path, timeout)
    finally:
        s.close()


def error_code(body):
    return json.loads(body)["error"]["code"]


def probe(srv, stop, latencies, failures, path="/api/health", interval=0.05):
    """A well-behaved client: one request on a fresh connection every
    INTERVAL until STOP is set; LATENCIES gets the times of the good ones,
    FAILURES a line per bad one."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            status, _, body = get_from(srv, path, timeout=5)
            if status == 200:
                latencies.append(time.monotonic() - t0)
            else:
                failures.append(f"status {status}: {body[:100]!r}")
        except OSError as e:
            failures.append(repr(e))
        stop.wait(interval)


def p95(values):
    values = sorted(values)
    return values[int(len(values) * 0.95)] if values else None


@pytest.fixture(scope="module")
def abuselib(tmp_path_factory):
    d = tmp_path_factory.mktemp("abuselib")
    for i, freq in enumerate((220, 330, 440, 550)):
        tf.make_track(d / f"long{i}.mp3", f"Long {i}", seconds=300, freq=freq)
    tf.make_track(d / "short.mp3", "Short", seconds=4, freq=660)
    tf.make_big_wav(d / "big.wav", seconds=120)
    return d


def server(talas_server, lib, workers=1, extra=""):
    srv = talas_server([lib], workers=workers, extra_yaml=extra)
    srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
    return srv


# ------------------------------------------------- header and body sizes

def test_header_size_limit_gets_431(talas_server, abuselib):
    """http.max_header_size: a request whose headers pass it gets 431 with a
    JSON body, one just under it is served, and the worker stays up.

    Checked without the limit: with http.max_header_size at 256KiB the 8 KB
    header was served (200), so the first assertion failed.
    """
    srv = server(talas_server, abuselib, extra="http:\n  max_header_size: 4KiB\n")
    pids = srv.worker_pids()
    big = {"X-Filler": "a" * 8000}
    st, hdrs, body = tf.http_request(srv.host, srv.port, "GET", "/api/health", headers=big)
    assert st == 431, body[:200]
    assert hdrs["Content-Type"].startswith("application/json")
    assert error_code(body) == "request_header_too_large"
    st, _, _ = tf.http_request(srv.host, srv.port, "GET", "/api/health", headers={"X-Filler": "a" * 3000})
    assert st == 200
    assert srv.worker_pids() == pids


def test_request_body_limit_gets_413(talas_server, abuselib):
    """http.max_request_body: a body over it gets 413 from h2o before it is
    read (a plain-text body: h2o answers before any Talas handler runs);
    one under it reaches the handler (here a 4xx of the session API).

    Checked without the limit: with http.max_request_body at 1GiB the 8 KB
    body reached the session API, which answered 400, not 413.
    """
    srv = server(talas_server, abuselib, extra="http:\n  max_request_body: 2KiB\n")
    body = json.dumps({"track_id": "x" * 8000}).encode()
    st, _, resp = tf.http_request(srv.host, srv.port, "POST", "/api/streaming/session",
                                  headers={"Content-Type": "application/json"}, body=body)
    assert st == 413, resp[:200]
    assert b"body_too_large" not in resp  # h2o's, not the session API's own 16 KB limit
    small = json.dumps({"track_id": "x" * 100}).encode()
    st, _, resp = tf.http_request(srv.host, srv.port, "POST", "/api/streaming/session",
                                  headers={"Content-Type": "application/json"}, body=small)
    assert st != 413 and 400 <= st < 500, (st, resp[:200])
    assert srv.health()["status"] == "ok"


# -------------------------------------------------------------- slowloris

SLOW_CONNECTIONS = 1000


def test_slowloris_connections_are_cut_and_others_served(talas_server, abuselib):
    """Slowloris: SLOW_CONNECTIONS (1000) connections from one address each
    send a request header a byte at a time, one byte per second, with
    http.request_timeout at 3s (the issue's scenario is a byte every 10 s
    against the default 10s: the same ratio, ten times faster). The server
    must close every one of them about request_timeout after it opened
    (trickled bytes do not extend it), and a well-behaved client on the same
    worker must be served quickly all along.

    Checked without the limit: with http.request_timeout at 1h the slow
    connections were still open at the end and the test failed.
    """
    timeout = 3.0
    srv = server(talas_server, abuselib,
                 extra=f"http:\n  request_timeout: {int(timeout)}s\n  max_connections_per_ip: 0\n")
    sel = selectors.DefaultSelector()
    socks = []
    opened = {}
    closed_after = {}
    line = b"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
    try:
        for i in range(SLOW_CONNECTIONS):
            s = connect(srv, ATTACKER)
            s.setblocking(False)
            s.send(line[:1])
            socks.append(s)
            opened[s] = time.monotonic()
            sel.register(s, selectors.EVENT_READ)
        stop = threading.Event()
        lat, fails = [], []
        t = threading.Thread(target=probe, args=(srv, stop, lat, fails))
        t.start()
        sent = 1
        deadline = time.monotonic() + timeout + 4
        next_byte = time.monotonic() + 1
        while time.monotonic() < deadline and len(closed_after) < len(socks):
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    closed_after[s] = time.monotonic() - opened[s]
                    sel.unregister(s)
            if time.monotonic() >= next_byte and sent < len(line):
                for s in socks:
                    if s not in closed_after:
                        try:
                            s.send(line[sent:sent + 1])
                        except OSError:
                            pass
                sent += 1
                next_byte += 1
        stop.set()
        t.join()
    finally:
        for s in socks:
            s.close()
    assert len(closed_after) == SLOW_CONNECTIONS, \
        f"{SLOW_CONNECTIONS - len(closed_after)} slow connections still open {timeout + 4:.0f} s later"
    assert max(closed_after.values()) < timeout + 2.5, max(closed_after.values())
    assert not fails, fails[:5]
    assert len(lat) >= 20 and p95(lat) < 0.5, (len(lat), p95(lat))
    print(f"slowloris: {SLOW_CONNECTIONS} connections cut after {min(closed_after.values()):.1f}.."
          f"{max(closed_after.values()):.1f} s; other client: {len(lat)} requests, "
          f"p95 {p95(lat) * 1000:.0f} ms, median {statistics.median(lat) * 1000:.0f} ms")


# ------------------------------------------------------------ connections

def hold(srv, n, src):
    """N keep-alive connections from SRC, each proven accepted by a served
    request."""
    held = []
    for _ in range(n):
        s = connect(srv, src)
        st, _, _ = exchange(s, "/api/health")
        assert st == 200, f"connection {len(held) + 1} of {n} from {src} was not served"
        held.append(s)
    return held


def test_max_connections_per_worker(talas_server, abuselib):
    """http.max_connections: with 20 connections open on the only worker,
    the 21st is closed before any response (from any address), and once one
    is closed a new one is served again.

    Checked without the limit: with http.max_connections at 4096 the 21st
    connection was served and the test failed.
    """
    srv = server(talas_server, abuselib,
                 extra="http:\n  max_connections: 20\n  max_connections_per_ip: 0\n")
    held = hold(srv, 20, ATTACKER)
    try:
        for src in (ATTACKER, CLIENT):
            st, _, _ = get_from(srv, "/api/health", src=src)
            assert st is None, f"a connection past http.max_connections from {src} was served"
        held.pop().close()
        time.sleep(0.2)
        st, _, _ = get_from(srv, "/api/health", src=CLIENT)
        assert st == 200
    finally:
        for s in held:
            s.close()
    assert "connections refused" in tf.read_text(srv.error_log)


def test_max_connections_per_ip(talas_server, abuselib):
    """http.max_connections_per_ip (per worker): with 8 connections open from
    127.0.0.2, a 9th from that address is closed before any response, while
    127.0.0.1 is served; closing one lets 127.0.0.2 in again.

    Checked without the limit: with http.max_connections_per_ip at 0 (off)
    the 9th connection from 127.0.0.2 was served and the test failed.
    """
    srv = server(talas_server, abuselib, extra="http:\n  max_connections_per_ip: 8\n")
    held = hold(srv, 8, ATTACKER)
    try:
        st, _, _ = get_from(srv, "/api/health", src=ATTACKER)
        assert st is None, "a 9th connection from one address was served"
        for _ in range(3):
            st, _, _ = get_from(srv, "/api/health", src=CLIENT)
            assert st == 200
        held.pop().close()
        time.sleep(0.2)
        st, _, _ = get_from(srv, "/api/health", src=ATTACKER)
        assert st == 200
    finally:
        for s in held:
            s.close()


# ------------------------------------------------ HTTP/2 stream churn

def h2_churn(srv, path, batch, interval, duration, src=ATTACKER):
    """Opens one HTTP/2 connection and, every INTERVAL seconds for at most
    DURATION, sends BATCH pairs of HEADERS + RST_STREAM for PATH (the 2023
    "rapid reset" attack). Returns (pairs sent, seconds until the server
    closed the connection or None if it never did)."""
    h2conn = pytest.importorskip("h2.connection", reason="install Debian package python3-h2")
    h2config = pytest.importorskip("h2.config")
    h2events = pytest.importorskip("h2.events")
    h2exc = pytest.importorskip("h2.exceptions")
    import select

    s = connect(srv, src)
    conn = h2conn.H2Connection(h2config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "t")]
    sent = 0
    t0 = time.monotonic()
    closed = None
    try:
        while closed is None and time.monotonic() - t0 < duration:
            for _ in range(batch):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, headers, end_stream=True)
                conn.reset_stream(sid)
                sent += 1
            try:
                s.sendall(conn.data_to_send())
            except OSError:
                closed = time.monotonic() - t0
                break
            wait_until = time.monotonic() + interval
            while closed is None:
                left = wait_until - time.monotonic()
                r, _, _ = select.select([s], [], [], max(0, left))
                if not r:
                    break
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    closed = time.monotonic() - t0
                    break
                try:
                    events = conn.receive_data(data)
                except h2exc.ProtocolError:
                    events = []
                if any(isinstance(e, h2events.ConnectionTerminated) for e in events):
                    closed = time.monotonic() - t0
                try:
                    s.sendall(conn.data_to_send())
                except OSError:
                    # the server shut the connection between our reads
                    closed = time.monotonic() - t0
    finally:
        s.close()
    return sent, closed


def run_with_probe(srv, fn):
    stop = threading.Event()
    lat, fails = [], []
    t = threading.Thread(target=probe, args=(srv, stop, lat, fails))
    t.start()
    try:
        result = fn()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    return result, lat, fails


def test_http2_rapid_reset_stream_flood(talas_server, abuselib):
    """CVE-2023-44487, the stream count alone: one HTTP/2 connection opens
    and cancels /api/tracks streams as fast as python3-h2 can (batches of
    200), with the reset limit off. The server closes it once it opened more
    than http2.max_streams_per_second (1000) in a second, and a client on the
    same (only) worker is served all along.

    Checked without the limit: with http2.max_streams_per_second at 0 (off)
    as well, the attacking connection was still open after 10 s and the
    test failed.
    """
    srv = server(talas_server, abuselib, extra="http2:\n  max_resets_per_second: 0\n")
    pids = srv.worker_pids()
    (sent, closed), lat, fails = run_with_probe(
        srv, lambda: h2_churn(srv, "/api/tracks", batch=200, interval=0, duration=10))
    assert closed is not None, f"the attacking connection was still open after {sent} streams"
    assert closed < 3, closed
    assert not fails, fails[:5]
    assert len(lat) >= 5 and p95(lat) < 0.5, (len(lat), p95(lat))
    assert srv.worker_pids() == pids
    log = tf.read_text(srv.error_log)
    assert "HTTP/2 connection from 127.0.0.2 closed" in log and "streams in a second" in log, log[-2000:]
    print(f"rapid reset (flood): {sent} streams, closed after {closed:.2f} s; other client: "
          f"{len(lat)} requests, p95 {p95(lat) * 1000:.0f} ms, no failure")


def test_http2_rapid_reset_under_stream_limit(talas_server, abuselib):
    """Rapid reset against the defaults, below the stream limit: 300 streams
    a second (under
    http2.max_streams_per_second, 1000), each cancelled at once while the
    server sends a 21 MB file. The server closes the connection once it
    cancelled more than http2.max_resets_per_second (100) in a second. A
    player that cancels 5 streams a second (seeking) on another HTTP/2
    connection keeps it, and a client on the same worker is served.

    Checked without the limit: with http2.max_resets_per_second at 0 (off)
    the attacking connection was still open after 6 s and the test failed.
    """
    srv = server(talas_server, abuselib)
    big = srv.ids["Big WAV"]

    def attack():
        polite = []
        t = threading.Thread(target=lambda: polite.append(
            h2_churn(srv, f"/stream/{big}", batch=1, interval=0.2, duration=4, src=CLIENT)))
        t.start()
        result = h2_churn(srv, f"/stream/{big}", batch=30, interval=0.1, duration=6)
        t.join()
        return result, polite[0]

    ((sent, closed), (psent, pclosed)), lat, fails = run_with_probe(srv, attack)
    assert closed is not None, f"the attacking connection was still open after {sent} cancelled streams"
    assert closed < 3, closed
    assert pclosed is None, f"a player cancelling 5 streams a second was cut off after {pclosed:.1f} s"
    assert psent >= 15
    assert not fails, fails[:5]
    assert len(lat) >= 5 and p95(lat) < 0.5, (len(lat), p95(lat))
    log = tf.read_text(srv.error_log)
    assert "resets in a second" in log, log[-2000:]
    print(f"rapid reset (paced): {sent} streams at 300/s, closed after {closed:.2f} s; player: "
          f"{psent} cancels kept; other client: {len(lat)} requests, p95 {p95(lat) * 1000:.0f} ms")


# -------------------------------------------------------------- WebSocket

def ws_handshake(srv, user):
    s = connect(srv)
    s.sendall((f"GET /api/ws?user_id={user} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    status, headers, rest = read_head(s)
    return s, status, headers, rest


def test_ws_max_connections(talas_server, abuselib):
    """ws.max_connections (per worker): with 3 WebSockets open the 4th
    handshake gets 503 "too_many_connections" with a JSON body, plain HTTP
    is still served, and a closed WebSocket frees its place. (The frame
    size, send queue and command rate limits are tested in test_ws.py:
    test_malformed_input_table and test_slow_reader_is_warned_and_closed.)

    Checked without the limit: with ws.max_connections at 10000 the 4th
    handshake got 101 and the test failed.
    """
    srv = server(talas_server, abuselib, extra="ws:\n  max_connections: 3\n")
    open_ws = []
    try:
        for i in range(3):
            s, status, _, _ = ws_handshake(srv, f"u{i}")
            open_ws.append(s)
            assert status == 101
        s, status, headers, rest = ws_handshake(srv, "u3")
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            rest += s.recv(65536)
        s.close()
        assert status == 503 and error_code(rest) == "too_many_connections"
        assert get_from(srv, "/api/health")[0] == 200
        open_ws.pop().close()
        time.sleep(0.3)
        s, status, _, _ = ws_handshake(srv, "u4")
        open_ws.append(s)
        assert status == 101
    finally:
        for s in open_ws:
            s.close()


# ------------------------------------------------------------- transcodes

def start_transcode(srv, path):
    """Starts a transcode on a connection that reads nothing past the
    headers (a receive buffer of 4 KB): the response stays in progress, and
    holds its slot, until the socket is closed. Returns (socket, status,
    headers, body bytes read)."""
    s = connect(srv, rcvbuf=4096, timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    status, headers, rest = read_head(s, timeout=10)
    return s, status, headers, rest


def read_error(s, headers, rest):
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return json.loads(rest)


def assert_busy(srv, path, key):
    s, status, headers, rest = start_transcode(srv, path)
    try:
        assert status == 503, f"{path}: {status} past {key}"
        assert headers.get("retry-after") == "5"
        assert headers["content-type"].startswith("application/json")
        doc = read_error(s, headers, rest)
        assert doc["error"]["code"] == "transcode_busy" and key in doc["error"]["message"], doc
    finally:
        s.close()


def full_get(srv, path):
    st, hdrs, body = tf.http_request(srv.host, srv.port, "GET", path, timeout=30)
    return st, hdrs, body


def test_transcodes_per_worker(talas_server, abuselib):
    """transcode.max_concurrent_per_worker: with 2 transcodes in progress on
    the only worker, a third transcode, a preview and an HLS segment that
    would be encoded get 503 with Retry-After: 5 and a JSON body, while a
    transcode that is wholly in the cache, and the original files, are
    still served; once a transcode ends, a new one starts.

    Checked without the limit: with transcode.max_concurrent_per_worker at
    100000 the third transcode got 200 and the test failed.
    """
    srv = server(talas_server, abuselib, extra=(
        "transcode:\n  max_concurrent_per_worker: 2\n  max_concurrent: 0\n"))
    ids = srv.ids
    # the short track, wholly encoded and cached before the load
    st, _, cached = full_get(srv, f"/stream/{ids['Short']}?profile=mp3")
    assert st == 200 and len(cached) > 10000
    held = []
    try:
        for i in range(2):
            s, status, _, _ = start_transcode(srv, f"/stream/{ids[f'Long {i}']}?profile=mp3")
            held.append(s)
            assert status == 200
        key = "transcode.max_concurrent_per_worker"
        assert_busy(srv, f"/stream/{ids['Long 2']}?profile=mp3", key)
        assert_busy(srv, f"/stream/{ids['Long 2']}?profile=low", key)
        assert_busy(srv, f"/preview/{ids['Long 3']}", key)
        assert_busy(srv, f"/hls/{ids['Long 3']}/medium/3.m4s", key)
        # what needs no encoder is served
        st, _, body = full_get(srv, f"/stream/{ids['Short']}?profile=mp3")
        assert st == 200 and body == cached
        st, _, _ = full_get(srv, f"/stream/{ids['Long 3']}")
        assert st == 200
        held.pop().close()
        time.sleep(0.5)
        s, status, _, _ = start_transcode(srv, f"/stream/{ids['Long 2']}?profile=mp3")
        held.append(s)
        assert status == 200
    finally:
        for s in held:
            s.close()
    assert "transcodes refused" in tf.read_text(srv.error_log)


def test_transcodes_global_across_workers(talas_server, abuselib):
    """transcode.max_concurrent counts every worker's transcodes (LMDB
    records, one per worker): with 2 workers, 10 slots each and 3 in all,
    once 3 transcodes run every further one gets 503 whichever worker takes
    the connection; when one ends a new one starts.

    Checked without the limit: with transcode.max_concurrent at 0 (off) the
    fourth transcode got 200 and the test failed.
    """
    srv = server(talas_server, abuselib, workers=2, extra=(
        "transcode:\n  max_concurrent_per_worker: 10\n  max_concurrent: 3\n"))
    ids = srv.ids
    held = []
    try:
        for i in range(3):
            s, status, _, _ = start_transcode(srv, f"/stream/{ids[f'Long {i}']}?profile=mp3")
            held.append(s)
            assert status == 200
        # fresh connections land on both workers (SO_REUSEPORT)
        for _ in range(8):
            assert_busy(srv, f"/stream/{ids['Long 3']}?profile=mp3", "transcode.max_concurrent")
        held.pop().close()
        # the slot is free once its worker has seen the close: poll for it
        # (a refusal is immediate and holds nothing)
        deadline = time.monotonic() + 30
        while True:
            s, status, _, _ = start_transcode(srv, f"/stream/{ids['Long 3']}?profile=mp3")
            if status == 200 or time.monotonic() > deadline:
                break
            s.close()
            time.sleep(0.1)
        held.append(s)
        assert status == 200, "the slot of the closed transcode was never given back"
    finally:
        for s in held:
            s.close()


def test_http2_busy_client_is_not_cut_off(talas_server, abuselib):
    """The HTTP/2 limits leave a busy but honest client alone: 300 requests
    in about a second on one connection (a player fetching playlists,
    segments and API answers), each read to its end, none cancelled, are
    all answered and the connection stays open. This guards the reset
    count against counting complete responses.
    """
    h2conn = pytest.importorskip("h2.connection", reason="install Debian package python3-h2")
    h2config = pytest.importorskip("h2.config")
    h2events = pytest.importorskip("h2.events")
    srv = server(talas_server, abuselib)
    short = srv.ids["Short"]
    s = connect(srv)
    conn = h2conn.H2Connection(h2config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    paths = ["/api/health", f"/api/tracks/{short}", f"/stream/{short}"]
    done, statuses, terminated = 0, [], False
    t0 = time.monotonic()
    try:
        for batch in range(10):
            ended = set()
            for i in range(30):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "GET"), (":path", paths[i % 3]), (":scheme", "http"),
                                        (":authority", "t")], end_stream=True)
            s.sendall(conn.data_to_send())
            while len(ended) < 30 and not terminated:
                data = s.recv(1 << 20)
                if not data:
                    terminated = True
                    break
                for e in conn.receive_data(data):
                    if isinstance(e, h2events.ResponseReceived):
                        statuses.append(dict(e.headers)[":status"])
                    elif isinstance(e, h2events.DataReceived):
                        conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2events.StreamEnded):
                        ended.add(e.stream_id)
                    elif isinstance(e, h2events.ConnectionTerminated):
                        terminated = True
                s.sendall(conn.data_to_send())
            done += len(ended)
            if terminated:
                break
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    assert not terminated, f"the connection was closed after {done} complete responses"
    assert done == 300 and statuses.count("200") == 300, (done, set(statuses))
    print(f"busy HTTP/2 client: 300 requests in {elapsed:.2f} s, connection kept")
