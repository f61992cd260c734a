"""Streaming sessions in cluster mode: two nodes sharing one Redis.

As in test_cluster.py, every test starts a real redis-server and two
talas-master nodes, A and B (two workers each), over the same generated
library, with a real PostgreSQL database as cluster.postgres. Sessions
live in Redis then (workers/state/state_sessions_redis.c), so a player may
talk to either node:

- a session made on A is read, reported on and changed on B, seen so on A,
  ended on B and gone on A;
- the bounds hold across nodes: creations alternating between A and B stop
  at streaming.max_sessions_per_user (429 naming the key), listeners stop
  at max_sessions minus the backend's reserve, and the backend still gets
  the reserve;
- with Redis down, creating a session answers 503 store_unavailable while
  /stream still serves the track's bytes;
- the web player, through Debian's nginx balancing A and B round robin,
  plays HLS in headless Chromium, and its metrics reach its session, read
  back through both nodes, with requests served by both.
"""

import http.client
import json
import os
import secrets
import shutil
import subprocess

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

BACKEND_KEY = secrets.token_urlsafe(32)
STREAMING = ("streaming:\n  max_sessions: 8\n  max_sessions_per_user: 3\n"
             "  max_sessions_per_address: 100\n  backend_reserved_sessions: 2\n")


@pytest.fixture(scope="module")
def slib(tmp_path_factory):
    d = tmp_path_factory.mktemp("clustersessions")
    tf.make_track(d / "a.mp3", "Shared Song", artist="Cluster Artist", seconds=5, freq=330)
    return d


@pytest.fixture
def nodes(talas_server, slib, redis_server, pg_database):
    return cf.two_nodes(talas_server, slib, redis_server, pg_database, BACKEND_KEY, STREAMING)


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def backend(**extra):
    return {"Authorization": f"Bearer {BACKEND_KEY}", **extra}


def create(srv, track, headers=None, **extra):
    return request(srv, "POST", "/api/streaming/session", dict({"track_id": track}, **extra), headers)


def test_session_made_on_a_is_read_changed_and_ended_on_b(nodes):
    a, b = nodes
    track = a.ids["Shared Song"]
    st, doc = create(a, track, backend(), client_id="alice",
                     client_capabilities={"estimated_bandwidth_kbps": 5000, "connection_type": "Wifi"})
    assert st == 200, doc
    sid = doc["session_id"]
    first = doc["initial_profile"]["quality_id"]

    st, s = request(b, "GET", f"/api/streaming/session/{sid}")
    assert st == 200, s
    assert (s["session_id"], s["track_id"], s["client_id"]) == (sid, track, "alice")
    assert s["current_quality"] == first and s["performance_metrics"]["reports"] == 0

    # B takes a metrics report and a quality change
    st, m = request(b, "POST", f"/api/streaming/session/{sid}/metrics",
                    {"buffer_health_percentage": 42.5, "download_speed_kbps": 1234, "latency_ms": 77})
    assert st == 200 and m["session_id"] == sid, m
    other = "mobile" if first != "mobile" else "high"
    st, q = request(b, "PUT", f"/api/streaming/session/{sid}/quality", {"quality": other})
    assert st == 200 and q["current_quality"] == other, q

    # A reads what B stored
    st, s = request(a, "GET", f"/api/streaming/session/{sid}")
    assert st == 200, s
    pm = s["performance_metrics"]
    assert (pm["reports"], pm["latency_ms"], pm["download_speed_kbps"], pm["buffer_health_percentage"]) == \
        (1, 77, 1234, 42.5), pm
    assert s["current_quality"] == other and pm["quality_switches"] >= 1, s
    # the statistics, from either node, are the cluster's
    for srv in (a, b):
        stats = srv.get_json("/api/streaming/stats")
        assert stats["active_sessions"] == 1 and stats["totals"]["sessions_created"] == 1, stats

    # B ends it; A no longer has it
    st, _ = request(b, "DELETE", f"/api/streaming/session/{sid}")
    assert st == 204
    st, e = request(a, "GET", f"/api/streaming/session/{sid}")
    assert st == 404 and e["error"]["code"] == "not_found", e
    st, _ = request(a, "DELETE", f"/api/streaming/session/{sid}")
    assert st == 404
    stats = a.get_json("/api/streaming/stats")
    assert stats["active_sessions"] == 0 and stats["totals"]["sessions_ended"] == 1, stats


def test_bounds_hold_across_nodes(nodes):
    a, b = nodes
    track = a.ids["Shared Song"]
    alternate = [a, b] * 10
    # one user: three sessions, made on A, B, A; the fourth (on B) is refused
    for i in range(3):
        st, doc = create(alternate[i], track, backend(), client_id="carol")
        assert st == 200, (i, st, doc)
    for srv in (b, a):
        st, doc = create(srv, track, backend(), client_id="carol")
        assert st == 429, (st, doc)
        err = doc["error"]
        assert (err["code"], err["limit"], err["max"]) == \
            ("quota_exceeded", "streaming.max_sessions_per_user", 3), doc
    # listeners (no user: their address) take what is left of 8 - 2 = 6
    for i in range(3):
        st, doc = create(alternate[i + 1], track)
        assert st == 200, (i, st, doc)
    for srv in (a, b):
        st, doc = create(srv, track)
        assert st == 503 and doc["error"]["code"] == "too_many_sessions", (st, doc)
        assert "streaming.backend_reserved_sessions" in doc["error"]["message"], doc
    # the backend still gets the two reserved, one on each node, then no more
    for srv in (a, b):
        st, doc = create(srv, track, backend())
        assert st == 200, (st, doc)
    st, doc = create(a, track, backend())
    assert st == 503 and doc["error"]["code"] == "too_many_sessions", (st, doc)
    assert "backend_reserved" not in doc["error"]["message"], doc
    for srv in (a, b):
        assert srv.get_json("/api/streaming/stats")["active_sessions"] == 8


def test_redis_down_refuses_sessions_but_streams(nodes, redis_server, slib):
    a, b = nodes
    track = a.ids["Shared Song"]
    st, doc = create(a, track)
    assert st == 200, doc
    redis_server.kill()
    tf.wait_for(lambda: cf.all_workers_say(a, "degraded"), 10, what="node-a degraded on every worker")
    # every worker: several requests, new connections each
    for _ in range(4):
        st, doc = create(a, track)
        assert st == 503 and doc["error"]["code"] == "store_unavailable", (st, doc)
    st, _, body = a.get(f"/stream/{track}", timeout=30)
    assert st == 200 and body == (slib / "a.mp3").read_bytes()


# ---------------------------------------------------------------- browser

NGINX_LB = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream talas {{
        server 127.0.0.1:{a};
        server 127.0.0.1:{b};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://talas;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


class NginxBalancer(tf.NginxServer):
    """Debian's nginx on 127.0.0.1:PORT, round robin over the nodes."""

    def __init__(self, workdir, nodes, port):
        super().__init__(workdir, workdir, port=port)
        self.conf.write_text(NGINX_LB.format(dir=self.dir, port=self.port, a=nodes[0].port, b=nodes[1].port))


def requests_served(srv):
    return len(tf.read_text(srv.access_log, limit=1 << 24).splitlines())


@pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1", reason="TALAS_SKIP_BROWSER=1")
def test_web_player_through_a_round_robin_balancer(talas_server, tmp_path, redis_server, pg_database,
                                                   tmp_path_factory):
    from test_browser import BROWSER_DIR, CHROMIUM, _node_modules
    from test_web_player import web_dist

    nm = _node_modules()
    if nm is None:
        pytest.fail(f"playwright-core is not in {BROWSER_DIR}/node_modules (run `npm ci` there)")
    player_dir = BROWSER_DIR
    if nm != BROWSER_DIR / "node_modules":
        # lbplayer.mjs (and driver.mjs, which it imports) resolves
        # playwright-core from its own folder: a copy next to the
        # node_modules found elsewhere (the sanitizer tree's)
        player_dir = tmp_path_factory.mktemp("lbbrowser")
        for script in ("lbplayer.mjs", "driver.mjs"):
            shutil.copy(BROWSER_DIR / script, player_dir / script)
        (player_dir / "package.json").write_text('{"type": "module"}\n')
        (player_dir / "node_modules").symlink_to(nm)
    lib = tmp_path_factory.mktemp("lblib")
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "sine=frequency=523:duration=40",
            "-f", "lavfi", "-i", "anoisesrc=d=40:c=pink:a=0.1:r=44100",
            "-filter_complex", "amix=inputs=2", "-ac", "2", "-c:a", "flac",
            "-metadata", "title=Balanced Song", str(lib / "balanced.flac")], timeout=120)
    port = tf.free_port()
    # the URLs a node hands out (master playlists) name the balancer
    extra = (f"http:\n  www_root: {json.dumps(str(web_dist()))}\n"
             f"  public_url: \"http://127.0.0.1:{port}\"\n")
    a, b = cf.two_nodes(talas_server, lib, redis_server, pg_database, BACKEND_KEY, STREAMING + extra)
    lb = NginxBalancer(tmp_path / "nginx", (a, b), port).start()
    served = [requests_served(a), requests_served(b)]
    try:
        out = tf.BUILDDIR / "tests" / "artifacts" / "cluster-lb"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        script = player_dir / "lbplayer.mjs"
        cp = subprocess.run(["node", str(script), f"http://127.0.0.1:{port}", str(out), "Balanced Song"],
                            capture_output=True, text=True, timeout=180, cwd=str(player_dir),
                            env=dict(os.environ, CHROMIUM=CHROMIUM))
        # what the player asked each node, before this test asks anything
        served = [requests_served(a) - served[0], requests_served(b) - served[1]]
        (out / "lbplayer.json").write_text(cp.stdout)
        (out / "lbplayer.stderr").write_text(cp.stderr)
        try:
            s = json.loads(cp.stdout)
        except ValueError:
            pytest.fail(f"lbplayer.mjs exited {cp.returncode} without a JSON summary\n"
                        f"stdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}")
        assert cp.returncode == 0 and s["ok"], (s.get("failure"), json.dumps(s)[:4000], cp.stderr[-2000:])
        assert s["played_s"] > 1.5 and s["source"].startswith("HLS") and s["segments"] >= 1, s
        sid = s["session_id"]
        # the player's reports reached its session: either node reads them
        docs = []
        for srv in (a, b):
            st, doc = request(srv, "GET", f"/api/streaming/session/{sid}")
            assert st == 200, (srv.workdir.name, st, doc)
            docs.append(doc)
        assert all(d["performance_metrics"]["reports"] >= 1 for d in docs), docs
        assert docs[0]["performance_metrics"]["reports"] <= docs[1]["performance_metrics"]["reports"]
        assert docs[0]["track_id"] == a.ids["Balanced Song"], docs[0]
        # both nodes served the player's requests
        assert served[0] > 0 and served[1] > 0, served
    finally:
        lb.stop()
