"""Cluster mode's record store: playlists on a shared PostgreSQL.

Two real talas-master nodes A and B (two workers each, their own LMDB
stores, the same library) point their cluster section at one database of
a real PostgreSQL 15 (conftest's postgres / pg_database; a real
redis-server only because cluster.redis is required). Clients are real
WebSocket and HTTP clients.

- `talasctl db migrate` makes the schema; a playlist changed on one node
  is read on the other, tracks in order; ownership and sharing hold on
  both;
- playlists.max_per_user and max_tracks refuse in the same words as a
  local-mode node, also when writes alternate between the nodes, and
  under concurrent creations from both;
- nothing committed is lost when both nodes and PostgreSQL restart;
- with PostgreSQL stopped, playlist commands fail with the documented
  answer, GET /api/playlists/{id} is 503 store_unavailable, media still
  streams, health says "degraded"; once it is back, commands succeed
  without restarting the nodes;
- a schema newer than the build: the node refuses the records, and says
  why in its error log;
- talasctl users data ls/purge reach the PostgreSQL playlists.
"""

import asyncio
import json
import re
import secrets
import subprocess

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

MAX_PER_USER = 3
MAX_TRACKS = 4
BACKEND_KEY = secrets.token_urlsafe(32)
# this build's schema version, as src/store/pg_schema.h sets it
SCHEMA = int(re.search(r"#define TALAS_PG_SCHEMA_VERSION (\d+)",
                       (tf.SRCDIR / "src" / "store" / "pg_schema.h").read_text()).group(1))
UNAVAILABLE = "playlists unavailable: the record store cannot be reached"


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    d = tmp_path_factory.mktemp("clusterlib")
    tf.make_track(d / "a.mp3", "Cluster A", seconds=3, freq=300)
    tf.make_track(d / "b.mp3", "Cluster B", seconds=3, freq=500)
    tf.make_track(d / "c.mp3", "Cluster C", seconds=3, freq=700)
    return d


def node(make, name, lib, cluster=None):
    """A node (not started): CLUSTER is (redis address, conninfo) or None
    for a local-mode node."""
    srv = make([lib], start=False, name=name, workers=2)
    text = cf.with_backend_key(srv, BACKEND_KEY)
    text += "ws:\n  rate_limit: 1000000\n  user_rate_limit: 0\n"
    text += f"playlists:\n  max_per_user: {MAX_PER_USER}\n  max_tracks: {MAX_TRACKS}\n"
    if cluster is not None:
        text += cf.cluster_yaml(name, *cluster)
    srv.write_config(text=text)
    return srv


@pytest.fixture
def cluster(talas_server, clib, redis_server, pg_database):
    """Nodes A and B on a migrated database: (a, b, dbname)."""
    dbname, conninfo = pg_database
    a = node(talas_server, "node-a", clib, (redis_server.address, conninfo))
    b = node(talas_server, "node-b", clib, (redis_server.address, conninfo))
    cf.migrate_and_start(a, b)
    ids = {t["title"]: t["id"] for t in a.tracks()}
    assert ids == {t["title"]: t["id"] for t in b.tracks()}
    a.ids = b.ids = ids
    return a, b, dbname


def ws_url(srv, user):
    return f"ws://127.0.0.1:{srv.port}/api/ws?user_id={user}"


def add(pl, track, position=None):
    c = {"command": "AddToPlaylist", "command_id": secrets.token_hex(4), "playlist_id": pl, "track_id": track}
    if position is not None:
        c["position"] = position
    return c


def remove(pl, track):
    return {"command": "RemoveFromPlaylist", "command_id": secrets.token_hex(4), "playlist_id": pl,
            "track_id": track}


def share(pl, users):
    return {"command": "PlaylistShared", "command_id": secrets.token_hex(4), "playlist_id": pl,
            "to_users": users}


async def one(srv, user, cmd):
    async with websockets.connect(ws_url(srv, user)) as ws:
        return await cf.command(ws, cmd)


def playlist(srv, pl):
    st, _, body = srv.get(f"/api/playlists/{pl}")
    return st, json.loads(body)


def tracks_of(srv, pl):
    st, doc = playlist(srv, pl)
    assert st == 200, doc
    return [t["track_id"] for t in doc["tracks"]]


def post_event(srv, event, **target):
    body = json.dumps(dict({"event": event}, **target)).encode()
    st, _, resp = srv.get("/api/events", method="POST", body=body,
                          headers={"Authorization": f"Bearer {BACKEND_KEY}", "Content-Type": "application/json"})
    return st, json.loads(resp)


# ------------------------------------------------------------------ tests

def test_playlists_are_shared_by_the_nodes(cluster):
    a, b, _ = cluster
    x, y, z = (a.ids[t] for t in ("Cluster A", "Cluster B", "Cluster C"))
    pl = f"mix-{secrets.token_hex(4)}"

    async def go():
        async with websockets.connect(ws_url(a, "alice")) as alice_a, \
                websockets.connect(ws_url(b, "alice")) as alice_b, \
                websockets.connect(ws_url(a, "bob")) as bob_a, \
                websockets.connect(ws_url(b, "bob")) as bob_b:
            for cmd, pos in ((add(pl, x), 0), (add(pl, y), 1), (add(pl, z, position=0), 0)):
                r = await cf.command(alice_a, cmd)
                assert r["success"] and r["data"] == {"position": pos}, r
            # B reads what A wrote, in order
            st, doc = playlist(b, pl)
            assert st == 200 and doc["owner"] == "alice" and doc["editors"] == [], doc
            assert [t["track_id"] for t in doc["tracks"]] == [z, x, y]
            assert doc["tracks"][0]["title"] == "Cluster C"  # B's own catalog
            # B removes, A sees it
            r = await cf.command(alice_b, remove(pl, x))
            assert r["success"] and r["data"] == {"position": 1}, r
            assert tracks_of(a, pl) == [z, y]
            # another user may change it on neither node, nor share it
            for ws, cmd in ((bob_a, add(pl, x)), (bob_b, add(pl, x)), (bob_b, remove(pl, y)),
                            (bob_a, share(pl, ["bob"]))):
                r = await cf.command(ws, cmd)
                assert r["success"] is False and r["error"].startswith("forbidden: "), r
            # shared by its owner on B, bob may change it on A
            r = await cf.command(alice_b, share(pl, ["bob", "bob"]))
            assert r["success"] and r["data"] == {"editors_added": 1}, r
            r = await cf.command(bob_a, add(pl, x))
            assert r["success"] and r["data"] == {"position": 2}, r
            r = await cf.command(bob_b, remove(pl, z))
            assert r["success"] and r["data"] == {"position": 0}, r
            # the owner only may share; the backend may too
            r = await cf.command(bob_a, share(pl, ["carol"]))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r

    cf.run(go())
    st, body = post_event(a, {"event": "PlaylistShared", "playlist_id": pl, "from_user": "alice",
                              "to_users": ["carol"]})
    assert st == 200 and body["editors_added"] == 1, body
    st, body = post_event(b, {"event": "PlaylistShared", "playlist_id": "elsewhere", "from_user": "x",
                              "to_users": ["y"]})
    assert st == 200 and body["editors_added"] is None, body
    st, doc = playlist(a, pl)
    assert doc["editors"] == ["bob", "carol"] and [t["track_id"] for t in doc["tracks"]] == [y, x]
    assert playlist(b, pl) == (st, doc)
    assert playlist(b, "no-such-playlist")[0] == 404


def quota_answers(nodes, lib_ids, user):
    """Creates playlists for USER on NODES in turn until refused, then fills
    the first with tracks until refused; returns (errors, successes)."""
    x = lib_ids["Cluster A"]
    errors, ok = [], 0

    async def go():
        nonlocal ok
        for i in range(MAX_PER_USER + 1):
            r = await one(nodes[i % len(nodes)], user, add(f"{user}-{i}", x))
            if r["success"]:
                ok += 1
            else:
                errors.append(r["error"])
        for i in range(MAX_TRACKS):
            r = await one(nodes[i % len(nodes)], user, add(f"{user}-0", x))
            if r["success"]:
                ok += 1
            else:
                errors.append(r["error"])
    cf.run(go())
    return errors, ok


def test_quotas_hold_across_nodes_with_local_words(cluster, talas_server, clib, postgres):
    a, b, dbname = cluster
    local = node(talas_server, "local", clib)
    local.start()
    local_errors, local_ok = quota_answers([local], {t["title"]: t["id"] for t in local.tracks()}, "uma")
    errors, ok = quota_answers([a, b], a.ids, "vic")
    assert local_errors == [f"quota exceeded: limit playlists.max_per_user ({MAX_PER_USER}) reached",
                            f"quota exceeded: limit playlists.max_tracks ({MAX_TRACKS}) reached"]
    assert errors == local_errors and ok == local_ok

    # concurrent creations from both nodes: exactly the quota gets through
    x = a.ids["Cluster B"]

    async def flood():
        return await asyncio.gather(*(one((a, b)[i % 2], "zoe", add(f"zoe-{i}", x)) for i in range(16)))
    got = cf.run(flood())
    assert sum(r["success"] for r in got) == MAX_PER_USER, got
    assert all(r["success"] or "playlists.max_per_user" in r["error"] for r in got), got
    assert postgres.psql(dbname, "SELECT count(*) FROM talas_playlists WHERE owner = 'zoe'") == [[str(MAX_PER_USER)]]
    first = [f"zoe-{i}" for i, r in enumerate(got) if r["success"]][0]

    # one playlist filled from both nodes at once: never past max_tracks
    async def fill():
        return await asyncio.gather(*(one((a, b)[i % 2], "zoe", add(first, x)) for i in range(12)))
    got = cf.run(fill())
    assert len(tracks_of(b, first)) == MAX_TRACKS
    assert sum(r["success"] for r in got) == MAX_TRACKS - 1


def psql_session(postgres, dbname, *statements):
    """psql running STATEMENTS (each its own -c) in the background."""
    cmd = ["runuser", "-u", "postgres", "--", str(cf.PG_BIN / "psql"), "-h", str(postgres.dir), "-U", "postgres",
           "-d", dbname, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for st in statements:
        cmd += ["-c", st]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=postgres.dir)


def test_a_creation_waits_for_the_one_in_flight(cluster, postgres):
    """Two creations by one user with max_per_user 1, the first's
    transaction still open when the second runs: the second waits for it,
    then counts it (without the lock it would count 0 and get through)."""
    _, _, dbname = cluster
    first = psql_session(postgres, dbname, "BEGIN",
                         "SELECT outcome FROM talas_playlist_add('zed', 'race-1', 't', NULL, 1, 1000, 10)",
                         "SELECT pg_sleep(3)", "COMMIT")
    try:
        tf.wait_for(lambda: postgres.psql(dbname, "SELECT count(*) FROM pg_stat_activity WHERE query = "
                                                  "'SELECT pg_sleep(3)' AND state = 'active'") == [["1"]],
                    20, what="the first creation's transaction to be open")
        second = postgres.psql(dbname, "SELECT outcome, detail FROM talas_playlist_add('zed', 'race-2', 't', NULL, "
                                       "1, 1000, 10)")
        assert second == [["quota", "playlists.max_per_user"]]
    finally:
        out, err = first.communicate(timeout=30)
    assert first.returncode == 0 and "ok" in out, err


def test_nothing_committed_is_lost_across_restarts(cluster, postgres):
    a, b, _ = cluster
    x, y = a.ids["Cluster A"], a.ids["Cluster B"]
    pl = f"keep-{secrets.token_hex(4)}"

    async def go():
        for srv, t in ((a, x), (b, y), (a, y)):
            r = await one(srv, "kim", add(pl, t))
            assert r["success"], r
        assert (await one(b, "kim", share(pl, ["lou"])))["success"]
    cf.run(go())
    before = playlist(a, pl)
    a.stop()
    b.stop()
    postgres.stop()
    postgres.start()
    a.start()
    b.start()
    assert playlist(b, pl) == before
    assert before[1]["editors"] == ["lou"] and [t["track_id"] for t in before[1]["tracks"]] == [x, y, y]


def test_postgres_down_fails_only_the_records(cluster, postgres, clib):
    a, b, _ = cluster
    x = a.ids["Cluster A"]
    pl = f"down-{secrets.token_hex(4)}"
    assert cf.run(one(a, "max", add(pl, x)))["success"]
    postgres.stop()
    try:
        r = cf.run(one(a, "max", add(pl, x)))
        assert r["success"] is False and r["error"] == UNAVAILABLE, r
        st, doc = playlist(b, pl)
        assert st == 503 and doc["error"]["code"] == "store_unavailable", doc
        # media and health are not the records' business
        st, _, body = b.get(f"/stream/{x}")
        assert st == 200 and body == (clib / "a.mp3").read_bytes()
        h = tf.wait_for(lambda: (lambda d: d if d["postgres"]["status"] == "degraded" else None)(a.health()),
                        10, what="health saying degraded")
        assert h["status"] == "ok" and h["postgres"]["reason"]
        cp = a.talasctl("--json", "status", timeout=20)
        c = json.loads(cp.stdout)["master"]["cluster"]
        assert c["postgres"] == "degraded" and c["redis"] == "ok" and c["status"] == "degraded", c
        # the master's check of a configuration needs no database
        cp = subprocess.run([str(tf.TALAS_MASTER), "-t", "-c", str(a.config_path)], capture_output=True,
                            text=True, timeout=30)
        assert cp.returncode == 0, cp.stderr
    finally:
        postgres.start()
    # back without restarting the nodes
    tf.wait_for(lambda: cf.run(one(a, "max", add(pl, x)))["success"], 30, interval=0.2,
                what="AddToPlaylist on A to succeed again")
    tf.wait_for(lambda: playlist(b, pl)[0] == 200, 30, interval=0.2, what="B to read the playlist again")
    assert tracks_of(b, pl)[0] == x


def test_newer_schema_is_refused_with_a_reason(cluster, postgres):
    a, b, dbname = cluster
    x = a.ids["Cluster A"]
    postgres.psql(dbname, "UPDATE talas_schema SET version = version + 1")
    a.stop()
    a.start()
    r = cf.run(one(a, "ned", add("newer", x)))
    assert r["success"] is False and r["error"].startswith("playlists unavailable: "), r
    assert "schema" in r["error"]
    st, doc = playlist(a, "newer")
    assert st == 503 and doc["error"]["code"] == "store_unavailable"
    why = (f"refusing the record store: the schema is at version {SCHEMA + 1}, newer than this build knows "
           f"({SCHEMA})")
    log = tf.wait_for(lambda: (lambda t: t if why in t else None)(tf.read_text(a.error_log, limit=10 ** 7)), 10,
                      what="the refusal in the error log")
    assert log.count(why) <= 2  # once per worker, whatever the retries
    assert a.health()["postgres"]["status"] == "degraded"
    # talasctl says so too, and leaves a newer schema alone
    r = a.talasctl("db", "status")
    assert r.returncode == 1 and "newer than this build knows" in r.stdout, (r.stdout, r.stderr)
    r = a.talasctl("db", "migrate")
    assert r.returncode == 1 and "newer than this build knows" in r.stderr
    assert postgres.psql(dbname, "SELECT version FROM talas_schema") == [[str(SCHEMA + 1)]]


def test_talasctl_users_reaches_the_cluster_playlists(cluster):
    a, b, _ = cluster
    x = a.ids["Cluster A"]

    async def go():
        for i in range(2):
            assert (await one((a, b)[i], "pat", add(f"pat-{i}", x)))["success"]
        assert (await one(b, "quinn", add("quinn-0", x)))["success"]
    cf.run(go())
    r = a.talasctl("--json", "users", "data", "ls", "pat")
    assert r.returncode == 0, r.stderr
    kinds = json.loads(r.stdout)["kinds"]
    assert kinds["playlists"]["count"] == 2 and kinds["playlists"]["bytes"] > 0
    r = b.talasctl("--json", "users", "ls")
    assert r.returncode == 0, r.stderr
    users = {u["user"]: u["playlists"] for u in json.loads(r.stdout)["users"]}
    assert users.get("pat") == 2 and users.get("quinn") == 1
    r = b.talasctl("--json", "users", "data", "purge", "pat", "--kind", "playlists")
    assert r.returncode == 0 and json.loads(r.stdout)["removed"]["playlists"] == 2, r.stderr
    assert playlist(a, "pat-0")[0] == 404 and playlist(a, "quinn-0")[0] == 200
