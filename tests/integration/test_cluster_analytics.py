"""Cluster mode's playback state (Redis) and listening analytics
(PostgreSQL), and the engines' figures in /metrics.

Two real talas-master nodes A and B (two workers each, their own LMDB
stores, the same library) on one real redis-server and one database of a
real PostgreSQL 15; real WebSocket and HTTP clients; promtool.

- Play and Pause on A: GetStatus on B tells the same track and position;
- plays on A and on B add up in /api/analytics/tracks/{id}, read on
  either node; they survive a restart of both nodes and of PostgreSQL;
- a listening session written twice (the SQL function the workers call,
  driven with psql) counts once;
- PostgreSQL stopped: analytics answer 503 store_unavailable, Play still
  answers; once it is back, analytics answer again, nodes not restarted;
- talasctl users data ls/purge reach the listening sessions in
  PostgreSQL, and a purge leaves the per-track totals;
- /metrics: talas_redis_* and talas_postgres_* move with cluster
  traffic, promtool accepts them, talas_redis_up goes 0 when Redis dies.
"""

import json
import re
import secrets

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")


@pytest.fixture(scope="module")
def alib(tmp_path_factory):
    d = tmp_path_factory.mktemp("analyticslib")
    tf.make_track(d / "a.mp3", "Analytics A", seconds=30, freq=300)
    tf.make_track(d / "b.mp3", "Analytics B", seconds=30, freq=500)
    return d


def node(make, name, lib, redis, conninfo):
    srv = make([lib], start=False, name=name, workers=2)
    text = srv.config_text() + "ws:\n  rate_limit: 1000000\n  user_rate_limit: 0\n"
    text += cf.cluster_yaml(name, redis, conninfo)
    srv.write_config(text=text)
    return srv


@pytest.fixture
def cluster(talas_server, alib, redis_server, pg_database):
    """Nodes A and B on a migrated database: (a, b, dbname)."""
    dbname, conninfo = pg_database
    a = node(talas_server, "node-a", alib, redis_server.address, conninfo)
    b = node(talas_server, "node-b", alib, redis_server.address, conninfo)
    cf.migrate_and_start(a, b)
    a.ids = b.ids = {t["title"]: t["id"] for t in a.tracks()}
    return a, b, dbname


async def session(srv, user, *cmds):
    """The CommandResponses of CMDS sent on one connection of USER."""
    async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id={user}") as ws:
        return [await cf.command(ws, dict(c, command_id=secrets.token_hex(4))) for c in cmds]


def play(track, start=None):
    c = {"command": "Play", "track_id": track}
    if start is not None:
        c["start_position_ms"] = start
    return c


def verb(name, track):
    return {"command": name, "track_id": track}


def analytics(srv, track):
    st, _, body = srv.get(f"/api/analytics/tracks/{track}")
    return st, json.loads(body)


def totals(srv, track):
    st, doc = analytics(srv, track)
    assert st == 200, doc
    return doc["plays"], doc["listeners"]


# ------------------------------------------------------------------ tests

def test_play_on_a_is_the_state_on_b(cluster):
    a, b, _ = cluster
    x = a.ids["Analytics A"]
    r = cf.run(session(a, "ada", play(x, 4000), verb("Pause", x)))
    assert all(m["success"] for m in r), r
    paused_at = r[1]["data"]["position_ms"]
    assert paused_at >= 4000
    (st,) = cf.run(session(b, "ada", {"command": "GetStatus"}))
    assert st["success"], st
    assert st["data"]["playback"] == {"state": "paused", "track_id": x, "position_ms": paused_at,
                                      "quality": st["data"]["playback"]["quality"]}, st
    # and B's change is A's state: Stop on B, then A has nothing playing
    assert cf.run(session(b, "ada", verb("Stop", x)))[0]["success"]
    (st,) = cf.run(session(a, "ada", {"command": "GetStatus"}))
    assert st["data"]["playback"] is None, st


def test_plays_on_both_nodes_add_up_and_survive_restarts(cluster, postgres):
    a, b, _ = cluster
    x = a.ids["Analytics B"]
    for srv, user in ((a, "bo"), (b, "cy"), (b, "bo")):
        r = cf.run(session(srv, user, play(x), verb("Stop", x)))
        assert all(m["success"] for m in r), r
    # written after the answer: wait for the third, then both nodes agree
    tf.wait_for(lambda: totals(a, x) == (3, 2), 15, interval=0.2, what="3 plays by 2 listeners on A")
    assert totals(b, x) == (3, 2)
    a.stop()
    b.stop()
    postgres.stop()
    postgres.start()
    a.start()
    b.start()
    # a node serves before its workers have connected to PostgreSQL
    tf.wait_for(lambda: totals(a, x) == (3, 2), 15, interval=0.2, what="the totals on A after the restarts")
    tf.wait_for(lambda: totals(b, x) == (3, 2), 15, interval=0.2, what="the totals on B after the restarts")


def test_a_repeated_session_write_counts_once(cluster, postgres):
    a, b, dbname = cluster
    x = a.ids["Analytics A"]
    put = ("SELECT talas_listen_session_put('dup/node-a/1/1000', 'dee', '{x}', 'q', 'web', 1000, {end}, "
           "{pos}, {played});")
    for _ in range(2):
        postgres.psql(dbname, put.format(x=x, end="NULL", pos=0, played=0))
    for _ in range(2):
        postgres.psql(dbname, put.format(x=x, end=9000, pos=8000, played=7000))
    # an older write arriving late changes nothing either
    postgres.psql(dbname, put.format(x=x, end="NULL", pos=100, played=100))
    st, doc = analytics(b, x)
    assert st == 200 and (doc["plays"], doc["listeners"], doc["total_listening_time_ms"]) == (1, 1, 7000), doc
    st, _, body = a.get("/api/analytics/users/dee")
    hist = json.loads(body)
    assert st == 200 and hist["total"] == 1 and hist["history"][0]["total_played_ms"] == 7000, hist


def test_postgres_down_fails_only_analytics(cluster, postgres):
    a, b, _ = cluster
    x = a.ids["Analytics A"]
    assert analytics(a, x)[0] == 200
    postgres.stop()
    try:
        st, doc = analytics(a, x)
        assert st == 503 and doc["error"]["code"] == "store_unavailable", doc
        st, _, body = b.get("/api/analytics/users/eve")
        assert st == 503 and json.loads(body)["error"]["code"] == "store_unavailable"
        r = cf.run(session(b, "eve", play(x), verb("Stop", x)))
        assert all(m["success"] for m in r), r
    finally:
        postgres.start()
    tf.wait_for(lambda: analytics(a, x)[0] == 200, 30, interval=0.2, what="analytics on A again")
    tf.wait_for(lambda: analytics(b, x)[0] == 200, 30, interval=0.2, what="analytics on B again")


def test_talasctl_users_reaches_the_listening_sessions(cluster):
    a, b, _ = cluster
    x = a.ids["Analytics A"]
    for srv in (a, b):
        assert all(m["success"] for m in cf.run(session(srv, "gus", play(x), verb("Stop", x))))
    tf.wait_for(lambda: totals(a, x)[0] == 2, 15, interval=0.2, what="both sessions written")
    r = b.talasctl("--json", "users", "data", "ls", "gus")
    assert r.returncode == 0, r.stderr
    kinds = json.loads(r.stdout)["kinds"]
    assert kinds["listening"]["count"] == 2 and kinds["listening"]["bytes"] > 0, kinds
    r = a.talasctl("--json", "users", "ls")
    assert r.returncode == 0, r.stderr
    assert {u["user"]: u["listening"] for u in json.loads(r.stdout)["users"]}.get("gus") == 2
    r = a.talasctl("--json", "users", "data", "purge", "gus", "--kind", "listening")
    assert r.returncode == 0 and json.loads(r.stdout)["removed"]["listening"] == 2, (r.stdout, r.stderr)
    st, _, body = b.get("/api/analytics/users/gus")
    assert st == 200 and json.loads(body)["total"] == 0
    assert totals(b, x) == (2, 1)


def scrape(srv):
    st, _, body = srv.get("/metrics")
    assert st == 200, body
    text = body.decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            values[m.group(1)] = float(m.group(2))
    return text, values


def promtool_check(text):
    exe = tf.require_tool("promtool", "prometheus")
    cp = tf.run([exe, "check", "metrics"], input=text, check=False, timeout=30)
    out = (cp.stdout + cp.stderr).strip()
    assert cp.returncode == 0 and out == "", out


def test_engine_metrics_move_and_redis_up_falls(cluster, redis_server):
    a, b, _ = cluster
    x = a.ids["Analytics A"]
    text, before = tf.wait_for(lambda: (lambda tv: tv if tv[1]["talas_redis_up"] == 1 and
                                        tv[1]["talas_postgres_up"] == 1 else None)(scrape(a)),
                               15, interval=0.2, what="both engines up on A")
    promtool_check(text)
    assert cf.run(session(a, "fay", play(x), verb("Stop", x)))[0]["success"]
    assert analytics(a, x)[0] == 200
    text, after = scrape(a)
    promtool_check(text)
    for name in ("talas_redis_commands_total", "talas_postgres_commands_total",
                 "talas_redis_round_trip_seconds_count", "talas_postgres_round_trip_seconds_count"):
        assert after[name] > before[name], name
    redis_server.kill()
    text, down = tf.wait_for(lambda: (lambda tv: tv if tv[1]["talas_redis_up"] == 0 else None)(scrape(a)),
                             15, interval=0.2, what="talas_redis_up 0")
    promtool_check(text)
    assert down["talas_postgres_up"] == 1
    # Play now fails with a reason, and the failures are counted
    r = cf.run(session(a, "fay", play(x)))[0]
    assert r["success"] is False and "playback unavailable" in r["error"], r
    assert scrape(a)[1]["talas_redis_errors_total"] > after["talas_redis_errors_total"]
