"""Users share one server: what one of them stores cannot take the others'
room, nor touch their playlists.

Against a real talas-master with auth.required, a 64MiB map and small
quotas, with real clients (python3-websockets, tokens minted with PyJWT):

- playlists have owners: another user can neither add to nor remove from
  one, until its owner (over /api/ws) or the backend (POST /api/events)
  shares it with them; in local mode (LMDB) and in cluster mode (a real
  PostgreSQL, the record store of cluster.postgres);
- a flood of fresh playlists from many users over many connections is
  refused by the store, each refusal naming its limit
  (playlists.max_per_user, playlists.max_total, storage.user_data_max),
  while other users keep playing, editing their playlists, opening
  streaming sessions, the library keeps scanning and the transcode cache
  keeps filling; the error log does not grow with the refusals;
- talasctl users data ls / purge count and remove one flooder's data and
  nobody else's; talasctl storage compact gives the room back, refused
  while the master runs.
"""

import asyncio
import json
import secrets
import time

import pytest

import auth_keys as ak
import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

MAX_PER_USER = 20
MAX_TOTAL = 150
MAX_EDITORS = 3


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("tenancykeys"))


@pytest.fixture(scope="module")
def tlib(tmp_path_factory):
    d = tmp_path_factory.mktemp("tenancylib")
    tf.make_track(d / "a.mp3", "Tenancy A", seconds=4, freq=300)
    tf.make_track(d / "b.mp3", "Tenancy B", seconds=4, freq=500)
    return d


CAPS = {"estimated_bandwidth_kbps": 1000, "buffer_duration_ms": 5000, "connection_type": "Wifi",
        "device_type": "Desktop", "preferred_quality": None, "adaptive_enabled": True}


def copy_lib(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def make_server(srv, keys, playlists_yaml, map_size="64MiB", extra="", before_start=None):
    """Configures SRV (a TalasServer not started yet) and starts it
    (BEFORE_START(srv), when given, runs once its configuration is written)."""
    text = ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False))
    assert "  map_size: 256MiB\n" in text
    text = text.replace("  map_size: 256MiB\n", f"  map_size: {map_size}\n" + extra)
    # the rate limits (per connection, per user) are not what this file
    # tests: the store's limits must hold against any number of commands
    text += "ws:\n  rate_limit: 1000000\n  user_rate_limit: 0\n" + playlists_yaml
    srv.write_config(text=text)
    if before_start is not None:
        before_start(srv)
    srv.start(wait_scan=True)
    srv.keys = keys
    srv.backend = {"Authorization": f"Bearer {keys.backend_key}"}
    srv.ids = {t["title"]: t["id"] for t in tracks(srv)}
    return srv


def tracks(srv):
    st, _, body = srv.get("/api/tracks?limit=1000", headers=srv.backend)
    assert st == 200, body
    return json.loads(body)["tracks"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tlib, keys):
    s = make_server(tf.TalasServer(tmp_path_factory.mktemp("tenancy"), [tlib]), keys,
                    f"playlists:\n  max_per_user: {MAX_PER_USER}\n  max_total: {MAX_TOTAL}\n"
                    f"  max_editors: {MAX_EDITORS}\n  max_tracks: 50\n")
    try:
        yield s
    finally:
        s.kill()


@pytest.fixture(params=["local", "cluster"])
def owners_srv(request, srv, tmp_path, tlib, keys):
    """The module's server (LMDB), or a node of its own in cluster mode
    whose playlists live in a real PostgreSQL (cluster_fixtures): the
    ownership test runs against both stores."""
    if request.param == "local":
        yield srv
        return
    cf.require_engines()
    redis = request.getfixturevalue("redis_server")
    _, conninfo = request.getfixturevalue("pg_database")

    def migrate(s):
        r = s.talasctl("db", "migrate")
        assert r.returncode == 0, r.stderr

    s = make_server(tf.TalasServer(tmp_path / "cluster", [tlib]), keys,
                    f"playlists:\n  max_per_user: {MAX_PER_USER}\n  max_total: {MAX_TOTAL}\n"
                    f"  max_editors: {MAX_EDITORS}\n  max_tracks: 50\n"
                    + cf.cluster_yaml("tenancy", redis.address, conninfo), before_start=migrate)
    try:
        yield s
    finally:
        s.kill()


def token(srv, sub, track=None, **kw):
    return ak.pyjwt_token(srv.keys, "HS256", ak.claims(track, sub=sub, **kw), kid="k2")


def ws_url(srv, user):
    return f"ws://127.0.0.1:{srv.port}/api/ws?token={token(srv, user)}"


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def command(ws, cmd, timeout=10):
    """Send CMD; its CommandResponse (events seen before it are dropped)."""
    await ws.send(json.dumps(cmd))
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if m.get("event") == "CommandResponse" and m["command_id"] == cmd["command_id"]:
            return m


def add(pl, track, cid=None):
    return {"command": "AddToPlaylist", "command_id": cid or secrets.token_hex(4), "playlist_id": pl,
            "track_id": track}


def remove(pl, track):
    return {"command": "RemoveFromPlaylist", "command_id": secrets.token_hex(4), "playlist_id": pl,
            "track_id": track}


def share(pl, users):
    return {"command": "PlaylistShared", "command_id": secrets.token_hex(4), "playlist_id": pl,
            "to_users": users}


def post_event(srv, event, **target):
    body = json.dumps(dict({"event": event}, **target)).encode()
    st, _, resp = srv.get("/api/events", method="POST", body=body,
                          headers=dict(srv.backend, **{"Content-Type": "application/json"}))
    return st, json.loads(resp)


def playlist(srv, pl, headers=None):
    st, _, body = srv.get(f"/api/playlists/{pl}", headers=headers or srv.backend)
    return st, json.loads(body)


def ctl_json(srv, *args):
    r = srv.talasctl("--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def log_lines(srv):
    return len(tf.read_text(srv.error_log, limit=10 ** 8).splitlines())


async def flood(srv, users, conns_per_user, per_conn, track):
    """Every user opens CONNS_PER_USER connections; each sends PER_CONN
    AddToPlaylist commands with fresh 128-byte playlist ids, all at once,
    then reads the answers. Returns the CommandResponses."""
    async def one(user):
        async with websockets.connect(ws_url(srv, user), max_size=None) as ws:
            cmds = [add(f"{user}-{secrets.token_hex(64)}"[:128], track, f"c{i}") for i in range(per_conn)]
            await asyncio.gather(*(ws.send(json.dumps(c)) for c in cmds))
            got = []
            while len(got) < per_conn:
                m = await recv_json(ws, 30)
                if m.get("event") == "CommandResponse":
                    got.append(m)
            return got
    results = await asyncio.gather(*(one(u) for u in users for _ in range(conns_per_user)))
    return [r for rs in results for r in rs]


# --------------------------------------------------------------- ownership

def test_playlists_have_owners(owners_srv):
    srv = owners_srv
    a, b = srv.ids["Tenancy A"], srv.ids["Tenancy B"]
    pl = f"mix-{secrets.token_hex(4)}"

    async def go():
        async with websockets.connect(ws_url(srv, "olivia")) as owner, \
                websockets.connect(ws_url(srv, "mallory")) as other, \
                websockets.connect(ws_url(srv, "carol")) as carol:
            r = await command(owner, add(pl, a))
            assert r["success"], r
            # another user can neither add nor remove
            r = await command(other, add(pl, b))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r
            r = await command(other, remove(pl, a))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r
            # nor share it with themselves
            r = await command(other, share(pl, ["mallory"]))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r
            st, doc = playlist(srv, pl)
            assert st == 200 and doc["owner"] == "olivia" and doc["editors"] == []
            assert [t["track_id"] for t in doc["tracks"]] == [a]

            # the owner shares it: the user is told, and may now change it
            r = await command(owner, share(pl, ["mallory"]))
            assert r["success"] and r["data"] == {"editors_added": 1}, r
            ev = await recv_json(other)
            assert ev == {"event": "PlaylistShared", "playlist_id": pl, "from_user": "olivia",
                          "to_users": ["mallory"]}
            r = await command(other, add(pl, b))
            assert r["success"] and r["data"] == {"position": 1}, r
            r = await command(other, remove(pl, a))
            assert r["success"] and r["data"] == {"position": 0}, r
            # an editor may not share it further
            r = await command(other, share(pl, ["carol"]))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r
            r = await command(carol, add(pl, a))
            assert r["success"] is False and r["error"].startswith("forbidden: "), r

            # the backend may share it: its PlaylistShared records carol
            st, body = post_event(srv, {"event": "PlaylistShared", "playlist_id": pl, "from_user": "olivia",
                                        "to_users": ["carol"]}, send_to_user="carol")
            assert st == 200 and body["editors_added"] == 1, body
            assert (await recv_json(carol))["event"] == "PlaylistShared"
            r = await command(carol, add(pl, a))
            assert r["success"], r
            # more editors than playlists.max_editors: refused, naming it
            r = await command(owner, share(pl, ["d1", "d2", "d3"]))
            assert r["success"] is False and "playlists.max_editors" in r["error"], r
            st, body = post_event(srv, {"event": "PlaylistShared", "playlist_id": pl, "from_user": "olivia",
                                        "to_users": ["d1", "d2"]})
            assert st == 429 and body["error"]["code"] == "quota_exceeded", body
            assert body["error"]["limit"] == "playlists.max_editors" and body["error"]["max"] == MAX_EDITORS

    run(go())
    st, doc = playlist(srv, pl)
    assert doc["owner"] == "olivia" and doc["editors"] == ["mallory", "carol"]
    assert [t["track_id"] for t in doc["tracks"]] == [b, a]
    # anyone with a valid token may read it; nobody without
    st, doc = playlist(srv, pl, headers={"Authorization": f"Bearer {token(srv, 'someone')}"})
    assert st == 200 and doc["owner"] == "olivia"
    st, _, _ = srv.get(f"/api/playlists/{pl}")
    assert st == 401
    # a backend event about a playlist Talas does not store is still published
    st, body = post_event(srv, {"event": "PlaylistShared", "playlist_id": "elsewhere", "from_user": "x",
                                "to_users": ["y"]})
    assert st == 200 and body["published"] and body["editors_added"] is None


# ------------------------------------------------------------------- flood

@pytest.fixture(scope="module")
def fsrv(tmp_path_factory, tlib, keys):
    lib = copy_lib(tlib, tmp_path_factory.mktemp("floodlib"))
    s = make_server(tf.TalasServer(tmp_path_factory.mktemp("flood"), [lib]), keys,
                    f"playlists:\n  max_per_user: {MAX_PER_USER}\n  max_total: {MAX_TOTAL}\n")
    try:
        yield s
    finally:
        s.kill()


def test_flood_is_refused_and_others_keep_working(fsrv, tmp_path):
    srv = fsrv
    a, b = srv.ids["Tenancy A"], srv.ids["Tenancy B"]

    async def victim_setup():
        async with websockets.connect(ws_url(srv, "victim")) as ws:
            r = await command(ws, add("victim-list", a))
            assert r["success"], r
    run(victim_setup())
    lines_before = log_lines(srv)

    # one user over 5 connections: stopped at playlists.max_per_user
    got = run(flood(srv, ["flood-0"], 5, 40, a))
    ok = [r for r in got if r["success"]]
    refused = [r for r in got if not r["success"]]
    assert len(ok) == MAX_PER_USER, len(ok)
    assert {r["error"] for r in refused} == {
        f"quota exceeded: limit playlists.max_per_user ({MAX_PER_USER}) reached"}

    # fifty connections of ten users: stopped at playlists.max_total
    users = [f"flood-{i}" for i in range(10)]
    got = run(flood(srv, users, 5, 40, a))
    ok2 = [r for r in got if r["success"]]
    errors = {r["error"] for r in got if not r["success"]}
    assert len(ok2) == MAX_TOTAL - 1 - MAX_PER_USER, len(ok2)  # victim-list, flood-0's
    assert f"quota exceeded: limit playlists.max_total ({MAX_TOTAL}) reached" in errors, errors
    assert errors <= {f"quota exceeded: limit playlists.max_total ({MAX_TOTAL}) reached",
                      f"quota exceeded: limit playlists.max_per_user ({MAX_PER_USER}) reached"}, errors
    n_refused = len(got) - len(ok2) + len(refused)
    assert n_refused > 1500

    # the others keep working: Play, their own playlist, a streaming session
    async def victim():
        async with websockets.connect(ws_url(srv, "victim")) as ws:
            r = await command(ws, add("victim-list", b))
            assert r["success"] and r["data"] == {"position": 1}, r
            r = await command(ws, {"command": "Play", "command_id": "p", "track_id": a})
            assert r["success"], r
            # a new playlist is refused to them too: the global cap holds
            r = await command(ws, add("victim-second", b))
            assert r["success"] is False and "playlists.max_total" in r["error"], r
    run(victim())
    body = json.dumps({"track_id": a, "client_capabilities": CAPS}).encode()
    st, _, resp = srv.get("/api/streaming/session", method="POST", body=body,
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Bearer {token(srv, 'victim', a)}"})
    assert st == 200, resp
    assert json.loads(resp)["session_id"]

    # a new file is scanned and listed
    tf.make_track(srv.library_paths[0] / "new.mp3", "Tenancy New", seconds=3, freq=700)
    r = srv.talasctl("scan")
    assert r.returncode == 0, r.stderr
    new = [t for t in tracks(srv) if t["title"] == "Tenancy New"]
    assert len(new) == 1

    # a transcode is cached: the second answer costs no encode
    path = f"/stream/{new[0]['id']}?profile=low&token={token(srv, 'victim', new[0]['id'])}"
    st, _, first = srv.get(path, timeout=60)
    assert st == 200 and len(first) > 10000
    time.sleep(1.5)  # workers flush their counters about once a second
    s0 = srv.get_json("/api/stats")["cache"]
    st, _, second = srv.get(path, timeout=60)
    assert st == 200 and second == first
    time.sleep(1.5)
    s1 = srv.get_json("/api/stats")["cache"]
    assert s1["transcodes_started"] == s0["transcodes_started"] and s1["hits"] > s0["hits"], (s0, s1)

    # thousands of refusals, a handful of log lines at most
    grown = log_lines(srv) - lines_before
    assert grown < 20, tf.read_text(srv.error_log)[-3000:]

    # the flood is over: one flooder's data is counted, then purged
    before = ctl_json(srv, "users", "data", "ls", "flood-0")
    assert before["kinds"]["playlists"]["count"] == MAX_PER_USER
    assert before["kinds"]["playlists"]["bytes"] > MAX_PER_USER * 128
    # another flooder that got some (which of the ten did is the race's)
    counts = {u: ctl_json(srv, "users", "data", "ls", u)["kinds"]["playlists"]["count"] for u in users[1:]}
    other = max(counts, key=counts.get)
    other_before = counts[other]
    assert other_before > 0 and sum(counts.values()) == len(ok2), counts
    listed = {u["user"]: u for u in ctl_json(srv, "users", "ls")["users"]}
    assert listed["flood-0"]["playlists"] == MAX_PER_USER and listed["victim"]["playlists"] == 1
    assert listed["victim"]["playback"] == 1
    purged = ctl_json(srv, "users", "data", "purge", "flood-0", "--kind", "playlists")
    assert purged == {"user": "flood-0", "removed": {"playlists": MAX_PER_USER}}
    assert ctl_json(srv, "users", "data", "ls", "flood-0")["kinds"]["playlists"] == {"count": 0, "bytes": 0}
    assert ctl_json(srv, "users", "data", "ls", other)["kinds"]["playlists"]["count"] == other_before
    st, doc = playlist(srv, "victim-list")
    assert st == 200 and doc["owner"] == "victim" and [t["track_id"] for t in doc["tracks"]] == [a, b]
    # the room is free again for new playlists
    async def again():
        async with websockets.connect(ws_url(srv, "victim")) as ws:
            r = await command(ws, add("victim-second", b))
            assert r["success"], r
    run(again())


def test_purge_covers_sessions_and_settings(srv):
    """talasctl users data counts and purges every kind a user owns: the
    streaming sessions they created and their settings too, not only
    playlists; another user's are untouched."""
    a = srv.ids["Tenancy A"]
    hdr = {"Content-Type": "application/json"}
    body = json.dumps({"track_id": a, "client_capabilities": CAPS}).encode()
    for user in ("leaver", "leaver", "stayer"):
        st, _, resp = srv.get("/api/streaming/session", method="POST", body=body,
                              headers=dict(hdr, Authorization=f"Bearer {token(srv, user, a)}"))
        assert st == 200, resp
    for user in ("leaver", "stayer"):
        st, _, resp = srv.get(f"/api/users/{user}/settings", method="PUT",
                              body=b'{"share_listening":true}', headers=dict(srv.backend, **hdr))
        assert st == 200, resp

    kinds = ctl_json(srv, "users", "data", "ls", "leaver")["kinds"]
    assert kinds["sessions"]["count"] == 2 and kinds["sessions"]["bytes"] > 0, kinds
    assert kinds["settings"]["count"] == 1, kinds
    listed = {u["user"]: u for u in ctl_json(srv, "users", "ls")["users"]}
    assert listed["leaver"]["sessions"] == 2 and listed["stayer"]["settings"] == 1, listed

    purged = ctl_json(srv, "users", "data", "purge", "leaver")
    assert purged["removed"]["sessions"] == 2 and purged["removed"]["settings"] == 1, purged
    kinds = ctl_json(srv, "users", "data", "ls", "leaver")["kinds"]
    assert kinds["sessions"]["count"] == 0 and kinds["settings"]["count"] == 0, kinds
    st, _, resp = srv.get("/api/users/leaver/settings", headers=srv.backend)
    assert st == 200 and json.loads(resp)["share_listening"] is False, resp
    kinds = ctl_json(srv, "users", "data", "ls", "stayer")["kinds"]
    assert kinds["sessions"]["count"] == 1 and kinds["settings"]["count"] == 1, kinds


# ------------------------------------------------------ the user-data budget

def test_user_data_budget_keeps_the_map_for_the_rest(talas_server, tlib, keys, tmp_path):
    """Counts high, budget low (storage.user_data_max 64KiB): the budget
    refuses the flood, the map keeps its room; then the operator purges
    and compacts, which is refused while the master runs."""
    lib = copy_lib(tlib, tmp_path / "lib")
    srv = make_server(talas_server([lib], start=False, name="budget"), keys,
                      "playlists:\n  max_per_user: 100000\n  max_total: 1000000\n",
                      extra="  user_data_max: 64KiB\n")
    try:
        a = srv.ids["Tenancy A"]
        lines_before = log_lines(srv)
        got = run(flood(srv, [f"b-{i}" for i in range(5)], 4, 100, a))
        ok = [r for r in got if r["success"]]
        errors = {r["error"] for r in got if not r["success"]}
        assert errors == {"quota exceeded: limit storage.user_data_max (65536) reached"}, errors
        assert 30 < len(ok) < 1000, len(ok)
        assert log_lines(srv) - lines_before < 20

        async def others():
            async with websockets.connect(ws_url(srv, "listener")) as ws:
                r = await command(ws, {"command": "Play", "command_id": "p", "track_id": a})
                assert r["success"], r
        run(others())
        body = json.dumps({"track_id": a, "client_capabilities": CAPS}).encode()
        st, _, resp = srv.get("/api/streaming/session", method="POST", body=body,
                              headers=dict(srv.backend, **{"Content-Type": "application/json"}))
        assert st == 200, resp
        tf.make_track(lib / "c.mp3", "Tenancy C", seconds=3, freq=800)
        assert srv.talasctl("scan").returncode == 0
        assert any(t["title"] == "Tenancy C" for t in tracks(srv))

        # every flooder purged; compaction refused while the master runs
        removed = sum(ctl_json(srv, "users", "data", "purge", f"b-{i}")["removed"]["playlists"]
                      for i in range(5))
        assert removed == len(ok)
        r = srv.talasctl("storage", "compact")
        assert r.returncode == 1 and "talas-master" in r.stderr and "running" in r.stderr, r
        # without the master's socket and pid file, the store still sees
        # its workers holding the map
        sock = srv.storage_path / "talas.sock"
        hidden = [p for p in (srv.pid_file, srv.pid_file.with_suffix(".sock"), sock) if p.exists()]
        for p in hidden:
            p.rename(p.with_name(p.name + ".hidden"))
        r = srv.talasctl("storage", "compact")
        for p in hidden:
            p.with_name(p.name + ".hidden").rename(p)
        assert r.returncode == 1 and "open in another process" in r.stderr, r
        data = srv.storage_path / "data.mdb"
        size_running = data.stat().st_size
    finally:
        assert srv.stop() == 0

    r = srv.talasctl("--json", "storage", "compact")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["bytes_before"] == size_running and doc["bytes_after"] < doc["bytes_before"]
    assert data.stat().st_size == doc["bytes_after"]
    # the compacted storage serves again, catalog and all
    srv.start(wait_scan=True)
    try:
        assert {t["title"] for t in tracks(srv)} >= {"Tenancy A", "Tenancy C"}
        async def after():
            async with websockets.connect(ws_url(srv, "b-0")) as ws:
                r = await command(ws, add("fresh", a))
                assert r["success"], r
        run(after())
    finally:
        srv.kill()


# ---------------------------------------------------------- a full map

def test_full_map_answers_and_purge_recovers(talas_server, tlib, keys, tmp_path):
    """Listening sessions are not user data for the budget: a Play flood
    of many users fills a 2MiB map. Every failed write then answers
    "storage full" (one log line per worker, not one per command), and
    purging one user still works in a map with no free page left."""
    srv = make_server(talas_server([copy_lib(tlib, tmp_path / "lib")], start=False, name="full"), keys,
                      "", map_size="2MiB")
    a, b = srv.ids["Tenancy A"], srv.ids["Tenancy B"]
    users = [f"p{i:02d}-" + "x" * 100 for i in range(25)]
    lines_before = log_lines(srv)

    async def plays(user, n):
        async with websockets.connect(ws_url(srv, user), max_size=None) as ws:
            got = []
            for chunk in range(0, n, 50):
                cmds = [{"command": "Play", "command_id": f"c{i}", "track_id": (a, b)[i % 2]}
                        for i in range(chunk, chunk + 50)]
                await asyncio.gather(*(ws.send(json.dumps(c)) for c in cmds))
                while len(got) < chunk + 50:
                    m = await recv_json(ws, 30)
                    if m.get("event") == "CommandResponse":
                        got.append(m)
                if not got[-1]["success"]:
                    break
            return got

    async def flood_plays():
        return await asyncio.gather(*(plays(u, 2000) for u in users for _ in range(2)))

    got = [r for rs in run(flood_plays(), timeout=300) for r in rs]
    errors = {r["error"] for r in got if not r["success"]}
    assert "storage full: the change could not be stored" in errors, (len(got), errors)
    assert log_lines(srv) - lines_before <= 10, tf.read_text(srv.error_log)[-3000:]
    full = tf.read_text(srv.error_log)
    assert full.count("MDB_MAP_FULL") <= 4 and "write(s) failed so far" in full

    before = ctl_json(srv, "users", "data", "ls", users[0])["kinds"]["listening"]["count"]
    assert before > 0
    r = srv.talasctl("--json", "users", "data", "purge", users[0])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed"]["listening"] == before
    assert ctl_json(srv, "users", "data", "ls", users[0])["kinds"]["listening"]["count"] == 0
    assert ctl_json(srv, "users", "data", "ls", users[1])["kinds"]["listening"]["count"] > 0

    async def again():
        async with websockets.connect(ws_url(srv, users[0])) as ws:
            r = await command(ws, {"command": "Play", "command_id": "p", "track_id": a})
            assert r["success"], r
    run(again())
    srv.kill()
