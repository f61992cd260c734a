"""Cluster mode's realtime plane: two nodes sharing one Redis.

Every test starts a real redis-server (on a unix socket in a temp dir), and
two talas-master nodes, A and B, with their own storage over the same
generated library, both naming that Redis (and a database of a real
PostgreSQL 15 as cluster.postgres, which the record store will use), two
workers each. Clients are real: python3-websockets, http.client, talasctl.

Ordering instead of timing: an event that must NOT arrive is checked with a
later event of the same publisher (the same WebSocket connection, or the
same keep-alive HTTP connection, hence the same worker) that must arrive:
Redis keeps one publisher's order, so once the later one is in, the earlier
one would have been too. Deadlines are bounds that a poll runs against,
never sleeps that an assertion relies on.
"""

import asyncio
import http.client
import json
import re
import secrets
import socket
import threading
import time

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

BACKEND_KEY = secrets.token_urlsafe(32)
# What cluster_bus.h documents: figures refreshed every 2 s, gone 6 s after
# the last refresh; LiveStats goes out every ws.live_stats_interval (1 s
# here) with the sums of the last read.
REFRESH_S = 2
TTL_S = 6
LIVE_S = 1
GONE_WITHIN_S = TTL_S + REFRESH_S + LIVE_S + 1


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    d = tmp_path_factory.mktemp("clusterlib")
    tf.make_track(d / "long.mp3", "Long Song", artist="Cluster Artist", seconds=60, freq=330)
    tf.make_track(d / "short.mp3", "Short Song", artist="Cluster Artist", seconds=3, freq=440)
    tf.make_big_wav(d / "big.wav", seconds=120)
    return d


@pytest.fixture
def nodes(talas_server, clib, redis_server, pg_database):
    # both nodes' workers are connected (health says so) before any test
    return cf.two_nodes(talas_server, clib, redis_server, pg_database, BACKEND_KEY,
                        "ws:\n  live_stats_interval: 1s\n")


def url(srv, query=""):
    return f"ws://127.0.0.1:{srv.port}/api/ws" + (f"?{query}" if query else "")


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def command(ws, cmd, timeout=10):
    await ws.send(json.dumps(cmd))
    others = []
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if m.get("event") == "CommandResponse" and m["command_id"] == cmd["command_id"]:
            assert m["success"], m
            return m, others
        others.append(m)


async def subscribe(ws, events, filters=None):
    cmd = {"command": "Subscribe", "command_id": f"s{time.monotonic_ns()}", "events": events}
    if filters:
        cmd["filters"] = filters
    await command(ws, cmd)


async def status(ws):
    r, _ = await command(ws, {"command": "GetStatus", "command_id": f"st{time.monotonic_ns()}"})
    return r["data"]


async def next_event(ws, timeout=10, skip=()):
    """The next event that is not a CommandResponse, a LiveStats or in SKIP."""
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if m.get("event") not in ("CommandResponse", "LiveStats") + tuple(skip):
            return m


class Backend:
    """POST /api/events on one keep-alive connection: one worker, so one
    publisher whose events keep their order."""

    def __init__(self, srv):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)

    def post(self, body):
        self.conn.request("POST", "/api/events", body=json.dumps(body),
                          headers={"Authorization": f"Bearer {BACKEND_KEY}", "Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data)
        return json.loads(data)

    def close(self):
        self.conn.close()


def put_settings(srv, user, doc):
    st, _, body = srv.get(f"/api/users/{user}/settings", method="PUT",
                          headers={"Authorization": f"Bearer {BACKEND_KEY}", "Content-Type": "application/json"},
                          body=json.dumps(doc).encode())
    assert st == 200, body


def slow_stream(srv, track):
    """A /stream response that stays open: the client reads its headers only."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /stream/{track} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert b"200 OK" in sock.recv(4096)
    return sock


def cluster_status(srv):
    cp = srv.talasctl("--json", "cluster", "status", timeout=20)
    assert cp.returncode == 0, cp.stderr
    return {n["node"]: n for n in json.loads(cp.stdout)["nodes"]}


# --------------------------------------------------------------------- tests

def test_events_cross_nodes_with_filters_targets_and_privacy(nodes):
    a, b = nodes
    song = a.ids["Long Song"]
    assert song == b.ids["Long Song"], "the same library gives the same ids on both nodes"
    put_settings(a, "alice", {"share_listening": True})

    async def go():
        alice = await websockets.connect(url(a, "user_id=alice"))
        match = await websockets.connect(url(b, "user_id=bob"))
        other = await websockets.connect(url(b, "user_id=carol"))
        zed_a = await websockets.connect(url(a, "user_id=zed"))
        zed_b = await websockets.connect(url(b, "user_id=zed"))
        priv = await websockets.connect(url(a, "user_id=priv"))
        priv_b = await websockets.connect(url(b, "user_id=priv"))
        spy = await websockets.connect(url(b, "user_id=spy"))
        sam = await websockets.connect(url(a, "user_id=sam"))
        backend = Backend(a)
        try:
            await subscribe(sam, ["PlaybackStarted", "PlaybackStopped"], {"user_id": "alice"})
            await subscribe(sam, ["PlaylistUpdated"])
            # a filter that matches on B receives alice's Play on A; one that
            # does not match gets nothing before alice's later Stop
            await subscribe(match, ["PlaybackStarted"], {"user_id": "alice"})
            await subscribe(other, ["PlaybackStarted"], {"user_id": "dave"})
            await subscribe(other, ["PlaybackStopped"])
            await command(alice, {"command": "Play", "command_id": "p1", "track_id": song})
            ev = await next_event(match)
            assert ev["event"] == "PlaybackStarted" and ev["user_id"] == "alice" and ev["track_id"] == song, ev
            await command(alice, {"command": "Stop", "command_id": "p2", "track_id": song})
            ev = await next_event(other)
            assert ev["event"] == "PlaybackStopped" and ev["user_id"] == "alice", \
                f"the non-matching filter let an event through: {ev}"

            # on A itself each event arrives once: the master relayed it, and
            # its copy from Redis is dropped. Once sam's worker has seen both
            # copies come back from Redis, alice's next event is the barrier.
            assert [e["event"] for e in [await next_event(sam), await next_event(sam)]] == \
                ["PlaybackStarted", "PlaybackStopped"]
            sam_pid = (await status(sam))["worker_pid"]
            tf.wait_for(lambda: (lambda c: c["worker"]["pid"] == sam_pid and
                                 c["worker"]["events_own_skipped"] >= 2)(a.get_json("/api/ws/stats")["cluster"]),
                        10, what="sam's worker skipping its node's own events from Redis")
            await command(alice, {"command": "AddToPlaylist", "command_id": "p3", "playlist_id": "alicelist",
                                  "track_id": song})
            ev = await next_event(sam)
            assert ev["event"] == "PlaylistUpdated", f"an event of this node came back a second time: {ev}"

            # POST /api/events on A: to all (a ServerMessage reaches B's
            # clients without a Subscribe), to a user on both nodes, to one
            # connection of B by its id
            backend.post({"event": {"event": "ServerMessage", "message": "from A", "level": "Info"}})
            for ws in (match, other, zed_b, spy):
                assert await next_event(ws) == {"event": "ServerMessage", "message": "from A", "level": "Info"}
            shared = {"event": "TrackShared", "track_id": song, "from_user": "x", "to_users": ["zed"],
                      "message": None}
            assert backend.post({"event": shared, "send_to_user": "zed"})["target"] == "user"
            # zed_a saw the ServerMessage too: skip it
            assert (await next_event(zed_a))["event"] == "ServerMessage"
            assert await next_event(zed_a) == shared
            assert await next_event(zed_b) == shared
            sb = await status(other)
            follow = {"event": "UserFollowed", "follower_id": "x", "followed_id": "carol"}
            backend.post({"event": follow, "send_to_connection": sb["connection_id"]})
            # the same publisher's next broadcast is the barrier for the others
            backend.post({"event": {"event": "ServerMessage", "message": "barrier", "level": "Info"}})
            assert await next_event(other) == follow
            for ws in (match, zed_b):
                ev = await next_event(ws)
                assert ev["event"] == "ServerMessage" and ev["message"] == "barrier", \
                    f"send_to_connection reached another connection: {ev}"

            # priv does not share: its Play reaches its own connection on B,
            # not spy's, whatever spy subscribed to; priv's later
            # AddToPlaylist (PlaylistUpdated, public) is the barrier
            await subscribe(priv_b, ["PlaybackStarted"])
            await subscribe(spy, ["PlaybackStarted", "PlaylistUpdated"])
            await command(priv, {"command": "Play", "command_id": "q1", "track_id": song})
            ev = await next_event(priv_b, skip=("ServerMessage",))
            assert ev["event"] == "PlaybackStarted" and ev["user_id"] == "priv", ev
            await command(priv, {"command": "AddToPlaylist", "command_id": "q2", "playlist_id": "privlist",
                                 "track_id": song})
            ev = await next_event(spy, skip=("ServerMessage",))
            assert ev["event"] == "PlaylistUpdated", f"a private listening event crossed to another user: {ev}"
        finally:
            backend.close()
            for ws in (alice, match, other, zed_a, zed_b, priv, priv_b, spy, sam):
                await ws.close()

    run(go())
    stats = b.get_json("/api/ws/stats")
    assert stats["cluster"]["node"] == "node-b" and stats["cluster"]["redis"] == "ok"


def test_live_stats_and_cluster_status_sum_nodes_and_forget_a_dead_one(nodes):
    a, b = nodes
    big = a.ids["Big WAV"]
    sa = slow_stream(a, big)
    sb = slow_stream(b, big)
    try:
        async def watch(want, timeout):
            """The first LiveStats on A whose concurrent_listeners is WANT."""
            async with websockets.connect(url(a, "user_id=watcher")) as ws:
                await subscribe(ws, ["LiveStats"])
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    ev = await recv_json(ws, timeout)
                    if ev["event"] == "LiveStats" and ev["concurrent_listeners"] == want:
                        return ev
                pytest.fail(f"no LiveStats with {want} listener(s) within {timeout}s")

        ev = run(watch(2, 15))
        top = [t for t in ev["top_tracks"] if t["track_id"] == big]
        assert top and top[0]["current_listeners"] == 2 and top[0]["title"] == "Big WAV", ev

        # each node's record is rewritten every refresh from what the
        # master last relayed of its workers, so a node's worker count
        # grows to 2 once both of its workers have reported (slow under
        # the sanitizers): wait for the settled figures, then check them
        def settled(s):
            if set(s) != {"node-a", "node-b"}:
                return None
            if any(s[n]["listeners"] != 1 or s[n]["workers"] != 2 for n in s):
                return None
            return s

        st = tf.wait_for(lambda: settled(cluster_status(a)), 15,
                         what="talasctl cluster status listing both nodes, one listener and two workers each")
        assert st["node-a"]["listeners"] == 1 and st["node-a"]["workers"] == 2
        cp = a.talasctl("cluster", "status")
        assert cp.returncode == 0 and "node-a" in cp.stdout and "node-b" in cp.stdout, cp.stdout

        # node B dies at once (kill -9 of its master and workers): its
        # figures leave the sums within the TTL
        b.kill()
        t0 = time.monotonic()
        run(watch(1, GONE_WITHIN_S))
        tf.wait_for(lambda: set(cluster_status(a)) == {"node-a"}, GONE_WITHIN_S - (time.monotonic() - t0),
                    what="node-b gone from talasctl cluster status within the TTL")
    finally:
        sa.close()
        sb.close()


def ctl_cluster_state(srv):
    """The cluster member of talasctl status (the master's part)."""
    cp = srv.talasctl("--json", "status", timeout=20)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["master"]["cluster"]


def test_redis_outage_is_degraded_not_down(nodes, redis_server):
    a, b = nodes
    short = a.ids["Short Song"]
    size = int(a.get(f"/stream/{short}", method="HEAD")[1]["content-length"])
    failures, done = [], threading.Event()
    fetched = [0]

    def traffic():
        while not done.is_set():
            for srv in (a, b):
                try:
                    st, _, body = srv.get(f"/stream/{short}", timeout=10)
                    if st != 200 or len(body) != size:
                        failures.append((srv.workdir.name, st, len(body)))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    failures.append((srv.workdir.name, repr(e)))
                fetched[0] += 1

    async def go():
        on_a = await websockets.connect(url(a, "user_id=ua"))
        on_b = await websockets.connect(url(b, "user_id=ub"))
        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        try:
            redis_server.kill()
            for srv in (a, b):
                tf.wait_for(lambda: cf.all_workers_say(srv, "degraded"), 10,
                            what=f"{srv.workdir.name}: degraded on every worker")
            h = a.health()
            assert h["status"] == "degraded" and h["redis"] != "ok" and h["node"] == "node-a", h
            # talasctl status says it too, from the master's control socket
            c = ctl_cluster_state(a)
            assert c == {"node": "node-a", "status": "degraded", "redis": "degraded", "postgres": "ok"}, c
            text = a.talasctl("status", timeout=20).stdout
            assert re.search(r"^\s*status: degraded$", text, re.M), text

            # local delivery goes on: a ServerMessage on A reaches A's client
            backend = Backend(a)
            backend.post({"event": {"event": "ServerMessage", "message": "local", "level": "Info"}})
            assert (await next_event(on_a))["message"] == "local"
            backend.close()

            redis_server.start()
            t_back = time.monotonic()
            # events flow again: poll with broadcasts from A until one
            # reaches B's client. 5 s is the bound this poll runs against
            # (reconnection backoff is at most 2 s, plus the subscription)
            got = None
            while got is None and time.monotonic() - t_back < 5:
                backend = Backend(a)
                backend.post({"event": {"event": "ServerMessage", "message": "back", "level": "Info"}})
                backend.close()
                try:
                    ev = await next_event(on_b, timeout=0.5)
                    if ev.get("message") == "back":
                        got = ev
                except asyncio.TimeoutError:
                    pass
            assert got is not None, "no event from A reached B within 5 s of Redis returning"
            for srv in (a, b):
                tf.wait_for(lambda: cf.all_workers_say(srv, "ok"), 10, what=f"{srv.workdir.name}: ok again")
            tf.wait_for(lambda: ctl_cluster_state(a)["status"] == "ok", 10, what="talasctl status: ok again")
            # the WebSocket connections lived through it
            assert (await status(on_a))["user_id"] == "ua"
            assert (await status(on_b))["user_id"] == "ub"
        finally:
            done.set()
            t.join(30)
            await on_a.close()
            await on_b.close()

    run(go())
    assert fetched[0] > 0
    assert failures == [], f"media requests failed during the outage: {failures[:5]}"


def test_cluster_status_without_redis_fails(nodes, redis_server):
    a, _ = nodes
    redis_server.kill()
    cp = a.talasctl("cluster", "status", timeout=20)
    assert cp.returncode == 1 and "cannot reach Redis" in cp.stderr, (cp.returncode, cp.stderr)


def test_local_mode_has_no_cluster(talas_server, clib):
    srv = talas_server([clib])
    h = srv.health()
    assert h["status"] == "ok" and "redis" not in h
    assert "cluster" not in srv.get_json("/api/ws/stats")
    assert ctl_cluster_state(srv) is None
    cp = srv.talasctl("cluster", "status")
    assert cp.returncode == 1 and "cluster mode is off" in cp.stderr
