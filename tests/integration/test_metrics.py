"""GET /metrics: the node's figures in the Prometheus text format.

A real talas-master with two workers on loopback; real clients (http.client,
python3-websockets) and promtool (Debian's prometheus package) reading the
exposition.  Which worker answers a scrape is up to the kernel: scrapes are
made on a keep-alive connection after /api/health has said which worker
holds it, until both workers have answered, and every one of them must give
the node's sums.
"""

import asyncio
import http.client
import json
import os
import re
import signal

import pytest

import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): float} of an exposition; the TYPE
    of each family in types."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_on(conn):
    """(worker pid, samples) from one keep-alive connection."""
    conn.request("GET", "/api/health")
    r = conn.getresponse()
    pid = json.loads(r.read())["pid"]
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status == 200, body
    assert r.getheader("Content-Type") == CONTENT_TYPE
    return pid, parse(body)[0]


def scrapes_of_every_worker(srv, tries=200):
    """{worker pid: samples}, one scrape answered by each live worker."""
    want = set(srv.worker_pids())
    got = {}
    for _ in range(tries):
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        try:
            pid, samples = scrape_on(conn)
        finally:
            conn.close()
        got.setdefault(pid, samples)
        if want <= set(got):
            return got
    pytest.fail(f"scrapes reached workers {sorted(got)} only, of {sorted(want)}")


def scrape(srv):
    st, h, body = srv.get("/metrics")
    assert st == 200, body
    return parse(body.decode())[0]


def promtool_check(text):
    exe = tf.require_tool("promtool", "prometheus")
    cp = tf.run([exe, "check", "metrics"], input=text, check=False, timeout=30)
    out = (cp.stdout + cp.stderr).strip()
    assert cp.returncode == 0 and out == "", f"promtool check metrics exited {cp.returncode}:\n{out}"


@pytest.fixture
def msrv(talas_server, library_dir):
    srv = talas_server([library_dir], workers=2)
    srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
    return srv


def ws_url(srv, query):
    return f"ws://127.0.0.1:{srv.port}/api/ws?{query}"


def test_promtool_accepts_fresh_and_after_traffic(msrv):
    st, h, body = msrv.get("/metrics")
    assert st == 200
    assert h.get("Content-Type") == CONTENT_TYPE
    promtool_check(body.decode())
    samples, types = parse(body.decode())
    assert value(samples, "talas_workers") == 2
    assert value(samples, "talas_build_info", version=tf.VERSION) == 1
    assert types["talas_http_first_byte_seconds"] == "histogram"

    # a little of everything: files, a transcode, an unknown path, a socket
    tid = msrv.ids["Sine MP3"]
    assert msrv.get(f"/stream/{tid}")[0] == 200
    assert msrv.get(f"/stream/{tid}?profile=mp3")[0] == 200
    assert msrv.get("/no/such/thing")[0] == 404

    async def ws():
        async with websockets.connect(ws_url(msrv, "user_id=prom")) as c:
            await c.send(json.dumps({"command": "Ping", "command_id": "p1"}))
            await asyncio.wait_for(c.recv(), 10)
    asyncio.run(ws())

    st, h, body = msrv.get("/metrics")
    assert st == 200
    promtool_check(body.decode())

    # HEAD: the headers of the GET, no body
    st, h, body = msrv.get("/metrics", method="HEAD")
    assert st == 200 and body == b""
    assert h.get("Content-Type") == CONTENT_TYPE
    assert int(h.get("Content-Length")) > 1000


def test_requests_are_node_figures_whichever_worker_answers(msrv):
    tid = msrv.ids["Sine FLAC"]
    before = scrape(msrv)
    n = 20
    # fresh connections: the kernel spreads them over both workers
    for _ in range(n):
        st, _, _ = tf.http_request(msrv.host, msrv.port, "GET", f"/stream/{tid}")
        assert st == 200
    assert tf.http_request(msrv.host, msrv.port, "GET", "/no/such/thing")[0] == 404
    assert tf.http_request(msrv.host, msrv.port, "GET", "/stream/AAAAAAAAAAAAAAAA")[0] == 404

    key = dict(route="stream", status="2xx")
    for pid, after in scrapes_of_every_worker(msrv).items():
        got = value(after, "talas_http_requests_total", **key) - value(before, "talas_http_requests_total", **key)
        assert got >= n, f"worker {pid} counted {got} of the node's {n} /stream requests"
        assert value(after, "talas_http_requests_total", route="other", status="4xx") >= \
            value(before, "talas_http_requests_total", route="other", status="4xx") + 1
        assert value(after, "talas_http_requests_total", route="stream", status="4xx") >= \
            value(before, "talas_http_requests_total", route="stream", status="4xx") + 1
        # the histogram saw every one of them
        assert value(after, "talas_http_first_byte_seconds_count", route="stream") >= \
            value(before, "talas_http_first_byte_seconds_count", route="stream") + n + 1


def test_transcodes_count_misses_then_hits(msrv):
    tid = msrv.ids["Sine WAV"]
    before = scrape(msrv)
    st, _, cold = msrv.get(f"/stream/{tid}?profile=mp3")
    assert st == 200 and len(cold) > 0
    mid = scrape(msrv)
    assert value(mid, "talas_cache_misses_total") > value(before, "talas_cache_misses_total")
    # a 3 s track: about 3 s of audio encoded, on the encoder's CPU
    encoded = value(mid, "talas_encoded_seconds_total") - value(before, "talas_encoded_seconds_total")
    assert 2.5 <= encoded <= 4.0, encoded
    assert value(mid, "talas_encode_cpu_seconds_total") > value(before, "talas_encode_cpu_seconds_total")
    assert value(mid, "talas_http_requests_total", route="transcode", status="2xx") >= 1
    assert value(mid, "talas_encodes_running") >= 0

    st, _, warm = msrv.get(f"/stream/{tid}?profile=mp3")
    assert st == 200 and warm == cold
    after = scrape(msrv)
    assert value(after, "talas_cache_hits_total") > value(mid, "talas_cache_hits_total")
    assert value(after, "talas_encoded_seconds_total") == value(mid, "talas_encoded_seconds_total")


def test_websocket_gauge_and_events(msrv):
    before = scrape(msrv)
    assert value(before, "talas_ws_connections") == 0

    async def go():
        async with websockets.connect(ws_url(msrv, "user_id=gauge")) as c:
            await c.send(json.dumps({"command": "Ping", "command_id": "g1"}))
            await asyncio.wait_for(c.recv(), 10)
            # a scrape that may land on the other worker: still the node's
            return await asyncio.to_thread(scrapes_of_every_worker, msrv)
    during = asyncio.run(go())
    for pid, samples in during.items():
        assert value(samples, "talas_ws_connections") == 1, f"worker {pid}"
        assert value(samples, "talas_ws_events_in_total") >= value(before, "talas_ws_events_in_total") + 1
        assert value(samples, "talas_ws_events_out_total") >= value(before, "talas_ws_events_out_total") + 1
    after = scrape(msrv)
    # the upgrade is a request of the ws route, answered 101
    assert value(after, "talas_http_requests_total", route="ws", status="1xx") >= \
        value(before, "talas_http_requests_total", route="ws", status="1xx") + 1
    # closed: the server lets go of it once the close handshake is done
    tf.wait_for(lambda: value(scrape(msrv), "talas_ws_connections") == 0, 10,
                what="talas_ws_connections back to 0")


def counters(samples):
    """The samples of counters and histograms: those must never go down."""
    return {k: v for k, v in samples.items()
            if k[0].endswith("_total") or k[0].startswith("talas_http_first_byte_seconds_")}


def test_counters_survive_a_killed_worker(msrv):
    tid = msrv.ids["Sine Vorbis"]
    for _ in range(10):
        assert tf.http_request(msrv.host, msrv.port, "GET", f"/stream/{tid}")[0] == 200
    assert msrv.get(f"/stream/{tid}?profile=mp3")[0] == 200
    assert msrv.get("/nope")[0] == 404
    before = counters(scrape(msrv))
    assert before[("talas_http_requests_total", (("route", "stream"), ("status", "2xx")))] >= 10
    assert before[("talas_encoded_seconds_total", ())] > 0

    # each worker's figures must survive it: kill both in turn
    for pid in msrv.worker_pids():
        os.kill(pid, signal.SIGKILL)
        msrv.wait_worker_pids(2, timeout=30, exclude=[pid])
    tf.wait_for(lambda: value(scrape(msrv), "talas_workers") == 2, 10, what="two workers counting")

    for pid, samples in scrapes_of_every_worker(msrv).items():
        after = counters(samples)
        went_back = {k: (before[k], after.get(k)) for k in before if after.get(k, -1) < before[k]}
        assert not went_back, f"counters went backwards after kill -9 (scrape by {pid}): {went_back}"


def test_allow_list_refuses_other_clients(talas_server, library_dir):
    srv = talas_server([library_dir], workers=1, wait_scan=False,
                       extra_yaml="metrics:\n  allow: [10.0.0.0/8, 'fd00::/8']\n")
    st, h, body = srv.get("/metrics")
    assert st == 403, body
    assert h.get("Content-Type").startswith("application/json")
    err = json.loads(body)["error"]
    assert err["code"] == "forbidden"
    assert "metrics.allow" in err["message"]
    # everything else still answers
    assert srv.get("/api/health")[0] == 200


def test_disabled_is_an_unknown_path(talas_server, library_dir):
    srv = talas_server([library_dir], workers=1, wait_scan=False, extra_yaml="metrics:\n  enabled: false\n")
    st, h, body = srv.get("/metrics")
    assert st == 404
    assert json.loads(body)["error"]["code"] == "not_found"


def test_bad_allow_entry_names_file_line_and_key(tmp_path, library_dir):
    srv = tf.TalasServer(tmp_path, [library_dir], extra_yaml="metrics:\n  allow: [127.0.0.1, 10.0.0.0/33]\n")
    cp = tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)
    assert cp.returncode == 1
    assert re.search(r"talas\.yaml:\d+:\d+: metrics\.allow(\[1\])?: must be an address or a network",
                     cp.stderr), cp.stderr


def test_reload_keeps_the_counters(msrv):
    tid = msrv.ids["Sine MP3"]
    for _ in range(5):
        assert tf.http_request(msrv.host, msrv.port, "GET", f"/stream/{tid}")[0] == 200
    before = counters(scrape(msrv))
    gen = msrv.health()["generation"]
    old = msrv.worker_pids()
    msrv.reload()
    tf.wait_for(lambda: msrv.health()["generation"] != gen, 20, what="the new generation serving")
    # the old generation retires: its slots are freed, its counts stay
    tf.wait_for(lambda: not set(old) & set(msrv.worker_pids()), 20, what="the old workers gone")
    tf.wait_for(lambda: value(scrape(msrv), "talas_workers") == 2, 10, what="two workers counting")
    for pid, samples in scrapes_of_every_worker(msrv).items():
        after = counters(samples)
        went_back = {k: (before[k], after.get(k)) for k in before if after.get(k, -1) < before[k]}
        assert not went_back, f"counters went backwards over a reload (scrape by {pid}): {went_back}"
