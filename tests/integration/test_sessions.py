"""Streaming sessions (/api/streaming/...) against a real talas-master.

What a player and its operator would check: creating a session picks an
initial profile from the client's capabilities and hands out the HLS and
progressive URLs; the session can be read, its quality changed, metrics
reported (with a recommendation that switches down fast and up slowly),
and ended; bad bodies get a 400 naming the field; idle sessions expire;
the live ones are capped; the statistics count all of it; a session made
on one worker is seen by the other; with auth.required only the backend
or a listener holding a token for the track may create one; and no client
can take every slot: one user, or one address without a user, is bounded,
and the last slots are kept for the backend.
"""

import base64
import http.client
import json
import re
import time

import pytest

import auth_keys as ak
import talas_fixtures as tf

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")


@pytest.fixture(scope="module")
def slib(tmp_path_factory):
    d = tmp_path_factory.mktemp("sessionlib")
    tf.make_track(d / "a.mp3", "Session A", seconds=3, freq=300)
    tf.make_track(d / "b.mp3", "Session B", seconds=3, freq=500)
    # long enough that its tokens outlive auth.default_ttl
    tf.make_track(d / "long.mp3", "Session Long", seconds=400, freq=200)
    return d


def track_ids(srv):
    return {t["title"]: t["id"] for t in srv.tracks()}


@pytest.fixture(scope="module")
def ssrv(tmp_path_factory, slib):
    srv = tf.TalasServer(tmp_path_factory.mktemp("sessions"), [slib], workers=2)
    srv.start(wait_scan=True)
    try:
        srv.ids = track_ids(srv)
        yield srv
    finally:
        srv.kill()


def request(srv, method, path, body=None, headers=None, conn=None):
    """(status, parsed JSON or None, headers); BODY: a dict (sent as JSON)
    or bytes as they are."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    if conn is not None:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        status, hdrs, data = resp.status, resp.headers, resp.read()
    else:
        status, hdrs, data = srv.get(path, method=method, body=body, headers=h)
    return status, (json.loads(data) if data else None), hdrs


def create(srv, track, caps=None, expect=200, headers=None, **extra):
    body = {"track_id": track}
    if caps is not None:
        body["client_capabilities"] = caps
    body.update(extra)
    st, doc, _ = request(srv, "POST", "/api/streaming/session", body, headers=headers)
    assert st == expect, (st, doc)
    return doc


def caps(bw=1000, buf=5000, conn="Wifi", dev="Desktop", pref=None, adaptive=True):
    return {"estimated_bandwidth_kbps": bw, "buffer_duration_ms": buf, "connection_type": conn,
            "device_type": dev, "preferred_quality": pref, "adaptive_enabled": adaptive}


def metrics(srv, sid, buffer=90.0, speed=800, rebuffers=0, **extra):
    body = {"buffer_health_percentage": buffer, "download_speed_kbps": speed,
            "packet_loss_percentage": 0.0, "latency_ms": 40, "rebuffer_count": rebuffers,
            "rebuffer_duration_ms": 0}
    body.update(extra)
    st, doc, _ = request(srv, "POST", f"/api/streaming/session/{sid}/metrics", body)
    assert st == 200, (st, doc)
    return doc


def stats(srv):
    st, doc, _ = request(srv, "GET", "/api/streaming/stats")
    assert st == 200, (st, doc)
    return doc


# ---------------------------------------------------------------- lifecycle

def test_lifecycle(ssrv):
    track = ssrv.ids["Session A"]
    doc = create(ssrv, track, caps(bw=150, conn="Cellular3G", dev="Mobile"))
    sid = doc["session_id"]
    assert SESSION_ID_RE.match(sid), sid
    # the seed's example: 150 kbit/s on 3G gets the mobile profile
    assert doc["initial_profile"] == {
        "quality_id": "mobile", "bitrate_kbps": 96, "sample_rate": 22050, "channels": 2,
        "codec": "aac", "file_extension": "aac", "bandwidth_estimate_kbps": 120, "hls": True}
    assert doc["master_playlist"] == f"{ssrv.base_url}/hls/{track}/master.m3u8"
    assert doc["stream_url"] == f"{ssrv.base_url}/stream/{track}?profile=mobile"
    # the stream URL plays
    st, hdrs, body = ssrv.get(doc["stream_url"][len(ssrv.base_url):], timeout=30)
    assert st == 200 and hdrs["Content-Type"] == "audio/aac" and len(body) > 1000

    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}")
    assert st == 200
    assert s["session_id"] == sid and s["track_id"] == track
    assert s["current_quality"] == "mobile"
    assert s["client_capabilities"] == {
        "estimated_bandwidth_kbps": 150, "buffer_duration_ms": 5000, "connection_type": "Cellular3G",
        "device_type": "Mobile", "preferred_quality": None, "adaptive_enabled": True}
    assert set(s["performance_metrics"]) >= {
        "buffer_health_percentage", "download_speed_kbps", "packet_loss_percentage", "latency_ms",
        "rebuffer_count", "rebuffer_duration_ms", "quality_switches"}
    for k in ("created_at", "last_updated", "expires_at"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", s[k]), s[k]

    st, s, _ = request(ssrv, "PUT", f"/api/streaming/session/{sid}/quality", {"quality": "medium"})
    assert st == 200 and s["current_quality"] == "medium"
    assert s["performance_metrics"]["quality_switches"] == 1
    # the same quality again is not a switch
    st, s, _ = request(ssrv, "PUT", f"/api/streaming/session/{sid}/quality", {"quality": "medium"})
    assert s["performance_metrics"]["quality_switches"] == 1

    r = metrics(ssrv, sid, buffer=88.5, speed=900, rebuffers=0, latency_ms=33)
    assert r["switch"] == "none" and r["recommended_quality"] == "medium"
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}")
    m = s["performance_metrics"]
    assert m["buffer_health_percentage"] == 88.5 and m["download_speed_kbps"] == 900
    assert m["latency_ms"] == 33

    st, body, _ = request(ssrv, "DELETE", f"/api/streaming/session/{sid}")
    assert st == 204 and body is None
    for method, path, b in (("GET", "", None), ("DELETE", "", None),
                            ("PUT", "/quality", {"quality": "high"}),
                            ("POST", "/metrics", {"buffer_health_percentage": 1, "download_speed_kbps": 1})):
        st, doc, hdrs = request(ssrv, method, f"/api/streaming/session/{sid}{path}", b)
        assert st == 404, (method, path, st)
        assert doc["error"]["code"] == "not_found"
        assert hdrs["Content-Type"] == "application/json; charset=utf-8"


INITIAL = [
    # capabilities -> initial quality (the table of tests/unit/test_adaptive.c, through HTTP)
    (caps(bw=1000), "high"),
    (caps(bw=399), "medium"),
    (caps(bw=5000, conn="Cellular2G", dev="Mobile"), "mobile"),
    (caps(bw=5000, conn="cellular3g", dev="mobile"), "medium"),
    (caps(bw=1000, dev="SmartSpeaker"), "medium"),
    (caps(bw=300, dev="CarAudio", adaptive=False), "low"),
    (caps(bw=245, adaptive=False), "mp3"),
    (caps(bw=1000, pref="low"), "low"),
    (caps(bw=1000, pref="nosuch"), "high"),
    ({}, "medium"),
    (None, "medium"),
]


@pytest.mark.parametrize("c,expect", INITIAL)
def test_initial_profile(ssrv, c, expect):
    doc = create(ssrv, ssrv.ids["Session B"], c)
    assert doc["initial_profile"]["quality_id"] == expect
    assert doc["stream_url"].endswith(f"?profile={expect}")


def test_monitor_hysteresis(ssrv):
    sid = create(ssrv, ssrv.ids["Session A"], caps(bw=300))["session_id"]  # medium
    # one healthy report, then a mediocre one, then two healthy: still medium
    assert metrics(ssrv, sid, buffer=95, speed=900)["switch"] == "none"
    assert metrics(ssrv, sid, buffer=60, speed=900)["switch"] == "none"
    assert metrics(ssrv, sid, buffer=95, speed=900)["switch"] == "none"
    assert metrics(ssrv, sid, buffer=95, speed=900)["switch"] == "none"
    r = metrics(ssrv, sid, buffer=95, speed=900)
    assert (r["switch"], r["recommended_quality"], r["current_quality"]) == ("up", "high", "high")
    assert r["stream_url"].endswith("?profile=high")
    # a single dip below the rung's need is watched, not acted on
    assert metrics(ssrv, sid, buffer=70, speed=300)["switch"] == "none"
    assert metrics(ssrv, sid, buffer=70, speed=900)["switch"] == "none"
    # a rebuffer goes down at once, to what the speed carries
    r = metrics(ssrv, sid, buffer=50, speed=130, rebuffers=1)
    assert (r["switch"], r["recommended_quality"], r["reason"]) == ("down", "mobile", "rebuffering")
    assert r["quality_switches"] == 2
    # the same total again is no new rebuffer
    assert metrics(ssrv, sid, buffer=50, speed=130, rebuffers=1)["switch"] == "none"
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}")
    assert s["current_quality"] == "mobile"
    assert s["performance_metrics"]["quality_switches"] == 2
    assert s["performance_metrics"]["rebuffer_count"] == 1


def test_non_adaptive_session_keeps_its_quality(ssrv):
    sid = create(ssrv, ssrv.ids["Session A"], caps(bw=1000, adaptive=False))["session_id"]
    r = metrics(ssrv, sid, buffer=3, speed=50, rebuffers=4)
    assert (r["switch"], r["recommended_quality"], r["reason"]) == ("none", "high", "adaptive_disabled")


# ------------------------------------------------------------------ bad input

def _track(ssrv):
    return ssrv.ids["Session A"]


BAD_CREATE = [
    # body (T: the track id), field named in the error
    ({"client_capabilities": {}}, "track_id"),
    ({"track_id": 42}, "track_id"),
    ({"track_id": "not-an-id"}, "track_id"),
    ({"track_id": "T", "client_capabilities": "fast"}, "client_capabilities"),
    ({"track_id": "T", "client_capabilities": {"connection_type": "5G"}}, "client_capabilities.connection_type"),
    ({"track_id": "T", "client_capabilities": {"connection_type": 4}}, "client_capabilities.connection_type"),
    ({"track_id": "T", "client_capabilities": {"device_type": "Fridge"}}, "client_capabilities.device_type"),
    ({"track_id": "T", "client_capabilities": {"estimated_bandwidth_kbps": "fast"}},
     "client_capabilities.estimated_bandwidth_kbps"),
    ({"track_id": "T", "client_capabilities": {"estimated_bandwidth_kbps": -1}},
     "client_capabilities.estimated_bandwidth_kbps"),
    ({"track_id": "T", "client_capabilities": {"buffer_duration_ms": True}}, "client_capabilities.buffer_duration_ms"),
    ({"track_id": "T", "client_capabilities": {"adaptive_enabled": "yes"}}, "client_capabilities.adaptive_enabled"),
    ({"track_id": "T", "client_capabilities": {"preferred_quality": 3}}, "client_capabilities.preferred_quality"),
    ({"track_id": "T", "client_capabilities": {"preferred_quality": "HIGH quality"}},
     "client_capabilities.preferred_quality"),
    ({"track_id": "T", "client_capabilities": {"turbo": True}}, "client_capabilities.turbo"),
    ({"track_id": "T", "client_id": ""}, "client_id"),
    ({"track_id": "T", "speed": 1}, "speed"),
]


@pytest.mark.parametrize("body,field", BAD_CREATE)
def test_create_bad_fields(ssrv, body, field):
    body = json.loads(json.dumps(body).replace('"T"', json.dumps(_track(ssrv))))
    before = stats(ssrv)["totals"]["sessions_created"]
    st, doc, hdrs = request(ssrv, "POST", "/api/streaming/session", body)
    assert st == 400, (st, doc)
    assert doc["error"]["code"] == "invalid_parameter"
    assert doc["error"]["field"] == field
    assert doc["error"]["message"].startswith(field + ":")
    assert stats(ssrv)["totals"]["sessions_created"] == before


@pytest.mark.parametrize("raw", [b"", b"nope", b"[1]", b'{"track_id": "x"', b'{"a": {"b": {}}}',
                                 b'{"client_id": "a", "client_id": "b"}'])
def test_create_not_json(ssrv, raw):
    st, doc, _ = request(ssrv, "POST", "/api/streaming/session", raw)
    assert st == 400 and doc["error"]["code"] == "invalid_json", (st, doc)


def test_create_other_refusals(ssrv):
    st, doc, _ = request(ssrv, "POST", "/api/streaming/session", {"track_id": "0000000000000000"})
    assert st == 404 and doc["error"]["code"] == "not_found"
    big = {"track_id": _track(ssrv), "client_id": "x" * 20000}
    st, doc, _ = request(ssrv, "POST", "/api/streaming/session", big)
    assert st == 413 and doc["error"]["code"] == "body_too_large"
    st, doc, hdrs = request(ssrv, "GET", "/api/streaming/session")
    assert st == 405 and hdrs["Allow"] == "POST"


BAD_METRICS = [
    ({"download_speed_kbps": 100}, "buffer_health_percentage"),
    ({"buffer_health_percentage": 50}, "download_speed_kbps"),
    ({"buffer_health_percentage": 101, "download_speed_kbps": 100}, "buffer_health_percentage"),
    ({"buffer_health_percentage": "full", "download_speed_kbps": 100}, "buffer_health_percentage"),
    ({"buffer_health_percentage": 50, "download_speed_kbps": -5}, "download_speed_kbps"),
    ({"buffer_health_percentage": 50, "download_speed_kbps": 1, "packet_loss_percentage": 200},
     "packet_loss_percentage"),
    ({"buffer_health_percentage": 50, "download_speed_kbps": 1, "rebuffer_count": 1.5}, "rebuffer_count"),
    ({"buffer_health_percentage": 50, "download_speed_kbps": 1, "latency_ms": None}, "latency_ms"),
    ({"buffer_health_percentage": 50, "download_speed_kbps": 1, "jitter": 3}, "jitter"),
]


@pytest.mark.parametrize("body,field", BAD_METRICS)
def test_metrics_bad_fields(ssrv, body, field):
    sid = create(ssrv, _track(ssrv), caps())["session_id"]
    st, doc, _ = request(ssrv, "POST", f"/api/streaming/session/{sid}/metrics", body)
    assert st == 400, (st, doc)
    assert doc["error"]["field"] == field
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}")
    assert s["performance_metrics"]["reports"] == 0


def test_quality_and_routes_refusals(ssrv):
    sid = create(ssrv, _track(ssrv), caps())["session_id"]
    for body, field in (({"quality": "ultra"}, "quality"), ({"quality": 3}, "quality"), ({}, "quality"),
                        ({"quality": "high", "x": 1}, "x")):
        st, doc, _ = request(ssrv, "PUT", f"/api/streaming/session/{sid}/quality", body)
        assert st == 400 and doc["error"]["field"] == field, (body, st, doc)
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}")
    assert s["current_quality"] == "high" and s["performance_metrics"]["quality_switches"] == 0
    st, doc, hdrs = request(ssrv, "POST", f"/api/streaming/session/{sid}/quality", {"quality": "low"})
    assert st == 405 and hdrs["Allow"] == "PUT"
    st, doc, hdrs = request(ssrv, "PATCH", f"/api/streaming/session/{sid}")
    assert st == 405
    for path in ("/api/streaming/session/short", "/api/streaming/session/" + "A" * 22,
                 f"/api/streaming/session/{sid}/other", "/api/streaming/session/" + "%2e" * 22):
        st, doc, _ = request(ssrv, "GET", path)
        assert st == 404 and doc["error"]["code"] == "not_found", path


# ---------------------------------------------------------------- statistics

def test_stats_counts(ssrv):
    before = stats(ssrv)
    track = _track(ssrv)
    a = create(ssrv, track, caps(bw=1000))["session_id"]  # high
    b = create(ssrv, track, caps(bw=130))["session_id"]   # mobile
    c = create(ssrv, track, caps(bw=300))["session_id"]   # medium
    metrics(ssrv, a, buffer=80, speed=2000)
    metrics(ssrv, b, buffer=40, speed=200, rebuffers=2)  # down is impossible: mobile is the lowest
    metrics(ssrv, c, buffer=20, speed=0)                   # medium -> mobile
    request(ssrv, "DELETE", f"/api/streaming/session/{a}")
    after = stats(ssrv)
    t0, t1 = before["totals"], after["totals"]
    assert t1["sessions_created"] - t0["sessions_created"] == 3
    assert t1["sessions_ended"] - t0["sessions_ended"] == 1
    assert t1["quality_switches"] - t0["quality_switches"] == 1
    assert t1["rebuffers"] - t0["rebuffers"] == 2
    assert after["active_sessions"] - before["active_sessions"] == 2
    per0, per1 = before["sessions_per_quality"], after["sessions_per_quality"]
    assert per1["mobile"] - per0["mobile"] == 2
    assert per1["high"] == per0["high"] and per1["medium"] == per0["medium"]
    assert sum(per1.values()) == after["active_sessions"]
    assert after["rebuffer_count"] - before["rebuffer_count"] == 2
    assert after["quality_switches"] - before["quality_switches"] == 1
    assert after["reporting_sessions"] - before["reporting_sessions"] == 2
    assert 0 <= after["average_buffer_health_percentage"] <= 100
    assert after["max_sessions"] == 10000


# ------------------------------------------------------------ across workers

def health_pid(conn):
    conn.request("GET", "/api/health")
    resp = conn.getresponse()
    return json.loads(resp.read())["pid"]


def test_session_seen_by_the_other_worker(ssrv):
    pids = ssrv.worker_pids()
    assert len(pids) == 2
    first = http.client.HTTPConnection(ssrv.host, ssrv.port, timeout=10)
    pid1 = health_pid(first)
    st, doc, _ = request(ssrv, "POST", "/api/streaming/session",
                         {"track_id": _track(ssrv), "client_capabilities": caps(bw=300)}, conn=first)
    assert st == 200
    sid = doc["session_id"]
    assert health_pid(first) == pid1  # the same connection, the same worker
    other = None
    for _ in range(200):
        c = http.client.HTTPConnection(ssrv.host, ssrv.port, timeout=10)
        if health_pid(c) != pid1:
            other = c
            break
        c.close()
    assert other is not None, "no connection reached the second worker"
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}", conn=other)
    assert st == 200 and s["current_quality"] == "medium"
    # a change made on the other worker is seen by the first
    st, s, _ = request(ssrv, "PUT", f"/api/streaming/session/{sid}/quality", {"quality": "mobile"}, conn=other)
    assert st == 200
    st, s, _ = request(ssrv, "GET", f"/api/streaming/session/{sid}", conn=first)
    assert s["current_quality"] == "mobile"
    assert health_pid(first) == pid1 and health_pid(other) != pid1
    first.close()
    other.close()


# ------------------------------------------------------- expiry and the cap

def test_expiry_and_cap(talas_server, slib):
    srv = talas_server([slib], workers=2, extra_yaml=(
        "streaming:\n  session_timeout: 1s\n  max_sessions: 2\n"
        "http:\n  public_url: \"https://cdn.example/radio\"\n"))
    track = track_ids(srv)["Session A"]
    a = create(srv, track, caps())
    assert a["master_playlist"] == f"https://cdn.example/radio/hls/{track}/master.m3u8"
    assert a["stream_url"] == f"https://cdn.example/radio/stream/{track}?profile=high"
    b = create(srv, track, caps())
    st, doc, _ = request(srv, "POST", "/api/streaming/session", {"track_id": track})
    assert st == 503 and doc["error"]["code"] == "too_many_sessions"
    # reports keep a session alive beyond the timeout
    for _ in range(4):
        time.sleep(0.4)
        metrics(srv, a["session_id"])
    st, _, _ = request(srv, "GET", f"/api/streaming/session/{a['session_id']}")
    assert st == 200
    st, _, _ = request(srv, "GET", f"/api/streaming/session/{b['session_id']}")
    assert st == 404  # idle for more than a second
    time.sleep(1.2)
    st, _, _ = request(srv, "GET", f"/api/streaming/session/{a['session_id']}")
    assert st == 404
    st, _, _ = request(srv, "POST", f"/api/streaming/session/{a['session_id']}/metrics",
                       {"buffer_health_percentage": 90, "download_speed_kbps": 900})
    assert st == 404
    # counted as expired (by the request above or the workers' sweep), and
    # the room they took is free again
    s = tf.wait_for(lambda: (lambda d: d if d["totals"]["sessions_expired"] == 2 else None)(stats(srv)), 5,
                    what="two expired sessions in the stats")
    assert s["active_sessions"] == 0 and s["totals"]["sessions_created"] == 2
    assert s["totals"]["sessions_ended"] == 0
    create(srv, track, caps())
    create(srv, track, caps())


# --------------------------------------------------------------------- auth

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("sessionkeys"))


@pytest.fixture(scope="module")
def asrv(tmp_path_factory, keys, slib):
    srv = tf.TalasServer(tmp_path_factory.mktemp("sessionauth"), [slib], workers=2)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    srv.start(wait_scan=True)
    try:
        backend = {"Authorization": f"Bearer {keys.backend_key}"}
        st, _, body = srv.get("/api/tracks?limit=100", headers=backend)
        assert st == 200, body
        srv.ids = {t["title"]: t["id"] for t in json.loads(body)["tracks"]}
        yield srv
    finally:
        srv.kill()


def token_claims(url):
    token = re.search(r"[?&]token=([^&]+)", url).group(1)
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def listener_token(keys, track, **kw):
    return ak.pyjwt_token(keys, "HS256", ak.claims(track, **kw), kid="k2")


def test_auth_required(asrv, keys):
    a, b = asrv.ids["Session A"], asrv.ids["Session B"]
    body = {"track_id": a, "client_capabilities": caps()}
    # no credentials: 401, before the body is even looked at
    for raw in (body, b"not json"):
        st, doc, hdrs = request(asrv, "POST", "/api/streaming/session", raw)
        assert st == 401, (st, doc)
        assert hdrs["WWW-Authenticate"].startswith("Bearer")
    # the backend key
    st, doc, _ = request(asrv, "POST", "/api/streaming/session", dict(body, client_id="user-7"),
                         headers={"Authorization": f"Bearer {keys.backend_key}"})
    assert st == 200, doc
    hls, stream = token_claims(doc["master_playlist"]), token_claims(doc["stream_url"])
    assert doc["master_playlist"].startswith(f"{asrv.base_url}/hls/{a}/master.m3u8?token=")
    assert doc["stream_url"].startswith(f"{asrv.base_url}/stream/{a}?profile=high&token=")
    assert (hls["track"], hls["scope"], hls["sub"]) == (a, "hls", "user-7")
    assert (stream["track"], stream["scope"], stream["sub"]) == (a, "stream", "user-7")
    # tokens live at least auth.default_ttl (5 min), and twice a long
    # track's duration plus a minute: a player keeps the master's token
    assert 290 <= hls["exp"] - time.time() <= 310, hls
    st, doc_long, _ = request(asrv, "POST", "/api/streaming/session",
                              {"track_id": asrv.ids["Session Long"], "client_capabilities": caps()},
                              headers={"Authorization": f"Bearer {keys.backend_key}"})
    assert st == 200, doc_long
    for url in (doc_long["master_playlist"], doc_long["stream_url"]):
        assert 2 * 400 + 60 - 10 <= token_claims(url)["exp"] - time.time() <= 2 * 400 + 60 + 5, url
    # the minted stream URL is accepted by /stream
    st, _, _ = asrv.get(doc["stream_url"][len(asrv.base_url):], headers={"Range": "bytes=0-99"}, timeout=30)
    assert st in (200, 206)
    # a listener's token for the track, in the query or the header, any scope that plays it
    for tok in (listener_token(keys, a, sub="listener-1"), listener_token(keys, a, scope="hls"),
                listener_token(keys, a, scope="stream")):
        st, doc, _ = request(asrv, "POST", f"/api/streaming/session?token={tok}", body)
        assert st == 200, doc
        st, doc, _ = request(asrv, "POST", "/api/streaming/session", body,
                             headers={"Authorization": f"Bearer {tok}"})
        assert st == 200, doc
    st, doc, _ = request(asrv, "POST", "/api/streaming/session",
                         body, headers={"Authorization": f"Bearer {listener_token(keys, a, sub='listener-1')}"})
    sid = doc["session_id"]
    st, s, _ = request(asrv, "GET", f"/api/streaming/session/{sid}")
    assert s["client_id"] == "listener-1"  # who the token says, not what the body claims
    assert token_claims(doc["stream_url"])["sub"] == "listener-1"
    # a token for another track, or only for previews: 403
    for tok in (listener_token(keys, b), listener_token(keys, a, scope="preview")):
        st, doc, hdrs = request(asrv, "POST", f"/api/streaming/session?token={tok}", body)
        assert st == 403, (st, doc)
    # expired or badly signed: 401; a wrong backend key is a bad token
    for h in ({"Authorization": f"Bearer {listener_token(keys, a, ttl=-60)}"},
              {"Authorization": f"Bearer {listener_token(keys, a)}x"},
              {"Authorization": "Bearer not-the-backend-key"}):
        st, doc, _ = request(asrv, "POST", "/api/streaming/session", body, headers=h)
        assert st == 401, (h, st, doc)
    # the session id is what lets a player report on its session
    st, r, _ = request(asrv, "POST", f"/api/streaming/session/{sid}/metrics",
                       {"buffer_health_percentage": 10, "download_speed_kbps": 200})
    assert st == 200 and r["switch"] == "down"
    assert token_claims(r["stream_url"])["scope"] == "stream"


# -------------------------------------------------------------------- slots
#
# One token used to be able to create every session the server allows
# (9,999 in 6 s), after which everyone, the backend included, got 503 for
# the session lifetime. Each test fails with its bound taken away.

BACKEND_CLIENT_ID = "backend-user"


def slots_server(talas_server, slib, keys, streaming):
    srv = talas_server([slib], start=False, workers=2, extra_yaml="streaming:\n" + streaming)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    srv.start(wait_scan=True)
    backend = {"Authorization": f"Bearer {keys.backend_key}"}
    st, _, body = srv.get("/api/tracks?limit=100", headers=backend)
    assert st == 200, body
    srv.ids = {t["title"]: t["id"] for t in json.loads(body)["tracks"]}
    srv.backend = backend
    return srv


def post_session(srv, track, headers=None, conn=None, **extra):
    return request(srv, "POST", "/api/streaming/session", dict({"track_id": track}, **extra),
                   headers=headers, conn=conn)[:2]


def as_listener(keys, track, sub=None):
    return {"Authorization": f"Bearer {listener_token(keys, track, sub=sub)}"}


def assert_refused(st, doc, limit, maximum):
    assert st == 429, (st, doc)
    err = doc["error"]
    assert (err["code"], err["limit"], err["max"]) == ("quota_exceeded", limit, maximum), doc
    assert limit in err["message"], doc


def test_one_token_cannot_take_all_slots(talas_server, slib, keys):
    srv = slots_server(talas_server, slib, keys,
                       "  max_sessions: 60\n  max_sessions_per_user: 5\n  max_sessions_per_address: 3\n")
    track = srv.ids["Session A"]
    hog = as_listener(keys, track, sub="hog")
    made = []
    for _ in range(5):
        st, doc = post_session(srv, track, headers=hog)
        assert st == 200, (st, doc)
        made.append(doc["session_id"])
    # the attack: the same token again and again gets nothing more
    for _ in range(30):
        st, doc = post_session(srv, track, headers=hog)
        assert_refused(st, doc, "streaming.max_sessions_per_user", 5)
    # what the body claims changes nothing for a listener
    st, doc = post_session(srv, track, headers=hog, client_id="someone-else")
    assert_refused(st, doc, "streaming.max_sessions_per_user", 5)
    # the backend creating for that user counts against that user too ...
    st, doc = post_session(srv, track, headers=srv.backend, client_id="hog")
    assert_refused(st, doc, "streaming.max_sessions_per_user", 5)
    # ... while other listeners and the backend are served as usual
    st, doc = post_session(srv, track, headers=as_listener(keys, track, sub="fair"))
    assert st == 200, (st, doc)
    st, doc = post_session(srv, track, headers=srv.backend)
    assert st == 200, (st, doc)
    st, doc = post_session(srv, track, headers=srv.backend, client_id=BACKEND_CLIENT_ID)
    assert st == 200, (st, doc)
    # tokens without a user count against their address
    for i in range(3):
        st, doc = post_session(srv, track, headers=as_listener(keys, track))
        assert st == 200, (i, st, doc)
    st, doc = post_session(srv, track, headers=as_listener(keys, track))
    assert_refused(st, doc, "streaming.max_sessions_per_address", 3)
    # an ended session frees its slot at once
    st, _, _ = request(srv, "DELETE", f"/api/streaming/session/{made[0]}")
    assert st == 204
    st, doc = post_session(srv, track, headers=hog)
    assert st == 200, (st, doc)
    s = stats(srv)
    assert s["active_sessions"] == 5 + 3 + 3, s


def test_anonymous_creations_stop_at_the_address_bound(talas_server, slib):
    srv = talas_server([slib], workers=2, extra_yaml=(
        "streaming:\n  max_sessions: 60\n  max_sessions_per_user: 5\n  max_sessions_per_address: 8\n"))
    track = track_ids(srv)["Session A"]
    statuses = []
    for i in range(40):
        # a client_id per request: a client with no user cannot make itself many
        st, doc = post_session(srv, track, client_id=f"client-{i}")
        statuses.append(st)
        if st != 200:
            assert_refused(st, doc, "streaming.max_sessions_per_address", 8)
    assert statuses == [200] * 8 + [429] * 32, statuses
    assert stats(srv)["active_sessions"] == 8
    # another address (127.0.0.2 is loopback too) is another client
    other = http.client.HTTPConnection(srv.host, srv.port, timeout=10, source_address=("127.0.0.2", 0))
    try:
        st, doc = post_session(srv, track, conn=other)
        assert st == 200, (st, doc)
    finally:
        other.close()


def test_backend_can_always_create_one(talas_server, slib, keys):
    # max_sessions 60: the default reserve is a tenth, 6
    srv = slots_server(talas_server, slib, keys, "  max_sessions: 60\n  max_sessions_per_user: 5\n")
    track = srv.ids["Session A"]
    # listeners, each within its own bound, fill every slot open to them
    made = 0
    for user in range(11):
        for _ in range(5 if made + 5 <= 54 else 54 - made):
            st, doc = post_session(srv, track, headers=as_listener(keys, track, sub=f"listener-{user}"))
            assert st == 200, (made, st, doc)
            made += 1
    assert made == 54
    for headers in (as_listener(keys, track, sub="latecomer"), as_listener(keys, track)):
        st, doc = post_session(srv, track, headers=headers)
        assert st == 503 and doc["error"]["code"] == "too_many_sessions", (st, doc)
        assert "streaming.backend_reserved_sessions" in doc["error"]["message"], doc
    # the backend still gets its sessions, for no user or for one
    for i in range(6):
        extra = {"client_id": BACKEND_CLIENT_ID} if i % 2 else {}
        st, doc = post_session(srv, track, headers=srv.backend, **extra)
        assert st == 200, (i, st, doc)
    # until the server is full for everyone
    st, doc = post_session(srv, track, headers=srv.backend)
    assert st == 503 and doc["error"]["code"] == "too_many_sessions", (st, doc)
    assert "streaming.max_sessions" in doc["error"]["message"], doc
    assert "backend_reserved" not in doc["error"]["message"], doc
    assert stats(srv)["active_sessions"] == 60
