"""Timed comments on tracks.

Against a real talas-master (auth.required, tokens minted with PyJWT) on a
library generated with ffmpeg, with real clients (HTTP, python3-websockets):

- POST /api/tracks/{id}/comments by the token's user; PATCH and DELETE
  /api/comments/{id} by the author or the backend key, 403 for anyone
  else; threads (a reply to a reply joins its thread; deleting the first
  comment deletes its replies), listed by at_ms, with the comments of the
  song's other versions marked with their track_id and version;
- every refusal with its status and JSON error;
- hostile bodies stored and given back byte for byte (HTML, an RTL
  override), an overlong UTF-8 sequence refused as invalid, NUL refused;
- comments survive a worker killed with SIGKILL and a restart;
- TrackCommented reaches the /api/ws clients subscribed with that track's
  track_id filter on two workers (each connection's worker pid checked),
  with its delivery time printed, and none of the clients subscribed to
  another track on those same workers; a song_id filter follows every
  version of a song;
- comments.max_per_track: the next POST is refused with 429
  quota_exceeded naming the key, replies count, a deletion makes room, and
  concurrent posts from many clients store exactly the cap (LMDB: one
  writer);
- replies posted one after the other on fresh connections (to either
  worker) list in the order they were posted, each stamped after the
  track's latest comment by the store;
- cluster mode: a comment posted on node A is listed on node B (the
  PostgreSQL store), replies posted alternately on A and B list in the
  order they were posted, and posts racing on both nodes store exactly
  the cap (an advisory lock per track in the schema's function).
"""

import asyncio
import json
import os
import signal
import threading
import time

import pytest

import auth_keys as ak
import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

DURATION_S = 4


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("commentkeys"))


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    d = tmp_path_factory.mktemp("commentlib")
    tf.make_track(d / "take v1.mp3", "Take v1", seconds=DURATION_S, freq=300)
    tf.make_track(d / "take v2.mp3", "Take v2", seconds=DURATION_S, freq=350)
    tf.make_track(d / "elsewhere.mp3", "Elsewhere", seconds=DURATION_S, freq=400)
    return d


def serve(workdir, clib, keys, extra=""):
    """A generator for a module fixture: a server on CLIB, auth required with
    KEYS, EXTRA settings, its tracks by title in srv.ids; killed after."""
    srv = tf.TalasServer(workdir, [clib], workers=2)
    ak.configure(srv, keys, extra)
    srv.start()
    srv.ids = ak.tracks_by_title(srv)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="module")
def csrv(tmp_path_factory, clib, keys):
    yield from serve(tmp_path_factory.mktemp("comments"), clib, keys)


def token(srv, sub, track=None):
    return ak.pyjwt_token(srv.keys, "HS256", ak.claims(track, sub=sub), kid="k2")


def auth(srv, user):
    if user is None:
        return {}
    if user == "backend":
        return dict(srv.backend)
    return {"Authorization": f"Bearer {token(srv, user)}"}


def call(srv, method, path, user, doc=None):
    h = auth(srv, user)
    body = None
    if doc is not None:
        h["Content-Type"] = "application/json"
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    st, _, raw = srv.get(path, method=method, headers=h, body=body)
    return st, json.loads(raw) if raw else None


def post(srv, track, user, doc):
    return call(srv, "POST", f"/api/tracks/{track}/comments", user, doc)


def listing(srv, track, user="reader"):
    st, doc = call(srv, "GET", f"/api/tracks/{track}/comments", user)
    assert st == 200, doc
    return doc


def all_comments(doc):
    out = []
    for t in doc["threads"]:
        out.append(t)
        out.extend(t["replies"])
    return out


def test_crud_with_author_checks(csrv):
    tid = csrv.ids["Take v1"]["id"]
    st, c = post(csrv, tid, "alice", {"at_ms": 1000, "body": "nice bass here"})
    assert st == 201, c
    assert c["user_id"] == "alice" and c["at_ms"] == 1000 and c["body"] == "nice bass here"
    assert c["track_id"] == tid and c["parent_id"] is None and c["edited_ms"] is None
    cid = c["comment_id"]
    assert [x["comment_id"] for x in all_comments(listing(csrv, tid))] == [cid]

    st, e = call(csrv, "PATCH", f"/api/comments/{cid}", "bob", {"body": "mine now"})
    assert st == 403 and e["error"]["code"] == "forbidden"
    st, e = call(csrv, "DELETE", f"/api/comments/{cid}", "bob")
    assert st == 403 and e["error"]["code"] == "forbidden"
    st, e = call(csrv, "PATCH", f"/api/comments/{cid}", None, {"body": "x"})
    assert st == 401
    st, c2 = call(csrv, "PATCH", f"/api/comments/{cid}", "alice", {"body": "nicer bass"})
    assert st == 200 and c2["body"] == "nicer bass" and c2["edited_ms"] is not None
    st, c3 = call(csrv, "PATCH", f"/api/comments/{cid}", "backend", {"body": "moderated"})
    assert st == 200 and c3["body"] == "moderated" and c3["user_id"] == "alice"
    got = all_comments(listing(csrv, tid))
    assert [(x["comment_id"], x["body"]) for x in got] == [(cid, "moderated")]
    st, d = call(csrv, "DELETE", f"/api/comments/{cid}", "alice")
    assert st == 200 and d["deleted"] is True
    assert all_comments(listing(csrv, tid)) == []
    st, e = call(csrv, "DELETE", f"/api/comments/{cid}", "alice")
    assert st == 404 and e["error"]["code"] == "not_found"
    # the backend deletes anyone's
    st, c = post(csrv, tid, "carol", {"at_ms": 0, "body": "first second"})
    st, d = call(csrv, "DELETE", f"/api/comments/{c['comment_id']}", "backend")
    assert st == 200


def test_threads_by_time_and_versions(csrv):
    v1, v2 = csrv.ids["Take v1"]["id"], csrv.ids["Take v2"]["id"]
    assert csrv.get_json(f"/api/tracks/{v1}")["song_id"] == csrv.get_json(f"/api/tracks/{v2}")["song_id"]
    st, late = post(csrv, v1, "ann", {"at_ms": 3000, "body": "late"})
    st, early = post(csrv, v1, "ben", {"at_ms": 500, "body": "early"})
    st, r1 = post(csrv, v1, "ben", {"at_ms": 3100, "body": "reply", "parent_id": late["comment_id"]})
    assert st == 201 and r1["parent_id"] == late["comment_id"]
    st, r2 = post(csrv, v1, "ann", {"at_ms": 3200, "body": "reply to reply", "parent_id": r1["comment_id"]})
    assert st == 201 and r2["parent_id"] == late["comment_id"]  # one level: joins the thread
    st, other = post(csrv, v2, "cid", {"at_ms": 1500, "body": "on v2"})
    assert st == 201
    doc = listing(csrv, v1)
    assert [t["comment_id"] for t in doc["threads"]] == [early["comment_id"], other["comment_id"],
                                                        late["comment_id"]]
    assert [r["comment_id"] for r in doc["threads"][2]["replies"]] == [r1["comment_id"], r2["comment_id"]]
    marks = {t["comment_id"]: (t["track_id"], t["version"]) for t in doc["threads"]}
    assert marks[other["comment_id"]] == (v2, "v2") and marks[early["comment_id"]] == (v1, "v1")
    # from v2, the same threads
    assert [t["comment_id"] for t in listing(csrv, v2)["threads"]] == [t["comment_id"] for t in doc["threads"]]
    # deleting the first comment of a thread deletes its replies
    st, _ = call(csrv, "DELETE", f"/api/comments/{late['comment_id']}", "ann")
    assert st == 200
    ids = [c["comment_id"] for c in all_comments(listing(csrv, v1))]
    assert late["comment_id"] not in ids and r1["comment_id"] not in ids and r2["comment_id"] not in ids
    for c in (early, other):
        call(csrv, "DELETE", f"/api/comments/{c['comment_id']}", "backend")


def test_replies_list_in_the_order_they_were_posted(csrv):
    # Each reply is posted once the previous one was answered, on a fresh
    # connection, so to either of the two workers: many land in the same
    # millisecond as the previous one, stamped by the other worker. The
    # store stamps each after the track's latest, and the listing keeps
    # the order they were posted in.
    tid = csrv.ids["Elsewhere"]["id"]
    st, root = post(csrv, tid, "ann", {"at_ms": 100, "body": "root"})
    assert st == 201, root
    h = {**auth(csrv, "ben"), "Content-Type": "application/json"}
    posted, stamps = [], []
    for i in range(40):
        body = json.dumps({"at_ms": 200, "body": f"reply {i}", "parent_id": root["comment_id"]}).encode()
        st, _, raw = csrv.get(f"/api/tracks/{tid}/comments", method="POST", headers=h, body=body)
        assert st == 201, raw
        c = json.loads(raw)
        posted.append(c["comment_id"])
        stamps.append(c["created_ms"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
    doc = listing(csrv, tid)
    assert [t["comment_id"] for t in doc["threads"]] == [root["comment_id"]]
    got = doc["threads"][0]["replies"]
    assert [r["comment_id"] for r in got] == posted
    assert [r["created_ms"] for r in got] == stamps  # the response gave the time stored
    st, _ = call(csrv, "DELETE", f"/api/comments/{root['comment_id']}", "backend")
    assert st == 200


REFUSALS = [
    # (what, user, body bytes or doc, status, code)
    ("no token", None, {"at_ms": 1, "body": "x"}, 401, "unauthorized"),
    ("backend key posts", "backend", {"at_ms": 1, "body": "x"}, 403, "forbidden"),
    ("empty body", "u", {"at_ms": 1, "body": ""}, 400, "empty_body"),
    ("white space only", "u", {"at_ms": 1, "body": " \n\t "}, 400, "empty_body"),
    ("no body", "u", {"at_ms": 1}, 400, "empty_body"),
    ("too long", "u", {"at_ms": 1, "body": "é" * 1000 + "x"}, 413, "comment_too_long"),
    ("overlong UTF-8", "u", b'{"at_ms": 1, "body": "\xc0\xafetc"}', 400, "invalid_utf8"),
    ("NUL", "u", b'{"at_ms": 1, "body": "a\\u0000b"}', 400, "nul_character"),
    ("negative at_ms", "u", {"at_ms": -1, "body": "x"}, 400, "at_out_of_range"),
    ("at_ms past the end", "u", {"at_ms": DURATION_S * 1000 + 1000, "body": "x"}, 400, "at_out_of_range"),
    ("at_ms missing", "u", {"body": "x"}, 400, "invalid_parameter"),
    ("at_ms not an integer", "u", {"at_ms": 1.5, "body": "x"}, 400, "invalid_parameter"),
    ("unknown member", "u", {"at_ms": 1, "body": "x", "color": "red"}, 400, "invalid_parameter"),
    ("unknown parent", "u", {"at_ms": 1, "body": "x", "parent_id": "AAAAAAAAAAAAAAAA"}, 400, "unknown_parent"),
    ("not JSON", "u", b"{", 400, "invalid_json"),
]


@pytest.mark.parametrize("what,user,doc,status,code", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(csrv, what, user, doc, status, code):
    tid = csrv.ids["Take v1"]["id"]
    before = len(all_comments(listing(csrv, tid)))
    st, e = post(csrv, tid, user, doc)
    assert (st, e["error"]["code"]) == (status, code), e
    assert e["error"]["message"]
    assert len(all_comments(listing(csrv, tid))) == before


def test_more_refusals(csrv):
    v1, other = csrv.ids["Take v1"]["id"], csrv.ids["Elsewhere"]["id"]
    # the body limit is comments.max_body bytes, not characters: 2000 bytes pass
    st, ok = post(csrv, v1, "u", {"at_ms": 1, "body": "é" * 1000})
    assert st == 201
    st, e = post(csrv, other, "u", {"at_ms": 1, "body": "x", "parent_id": ok["comment_id"]})
    assert st == 400 and e["error"]["code"] == "parent_elsewhere"
    st, e = post(csrv, "AAAAAAAAAAAAAAAA", "u", {"at_ms": 1, "body": "x"})
    assert st == 404 and e["error"]["code"] == "not_found"
    st, e = call(csrv, "PATCH", "/api/comments/AAAAAAAAAAAAAAAA", "u", {"body": "x"})
    assert st == 404 and e["error"]["code"] == "not_found"
    st, e = call(csrv, "PATCH", f"/api/comments/{ok['comment_id']}", "u", {"body": ""})
    assert st == 400 and e["error"]["code"] == "empty_body"
    st, e = call(csrv, "PUT", f"/api/comments/{ok['comment_id']}", "u", {"body": "x"})
    assert st == 405
    # a media token for another track cannot post here
    h = {"Authorization": f"Bearer {token(csrv, 'u', track=other)}", "Content-Type": "application/json"}
    st, _, raw = csrv.get(f"/api/tracks/{v1}/comments", method="POST", headers=h,
                          body=json.dumps({"at_ms": 1, "body": "x"}).encode())
    assert st == 403 and json.loads(raw)["error"]["code"] == "forbidden"
    # reading needs a token or the key (auth.required)
    st, e = call(csrv, "GET", f"/api/tracks/{v1}/comments", None)
    assert st == 401
    call(csrv, "DELETE", f"/api/comments/{ok['comment_id']}", "backend")


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\u202eevil\u202c right-to-left override",
    "quote \" backslash \\ slash / tab\t newline\n",
    "emoji \U0001F3B8 and CJK 音楽 and ZWJ \u200d",
    "&lt;already escaped&gt; &amp;",
]


def test_hostile_bodies_are_stored_exactly(csrv):
    tid = csrv.ids["Elsewhere"]["id"]
    ids = {}
    for i, body in enumerate(HOSTILE):
        st, c = post(csrv, tid, "mallory", {"at_ms": 100 * i, "body": body})
        assert st == 201 and c["body"] == body
        ids[c["comment_id"]] = body
    got = {c["comment_id"]: c["body"] for c in all_comments(listing(csrv, tid))}
    for cid, body in ids.items():
        assert got[cid].encode() == body.encode()
    # written JSON-escaped: no raw control characters in the answer
    st, _, raw = csrv.get(f"/api/tracks/{tid}/comments", headers=auth(csrv, "r"))
    assert b"\t" not in raw and b"\n" not in raw.rstrip(b"\n"), raw
    assert b"tab\\t newline\\n" in raw, raw
    for cid in ids:
        call(csrv, "DELETE", f"/api/comments/{cid}", "backend")


def test_comments_survive_a_killed_worker_and_a_restart(csrv):
    tid = csrv.ids["Take v2"]["id"]
    st, c = post(csrv, tid, "dora", {"at_ms": 2500, "body": "keep me"})
    assert st == 201
    pids = csrv.worker_pids()
    os.kill(pids[0], signal.SIGKILL)
    csrv.wait_worker_pids(2, exclude={pids[0]})
    for _ in range(6):  # whichever worker answers
        assert c["comment_id"] in [x["comment_id"] for x in all_comments(listing(csrv, tid))]
    csrv.stop()
    csrv.start()
    got = [x for x in all_comments(listing(csrv, tid)) if x["comment_id"] == c["comment_id"]]
    assert got and got[0]["body"] == "keep me" and got[0]["at_ms"] == 2500
    call(csrv, "DELETE", f"/api/comments/{c['comment_id']}", "backend")


# ------------------------------------------------------------ the cap

CAP = 3


def race(posts):
    """Runs the (srv, track, user, doc) POSTs at once, one thread each;
    their statuses."""
    statuses = [None] * len(posts)
    go = threading.Barrier(len(posts))

    def run(i):
        go.wait()
        statuses[i] = post(*posts[i])[0]
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


@pytest.fixture(scope="module")
def capsrv(tmp_path_factory, clib, keys):
    yield from serve(tmp_path_factory.mktemp("commentcap"), clib, keys, f"comments:\n  max_per_track: {CAP}\n")


def test_max_per_track(capsrv):
    v1, v2 = capsrv.ids["Take v1"]["id"], capsrv.ids["Take v2"]["id"]
    st, first = post(capsrv, v1, "ann", {"at_ms": 10, "body": "one"})
    assert st == 201
    st, _ = post(capsrv, v1, "ben", {"at_ms": 20, "body": "a reply counts",
                                     "parent_id": first["comment_id"]})
    assert st == 201
    st, _ = post(capsrv, v1, "ann", {"at_ms": 30, "body": "three"})
    assert st == 201
    st, e = post(capsrv, v1, "cid", {"at_ms": 40, "body": "four"})
    assert st == 429, e
    assert e["error"]["code"] == "quota_exceeded" and e["error"]["limit"] == "comments.max_per_track"
    assert e["error"]["max"] == CAP and "comments.max_per_track" in e["error"]["message"]
    assert len(all_comments(listing(capsrv, v1))) == CAP
    # a reply is refused the same way; editing stays possible
    st, e = post(capsrv, v1, "cid", {"at_ms": 40, "body": "r", "parent_id": first["comment_id"]})
    assert st == 429 and e["error"]["code"] == "quota_exceeded"
    st, _ = call(capsrv, "PATCH", f"/api/comments/{first['comment_id']}", "ann", {"body": "one, edited"})
    assert st == 200
    # the cap is per track: the song's other version takes its own
    st, other = post(capsrv, v2, "cid", {"at_ms": 40, "body": "on v2"})
    assert st == 201
    # deleting the thread (two comments) makes room for two
    st, _ = call(capsrv, "DELETE", f"/api/comments/{first['comment_id']}", "ann")
    assert st == 200
    assert [post(capsrv, v1, "dan", {"at_ms": 50, "body": f"again {i}"})[0] for i in range(3)] == [201, 201, 429]
    for c in all_comments(listing(capsrv, v1)):
        call(capsrv, "DELETE", f"/api/comments/{c['comment_id']}", "backend")


def test_max_per_track_under_a_race(capsrv):
    tid = capsrv.ids["Elsewhere"]["id"]
    statuses = race([(capsrv, tid, f"racer{i}", {"at_ms": i, "body": f"race {i}"}) for i in range(12)])
    assert sorted(statuses) == [201] * CAP + [429] * (12 - CAP), statuses
    assert len(all_comments(listing(capsrv, tid))) == CAP


# ------------------------------------------------------------ WebSocket

async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def command(ws, cmd):
    await ws.send(json.dumps(cmd))
    while True:
        m = await recv_json(ws)
        if m.get("event") == "CommandResponse" and m["command_id"] == cmd["command_id"]:
            return m


async def connect(srv, user, not_pid=None, tries=60):
    for _ in range(tries):
        ws = await websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?token={token(srv, user)}",
                                      max_size=None)
        st = (await command(ws, {"command": "GetStatus", "command_id": "st"}))["data"]
        if not_pid is None or st["worker_pid"] != not_pid:
            return ws, st["worker_pid"]
        await ws.close()
    pytest.fail("could not reach a second worker")


async def next_commented(ws):
    while True:
        m = await recv_json(ws)
        if m.get("event") == "TrackCommented":
            return m


async def timed_commented(ws):
    """The next TrackCommented on WS, and when it arrived (wall clock, ms)."""
    ev = await next_commented(ws)
    return ev, time.time() * 1000


async def subscribe(ws, filters):
    r = await command(ws, {"command": "Subscribe", "command_id": "s", "events": ["TrackCommented"],
                           "filters": filters})
    assert r["success"], r


def test_track_commented_reaches_only_the_track_subscribers(csrv):
    t1, t2 = csrv.ids["Take v1"]["id"], csrv.ids["Elsewhere"]["id"]
    song = csrv.get_json(f"/api/tracks/{t1}", headers=csrv.backend)["song_id"]
    assert song

    async def scenario():
        # on each of the two workers, one connection follows t1 and one t2:
        # whichever worker serves the POST, one t1 follower is on the other
        # worker (the event crossed the master), and each t2 follower shares
        # a worker with a t1 follower (the event was there, and filtered)
        a, pid_a = await connect(csrv, "wa")
        b, pid_b = await connect(csrv, "wb", not_pid=pid_a)
        na, pid_na = await connect(csrv, "na")
        while pid_na != pid_a:
            await na.close()
            na, pid_na = await connect(csrv, "na", not_pid=pid_b)
        nb, pid_nb = await connect(csrv, "nb", not_pid=pid_a)
        assert pid_a != pid_b and pid_na == pid_a and pid_nb == pid_b
        conns = (a, b, na, nb)
        try:
            for ws, t in ((a, t1), (b, t1), (na, t2), (nb, t2)):
                await subscribe(ws, {"track_id": t})
            waits = [asyncio.create_task(timed_commented(ws)) for ws in (a, b)]
            sent = time.time() * 1000
            st, c1 = await asyncio.to_thread(post, csrv, t1, "wa", {"at_ms": 42, "body": "<b>on t1</b>"})
            assert st == 201
            for (ev, got), who, pid in zip(await asyncio.gather(*waits), ("a", "b"), (pid_a, pid_b)):
                assert ev == {"event": "TrackCommented", "track_id": t1, "song_id": song,
                              "comment_id": c1["comment_id"], "action": "created", "user_id": "wa",
                              "at_ms": 42, "parent_id": None, "body": "<b>on t1</b>"}
                # the figure asked for is 100 ms; it is printed, and only a
                # bound that no working server misses is asserted
                # created_ms is stamped before the store's write (an LMDB
                # commit, synced): both figures are upper bounds of delivery
                print(f"TrackCommented to {who} (worker {pid}): {got - c1['created_ms']:.3f} ms after "
                      f"created_ms, {got - sent:.3f} ms after the POST was sent")
                assert got - sent < 5000
            # the t2 followers' first TrackCommented is t2's: t1's reached
            # their workers and was filtered out
            waits = [asyncio.create_task(next_commented(ws)) for ws in (na, nb)]
            st, c2 = await asyncio.to_thread(post, csrv, t2, "wb", {"at_ms": 7, "body": "on t2"})
            assert st == 201
            for ev in await asyncio.gather(*waits):
                assert ev["track_id"] == t2 and ev["comment_id"] == c2["comment_id"], ev
            st, _ = await asyncio.to_thread(call, csrv, "PATCH", f"/api/comments/{c1['comment_id']}", "wa",
                                            {"body": "edited"})
            ev = await next_commented(a)
            assert (ev["action"], ev["body"]) == ("edited", "edited")
            st, _ = await asyncio.to_thread(call, csrv, "DELETE", f"/api/comments/{c1['comment_id']}", "backend")
            ev = await next_commented(a)
            assert ev["action"] == "deleted" and "body" not in ev and ev["user_id"] == "wa"
            await asyncio.to_thread(call, csrv, "DELETE", f"/api/comments/{c2['comment_id']}", "backend")
            # and b saw t1's edit and deletion, never anything of t2
            for action in ("edited", "deleted"):
                ev = await next_commented(b)
                assert (ev["track_id"], ev["action"]) == (t1, action), ev
        finally:
            for ws in conns:
                await ws.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_track_commented_song_filter_follows_the_versions(csrv):
    v1, v2, other = csrv.ids["Take v1"]["id"], csrv.ids["Take v2"]["id"], csrv.ids["Elsewhere"]["id"]
    song = csrv.get_json(f"/api/tracks/{v1}", headers=csrv.backend)["song_id"]

    async def scenario():
        ws, _ = await connect(csrv, "follower")
        try:
            await subscribe(ws, {"song_id": song})
            posted = []
            for t in (other, v2, v1):
                st, c = await asyncio.to_thread(post, csrv, t, "poster", {"at_ms": 5, "body": "v"})
                assert st == 201
                posted.append(c)
            got = [await next_commented(ws) for _ in range(2)]
            assert [(e["track_id"], e["song_id"]) for e in got] == [(v2, song), (v1, song)]
            for c in posted:
                await asyncio.to_thread(call, csrv, "DELETE", f"/api/comments/{c['comment_id']}", "backend")
            # deletions: the two of the song, never the other track's
            got = [await next_commented(ws) for _ in range(2)]
            assert {e["comment_id"] for e in got} == {posted[1]["comment_id"], posted[2]["comment_id"]}
        finally:
            await ws.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


# ------------------------------------------------------------ cluster

CLUSTER_CAP = 64  # a thread of 61 below, and a race of 80 posts past it

def test_cluster_comment_on_a_is_listed_on_b(talas_server, clib, keys, redis_server, pg_database):
    nodes = []
    for name in ("node-a", "node-b"):
        srv = talas_server([clib], start=False, name=name, workers=2)
        ak.configure(srv, keys, cf.cluster_yaml(name, redis_server.address, pg_database[1]).rstrip("\n") +
                  f"\ncomments:\n  max_per_track: {CLUSTER_CAP}\n")
        r = srv.talasctl("db", "migrate")
        assert r.returncode == 0, (r.stdout, r.stderr)
        srv.start()
        tf.wait_for(lambda: cf.engines_ready(srv), 15, what=f"{name}: engines")
        srv.ids = ak.tracks_by_title(srv)
        nodes.append(srv)
    a, b = nodes
    tid = a.ids["Take v1"]["id"]
    assert b.ids["Take v1"]["id"] == tid
    st, c = post(a, tid, "alice", {"at_ms": 1234, "body": "\u202e<script>x</script>"})
    assert st == 201, c
    got = [x for x in all_comments(listing(b, tid)) if x["comment_id"] == c["comment_id"]]
    assert got and got[0]["body"] == "\u202e<script>x</script>" and got[0]["at_ms"] == 1234
    # replies posted one after the other, alternately on A and B, list in
    # the order they were posted (the schema's function stamps each after
    # the track's latest)
    posted = []
    for i in range(60):
        st, r = post((a, b)[i % 2], tid, "ben", {"at_ms": 1300, "body": f"r{i}", "parent_id": c["comment_id"]})
        assert st == 201, r
        posted.append((r["comment_id"], r["created_ms"]))
    thread = [t for t in listing(a, tid)["threads"] if t["comment_id"] == c["comment_id"]][0]
    assert [(r["comment_id"], r["created_ms"]) for r in thread["replies"]] == posted
    assert len({ms for _, ms in posted}) == len(posted)
    # the author check holds on B as well
    st, e = call(b, "PATCH", f"/api/comments/{c['comment_id']}", "bob", {"body": "x"})
    assert st == 403 and e["error"]["code"] == "forbidden"
    st, _ = call(b, "DELETE", f"/api/comments/{c['comment_id']}", "alice")
    assert st == 200
    assert c["comment_id"] not in [x["comment_id"] for x in all_comments(listing(a, tid))]
    # comments.max_per_track holds across nodes: posts racing on both
    # store exactly the cap, and the rest are refused with 429
    other = a.ids["Elsewhere"]["id"]
    statuses = race([(n, other, f"racer{i}", {"at_ms": i, "body": f"race {i}"})
                     for i in range(40) for n in (a, b)])
    assert sorted(statuses) == [201] * CLUSTER_CAP + [429] * (80 - CLUSTER_CAP), statuses
    assert len(all_comments(listing(b, other))) == CLUSTER_CAP
