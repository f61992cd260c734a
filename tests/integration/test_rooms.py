"""Listening rooms (issue 16): POST/GET /api/rooms and the room commands
and events of /api/ws, seen from real clients.

Real python3-websockets clients against a real talas-master with two
workers and auth.required (a connection's user is its token's sub). The
members of a room sit on different workers on purpose: the kernel picks a
connection's worker (SO_REUSEPORT), so a client reconnects until GetStatus
shows the worker it wants; every event is then checked on both sides,
which only works when it went through the master's relay.

Times: the server's clock is CLOCK_REALTIME in ms, and so is the test's
(time.time()), on the same machine. A server instant is checked against
the window [before the command was sent, after its answer came]; nothing
here asserts how fast anything is.
"""

import asyncio
import base64
import json
import os
import re
import secrets
import signal
import time

import pytest

import talas_fixtures as tf
from test_ws import client_frame, raw_upgrade, read_frame

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")
jwt = pytest.importorskip("jwt", reason="install Debian package python3-jwt")

SECRET = secrets.token_hex(32).encode()
BACKEND_KEY = secrets.token_urlsafe(32)

STATE_KEYS = {"id", "name", "mode", "host", "members", "queue", "playback", "server_ms"}
# the "room" of the events: no members, queue or invite (a room of 1,000
# members would send each of them the 1,000 at every seek)
LEAN_KEYS = {"id", "name", "mode", "host", "member_count", "queue_length", "playback", "server_ms"}
MEMBER_KEYS = {"user_id", "joined_at_ms", "position_ms", "reported_at_ms", "buffering", "behind_ms"}
ENTRY_KEYS = {"entry_id", "track_id", "title", "artist", "duration_ms"}
PLAYBACK_KEYS = {"track_id", "entry_id", "position_ms", "at_server_ms", "playing"}
RESPONSE_KEYS = {"event", "command_id", "success", "data", "error"}
ROOM_ID = re.compile(r"[0-9a-f]{24}")


def now_ms():
    return int(time.time() * 1000)


def token(sub, **claims):
    return jwt.encode({"exp": int(time.time()) + 3600, "sub": sub, **claims}, SECRET, algorithm="HS256")


def uname(prefix):
    return f"{prefix}-{secrets.token_hex(3)}"


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def roomlib(tmp_path_factory):
    """Tracks of known lengths; the artist "Room Artist" has two albums
    whose track numbers disagree with the files' path order, so that
    "album then track order" differs from the catalog's order."""
    d = tmp_path_factory.mktemp("roomlib")
    tf.make_track(d / "long.mp3", "Long Song", artist="Other Artist", album="Long", seconds=120, freq=330)
    tf.make_track(d / "short1.mp3", "Short One", artist="Other Artist", album="Shorts", seconds=3, freq=440)
    tf.make_track(d / "short2.mp3", "Short Two", artist="Other Artist", album="Shorts", seconds=3, freq=550)
    for name, title, album, n in (("ra_a.mp3", "Alpha Second", "Alpha", 2), ("ra_b.mp3", "Alpha First", "Alpha", 1),
                                  ("ra_c.mp3", "Beta Only", "Beta", 1)):
        tf._sine(d / name, 2, 600 + 10 * n, ["-c:a", "libmp3lame", "-b:a", "64k"], title=title,
                 artist="Room Artist", album=album, extra=["-metadata", f"track={n}"])
    return d


def room_server(workdir, lib, extra=""):
    """A server with auth.required (users come from tokens signed with
    SECRET), a backend key and two workers."""
    return configure(tf.TalasServer(workdir, [lib], workers=2), extra)


def own_room_server(make, lib, name, extra=""):
    """room_server made by conftest's talas_server (MAKE): killed at the
    end of the test, pass or fail."""
    return configure(make([lib], start=False, name=name, workers=2), extra)


def configure(srv, extra=""):
    workdir = srv.workdir
    (workdir / "ws.secret").write_bytes(SECRET)
    (workdir / "backend.key").write_text(BACKEND_KEY + "\n")
    for f in ("ws.secret", "backend.key"):
        os.chmod(workdir / f, 0o600)
    text = srv.config_text().replace(
        "auth:\n  required: false\n",
        "auth:\n  required: true\n"
        f"  secret_file: {json.dumps(str(workdir / 'ws.secret'))}\n"
        f"  backend_key_file: {json.dumps(str(workdir / 'backend.key'))}\n")
    text += "ws:\n  rate_limit: 100000\n  user_rate_limit: 0\n" + extra
    srv.write_config(text=text)
    return srv


def start_room_server(srv):
    srv.start(wait_scan=True)
    tracks = srv.get_json("/api/tracks?limit=1000", headers={"Authorization": f"Bearer {BACKEND_KEY}"})["tracks"]
    srv.ids = {t["title"]: t["id"] for t in tracks}
    srv.meta = {t["id"]: t for t in tracks}
    return srv


@pytest.fixture(scope="module")
def rsrv(tmp_path_factory, roomlib):
    srv = room_server(tmp_path_factory.mktemp("roomsrv"), roomlib)
    try:
        yield start_room_server(srv)
    finally:
        srv.kill()


# ------------------------------------------------------------------- helpers

def rest(srv, method, path, user=None, body=None, headers=None):
    """(status, JSON answer or None) of one request as USER (a token)."""
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = f"Bearer {token(user)}"
    if body is not None:
        h["Content-Type"] = "application/json"
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
    st, _, resp = srv.get(path, method=method, headers=h, body=body)
    try:
        return st, json.loads(resp) if resp else None
    except ValueError:
        return st, resp


def json_error(doc):
    """An error answer in the project's style: {"error": {"code",
    "message"}} (or a plain string)."""
    if not isinstance(doc, dict) or "error" not in doc:
        return False
    e = doc["error"]
    return isinstance(e, str) or (isinstance(e, dict) and isinstance(e.get("code"), str))


def create_room(srv, user, name="Room", mode="open"):
    st, doc = rest(srv, "POST", "/api/rooms", user, {"name": name, "mode": mode})
    assert st == 201, (st, doc)
    return doc


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Client:
    """One WebSocket connection of USER. cmd() sends a command and returns
    its CommandResponse; every other message is kept, in order, for
    event()."""

    def __init__(self, ws, user, pid):
        self.ws, self.user, self.pid = ws, user, pid
        self.kept = []
        self.n = 0

    @classmethod
    async def open(cls, srv, user, on=None, off=None, tries=80):
        """A connection on worker ON, or on any worker but OFF, or anywhere."""
        for _ in range(tries):
            ws = await websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?token={token(user)}",
                                          max_size=None, ping_interval=None)
            c = cls(ws, user, None)
            c.srv = srv
            r = await c.cmd("GetStatus")
            assert r["success"], r
            c.pid = r["data"]["worker_pid"]
            if (on is None or c.pid == on) and (off is None or c.pid != off):
                return c
            await ws.close()
        pytest.fail(f"could not reach the wanted worker (on={on}, off={off}) in {tries} connections")

    async def recv(self, timeout):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def send(self, doc):
        await self.ws.send(doc if isinstance(doc, (str, bytes)) else json.dumps(doc))

    async def cmd(self, command, timeout=15, **fields):
        self.n += 1
        cid = f"{command}-{self.n}"
        await self.send({"command": command, "command_id": cid, **fields})
        return await self.response(cid, timeout)

    async def response(self, cid, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            m = await self.recv(max(0.05, deadline - time.monotonic()))
            if m.get("event") == "CommandResponse" and m.get("command_id") == cid:
                return m
            self.kept.append(m)

    async def ok(self, command, **fields):
        r = await self.cmd(command, **fields)
        assert set(r) == RESPONSE_KEYS, r
        assert r["success"] is True and r["error"] is None, (self.user, command, fields, r)
        return r["data"]

    async def refused(self, command, prefix, **fields):
        r = await self.cmd(command, **fields)
        assert set(r) == RESPONSE_KEYS, r
        assert r["success"] is False and r["data"] is None, (command, fields, r)
        assert isinstance(r["error"], str) and r["error"].startswith(prefix), (command, fields, prefix, r)
        return r["error"]

    async def event(self, name, pred=lambda e: True, timeout=15):
        """The first message NAME (matching PRED) kept or to come; removed
        from the kept ones, with those before it."""
        for i, m in enumerate(self.kept):
            if m.get("event") == name and pred(m):
                del self.kept[:i + 1]
                return m
        self.kept.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.user} on worker {self.pid}: no {name} within {timeout} s")
            try:
                m = await self.recv(left)
            except asyncio.TimeoutError:
                continue
            if m.get("event") == name and pred(m):
                return m

    async def quiet(self, seconds):
        """Every message that comes within SECONDS (and those kept)."""
        got, self.kept = self.kept, []
        try:
            while True:
                got.append(await self.recv(seconds))
        except asyncio.TimeoutError:
            return got

    async def close(self):
        await self.ws.close()


async def two_workers(srv, user_a, user_b):
    a = await Client.open(srv, user_a)
    b = await Client.open(srv, user_b, off=a.pid)
    assert a.pid != b.pid
    return a, b


def check_state(room, rid=None):
    assert STATE_KEYS <= set(room) <= STATE_KEYS | {"invite_url"}, room
    assert ROOM_ID.fullmatch(room["id"]), room["id"]
    if rid is not None:
        assert room["id"] == rid
    assert room["mode"] in ("host", "open")
    assert set(room["playback"]) == PLAYBACK_KEYS, room["playback"]
    for m in room["members"]:
        assert set(m) == MEMBER_KEYS, m
    for e in room["queue"]:
        assert set(e) == ENTRY_KEYS, e
        assert re.fullmatch(r"[0-9a-f]+", e["entry_id"]), e
    assert isinstance(room["server_ms"], int)
    return room


def check_lean(room, rid=None, members=None, queue=None):
    """ROOM, an event's "room": the lean state, with MEMBERS members and a
    queue of QUEUE entries when given."""
    assert set(room) == LEAN_KEYS, room
    if rid is not None:
        assert room["id"] == rid
    assert room["mode"] in ("host", "open")
    assert set(room["playback"]) == PLAYBACK_KEYS, room["playback"]
    assert isinstance(room["server_ms"], int)
    if members is not None:
        assert room["member_count"] == members, room
    if queue is not None:
        assert room["queue_length"] == queue, room
    return room


def start_of_current(pb):
    """The server instant the current entry started (position 0): the same
    whether the server stores the instant of the last change or re-bases
    the state on every read."""
    return pb["at_server_ms"] - pb["position_ms"]


def where(room):
    """Where the room is at the state's server_ms (the documented rule)."""
    pb = room["playback"]
    return pb["position_ms"] + (room["server_ms"] - pb["at_server_ms"]) if pb["playing"] else pb["position_ms"]


async def play_first(c, rid, **fields):
    """C plays the first entry of room RID's queue."""
    st, room = rest(c.srv, "GET", f"/api/rooms/{rid}", c.user)
    assert st == 200 and room["queue"], (st, room)
    return await c.ok("RoomPlay", room_id=rid, entry_id=room["queue"][0]["entry_id"], **fields)


def claims_of(jwt_text):
    payload = jwt_text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --------------------------------------------------------------------- tests

def test_create_over_rest_then_join_with_the_invite_only(rsrv):
    """POST /api/rooms makes the creator host and first member and answers
    an invite; JoinRoom is refused without it (or with another room's) and
    accepted with it, from the other worker, and the host's connection on
    the first worker hears RoomMemberJoined. GET answers members and
    invite holders only; the invite_url goes to members only."""
    alice, bob, carol = uname("alice"), uname("bob"), uname("carol")
    t0 = now_ms()
    doc = create_room(rsrv, alice, "Studio A", "host")
    t1 = now_ms()
    assert set(doc) == {"id", "invite_url", "invite_token", "room"}, doc
    rid, invite = doc["id"], doc["invite_token"]
    assert ROOM_ID.fullmatch(rid)
    assert doc["invite_url"] == f"/?room={rid}&invite={invite}"
    room = check_state(doc["room"], rid)
    assert room["name"] == "Studio A" and room["mode"] == "host" and room["host"] == alice
    assert [m["user_id"] for m in room["members"]] == [alice]
    assert t0 - 1 <= room["members"][0]["joined_at_ms"] <= t1 + 1
    assert room["members"][0]["position_ms"] is None and room["members"][0]["behind_ms"] is None
    assert room["queue"] == []
    assert room["playback"]["track_id"] is None and room["playback"]["playing"] is False
    assert t0 - 1 <= room["server_ms"] <= t1 + 1
    assert room["invite_url"] == doc["invite_url"]

    # the invite: signed as the project's tokens, for this room, for 7 days
    claims = claims_of(invite)
    assert claims.get("scope") == "room" and rid in claims.values(), claims
    assert abs(claims["exp"] - (t0 // 1000 + 604800)) <= 5, claims

    # GET: a member, an invite holder (query or header), nobody else
    st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
    assert st == 200 and check_state(got, rid)["invite_url"] == doc["invite_url"], got
    st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", bob)
    assert st == 403 and json_error(got), got
    st, got = rest(rsrv, "GET", f"/api/rooms/{rid}?invite={invite}", bob)
    assert st == 200 and got["name"] == "Studio A" and "invite_url" not in got, got
    st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", bob, headers={"X-Room-Invite": invite})
    assert st == 200 and got["id"] == rid and "invite_url" not in got, got
    st, got = rest(rsrv, "GET", f"/api/rooms/{'0' * 24}", alice)
    assert st == 404 and json_error(got), got
    st, _ = rest(rsrv, "GET", f"/api/rooms/{rid}")
    assert st == 401

    other = create_room(rsrv, carol, "Elsewhere")

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        # the creator is already a member: no invite needed
        data = await a.ok("JoinRoom", room_id=rid)
        assert check_state(data, rid)["host"] == alice
        await b.refused("JoinRoom", "forbidden:", room_id=rid)
        await b.refused("JoinRoom", "forbidden:", room_id=rid, invite=other["invite_token"])
        await b.refused("JoinRoom", "forbidden:", room_id=rid, invite=invite[:-4] + "AAAA")
        t0 = now_ms()
        data = await b.ok("JoinRoom", room_id=rid, invite=invite)
        t1 = now_ms()
        check_state(data, rid)
        assert [m["user_id"] for m in data["members"]] == [alice, bob]
        assert t0 - 1 <= data["members"][1]["joined_at_ms"] <= t1 + 1
        assert data["invite_url"] == doc["invite_url"]  # bob is a member now
        ev = await a.event("RoomMemberJoined")
        assert ev["room_id"] == rid and ev["user_id"] == bob, ev
        # the member who joined, not everyone
        assert set(ev["member"]) == MEMBER_KEYS and ev["member"]["user_id"] == bob, ev
        assert t0 - 1 <= ev["member"]["joined_at_ms"] <= t1 + 1, ev
        check_lean(ev["room"], rid, members=2, queue=0)
        # bob, a member now, reads the room without the invite
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", bob)
        assert st == 200 and got["invite_url"] == doc["invite_url"]
        # joining again (already a member) needs no invite and emits nothing
        await b.ok("JoinRoom", room_id=rid)
        assert [m for m in await a.quiet(0.5) if m.get("event") == "RoomMemberJoined"] == []
        await a.close()
        await b.close()

    run(go())


def test_an_invite_is_only_an_invite(rsrv):
    """An invite opens its own room, until it expires, and nothing else: not
    another room, not a login (REST or WebSocket), even with a sub added;
    a user's token is no invite."""
    alice, bob = uname("alice"), uname("bob")
    doc = create_room(rsrv, alice, "Private")
    other = create_room(rsrv, alice, "Other")
    rid, invite = doc["id"], doc["invite_token"]
    now = int(time.time())
    expired = jwt.encode({"exp": now - 600, "iat": now - 1200, "room": rid, "scope": "room"}, SECRET, "HS256")
    with_sub = jwt.encode({"exp": now + 600, "iat": now, "room": rid, "scope": "room", "sub": bob}, SECRET, "HS256")
    # the forged shape is right: the same claims freshly signed do open the room
    fresh = jwt.encode({"exp": now + 600, "iat": now, "room": rid, "scope": "room"}, SECRET, "HS256")
    assert rest(rsrv, "GET", f"/api/rooms/{rid}?invite={fresh}", bob)[0] == 200
    for bad in (expired, token(bob), other["invite_token"]):
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}?invite={bad}", bob)
        assert st == 403 and json_error(got), (st, got)
    st, got = rest(rsrv, "GET", f"/api/rooms/{other['id']}?invite={invite}", bob)
    assert st == 403, (st, got)
    # refused as a login: 401, or 403 (a token good only elsewhere)
    for tok in (invite, with_sub):
        st, _, body = rsrv.get(f"/api/rooms/{rid}", headers={"Authorization": f"Bearer {tok}"})
        assert st in (401, 403) and json_error(json.loads(body)), (tok, st, body)
        st, _, body = rsrv.get("/api/rooms", method="POST", body=b'{"name": "x"}',
                               headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
        assert st in (401, 403) and json_error(json.loads(body)), (tok, st, body)

    async def go():
        for tok in (invite, with_sub):
            with pytest.raises(websockets.InvalidStatusCode) as exc:
                await websockets.connect(f"ws://127.0.0.1:{rsrv.port}/api/ws?token={tok}")
            assert exc.value.status_code in (401, 403)
        b = await Client.open(rsrv, bob)
        for bad in (expired, token(bob), other["invite_token"]):
            await b.refused("JoinRoom", "forbidden:", room_id=rid, invite=bad)
        await b.ok("JoinRoom", room_id=rid, invite=invite)
        await b.close()

    run(go())


def test_create_over_ws_joins_the_connection(rsrv):
    """CreateRoom answers as POST does and joins its connection: the room's
    events reach it (here a member joining from the other worker)."""
    carol, dave = uname("carol"), uname("dave")

    async def go():
        c, d = await two_workers(rsrv, carol, dave)
        data = await c.ok("CreateRoom", name="Mix review", mode="open")
        assert set(data) == {"id", "invite_url", "invite_token", "room"}, data
        rid = data["id"]
        assert data["invite_url"] == f"/?room={rid}&invite={data['invite_token']}"
        room = check_state(data["room"], rid)
        assert room["name"] == "Mix review" and room["mode"] == "open" and room["host"] == carol
        assert [m["user_id"] for m in room["members"]] == [carol]
        # default mode: open
        data2 = await c.ok("CreateRoom", name="Default mode")
        assert data2["room"]["mode"] == "open"
        await d.ok("JoinRoom", room_id=rid, invite=data["invite_token"])
        ev = await c.event("RoomMemberJoined", lambda e: e["room_id"] == rid)
        assert ev["user_id"] == dave
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", dave)
        assert st == 200 and [m["user_id"] for m in got["members"]] == [carol, dave]
        await c.close()
        await d.close()

    run(go())


def test_playback_commands_reach_members_on_both_workers(rsrv):
    """Play, pause, resume, seek and skip in an open room, each commanded
    by one member and its RoomState heard by both, on both workers, with
    the server's instant within the command's round trip."""
    alice, bob = uname("alice"), uname("bob")
    long_id, s1, s2 = rsrv.ids["Long Song"], rsrv.ids["Short One"], rsrv.ids["Short Two"]
    beta = rsrv.ids["Beta Only"]
    doc = create_room(rsrv, alice, "Sync", "open")
    rid = doc["id"]

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        await a.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        await a.ok("RoomQueueAdd", room_id=rid, track_id=s1)
        await b.ok("RoomQueueAdd", room_id=rid, track_id=beta)
        ev = await a.event("RoomQueueUpdated", lambda e: len(e["queue"]) == 3)
        e_long, e_s1, _ = ev["queue"]

        async def both(who, command, **fields):
            """WHO commands; returns (RoomState heard by a, by b, t0, t1)."""
            a.kept.clear()
            b.kept.clear()
            t0 = now_ms()
            await who.ok(command, room_id=rid, **fields)
            t1 = now_ms()
            ea = await a.event("RoomState", lambda e: e["room_id"] == rid)
            eb = await b.event("RoomState", lambda e: e["room_id"] == rid)
            check_lean(ea["room"], rid, members=2)
            assert ea["room"]["playback"] == eb["room"]["playback"], (ea, eb)
            both.queue_length = ea["room"]["queue_length"]
            return ea["room"]["playback"], t0, t1

        pb, t0, t1 = await both(b, "RoomPlay", entry_id=e_long["entry_id"])
        assert pb["track_id"] == long_id and pb["entry_id"] == e_long["entry_id"] and pb["playing"] is True
        assert t0 - 1 <= start_of_current(pb) <= t1 + 1, (pb, t0, t1)

        pb, t0, t1 = await both(a, "RoomPause", position_ms=5000)
        assert pb["playing"] is False and pb["position_ms"] == 5000 and pb["entry_id"] == e_long["entry_id"]

        pb, t0, t1 = await both(b, "RoomPlay")  # resume where it was paused
        assert pb["playing"] is True and pb["entry_id"] == e_long["entry_id"]
        assert t0 - 1 <= start_of_current(pb) + 5000 <= t1 + 1, (pb, t0, t1)

        pb, t0, t1 = await both(a, "RoomSeek", position_ms=30000)
        assert pb["playing"] is True and pb["entry_id"] == e_long["entry_id"]
        assert t0 - 1 <= start_of_current(pb) + 30000 <= t1 + 1, (pb, t0, t1)

        # a pause without a position: where the room is when it pauses
        start = start_of_current(pb)
        pb, t0, t1 = await both(b, "RoomPause")
        assert pb["playing"] is False and pb["entry_id"] == e_long["entry_id"]
        assert t0 - start - 1 <= pb["position_ms"] <= t1 - start + 1, (pb, start, t0, t1)

        # the next entry, at 0
        pb, t0, t1 = await both(a, "RoomSkip")
        assert pb["entry_id"] == e_s1["entry_id"] and pb["track_id"] == s1, pb
        if pb["playing"]:
            assert t0 - 1 <= start_of_current(pb) <= t1 + 1, (pb, t0, t1)
        else:
            assert pb["position_ms"] == 0, pb

        # RoomPlay of a track not in the queue: inserted right after the
        # current entry (not at the end), and played
        pb, t0, t1 = await both(b, "RoomPlay", track_id=s2, position_ms=1000)
        assert pb["track_id"] == s2 and pb["playing"] is True
        assert t0 - 1 <= start_of_current(pb) + 1000 <= t1 + 1, (pb, t0, t1)
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        q = [e["track_id"] for e in got["queue"]]
        assert q == [long_id, s1, s2, beta], q
        assert got["queue"][2]["entry_id"] == pb["entry_id"]
        assert both.queue_length == 4

        # skip to the last entry, then past it: stopped
        pb, t0, t1 = await both(a, "RoomSkip")
        assert pb["track_id"] == beta and pb["entry_id"] == got["queue"][3]["entry_id"], pb
        pb, t0, t1 = await both(b, "RoomSkip")
        assert pb["playing"] is False, pb
        await a.close()
        await b.close()

    run(go())


def test_events_carry_what_changed_not_the_whole_room(rsrv):
    """In a room of 31 members and a queue of 20 entries, a seek's RoomState
    is the lean state (its size does not grow with the members or the
    queue), a join's RoomMemberJoined carries the one member who joined,
    RoomQueueUpdated carries the queue once; the full state stays one
    JoinRoom or GET away."""
    host = uname("host")
    doc = create_room(rsrv, host, "Lean", "open")
    rid = doc["id"]
    long_id = rsrv.ids["Long Song"]

    def size(ev):
        return len(json.dumps(ev, separators=(",", ":"), ensure_ascii=False))

    async def go():
        h = await Client.open(rsrv, host)
        await h.ok("JoinRoom", room_id=rid)
        for _ in range(20):
            await h.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        h.kept.clear()
        await h.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        ev = await h.event("RoomQueueUpdated", lambda e: e["room_id"] == rid and len(e["queue"]) == 21)
        assert json.dumps(ev).count('"duration_ms"') == 21, ev
        check_lean(ev["room"], rid, members=1, queue=21)
        members = []
        for i in range(30):
            m = await Client.open(rsrv, f"{host}-m{i}")
            await m.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
            members.append(m)
            ev = await h.event("RoomMemberJoined", lambda e, u=m.user: e["user_id"] == u)
            assert ev["member"]["user_id"] == m.user and check_lean(ev["room"], rid, members=i + 2), ev
            assert size(ev) < 700, (size(ev), ev)
        entry = rest(rsrv, "GET", f"/api/rooms/{rid}", host)[1]["queue"][0]["entry_id"]
        await h.ok("RoomPlay", room_id=rid, entry_id=entry)
        for m in members:
            m.kept.clear()
        await h.ok("RoomSeek", room_id=rid, position_ms=4242)
        for m in (members[0], members[-1]):
            ev = await m.event("RoomState", lambda e: e["room"]["playback"]["position_ms"] == 4242)
            check_lean(ev["room"], rid, members=31, queue=21)
            # the full state would list 31 members and 21 entries (5 KB)
            assert size(ev) < 500, (size(ev), ev)
        room = await members[-1].ok("JoinRoom", room_id=rid)
        assert len(room["members"]) == 31 and len(room["queue"]) == 21
        assert size(room) > 4000, size(room)
        for m in members + [h]:
            await m.close()

    run(go())


def test_queue_add_track_artist_playlist_remove_move(rsrv):
    """RoomQueueAdd of a track, of an artist (album then track order, not
    the catalog's) and of a playlist, at the end or at an index;
    RoomQueueRemove and RoomQueueMove; each heard as RoomQueueUpdated on
    both workers with the queue as GET shows it."""
    alice, bob = uname("alice"), uname("bob")
    ids, meta = rsrv.ids, rsrv.meta
    long_id, s1, s2 = ids["Long Song"], ids["Short One"], ids["Short Two"]
    artist_order = [ids["Alpha First"], ids["Alpha Second"], ids["Beta Only"]]
    doc = create_room(rsrv, alice, "Queue", "open")
    rid = doc["id"]
    plid = f"pl-{secrets.token_hex(4)}"

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])

        async def change(who, command, **fields):
            a.kept.clear()
            b.kept.clear()
            await who.ok(command, room_id=rid, **fields)
            ea = await a.event("RoomQueueUpdated", lambda e: e["room_id"] == rid)
            eb = await b.event("RoomQueueUpdated", lambda e: e["room_id"] == rid)
            assert ea["queue"] == eb["queue"], (ea, eb)
            check_lean(ea["room"], rid, members=2, queue=len(ea["queue"]))
            st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
            assert st == 200 and got["queue"] == ea["queue"]
            for e in ea["queue"]:
                assert set(e) == ENTRY_KEYS, e
                m = meta[e["track_id"]]
                assert e["title"] == m["title"] and e["artist"] == m["artist"], (e, m)
                assert 0 < e["duration_ms"], e
            return ea["queue"]

        q = await change(b, "RoomQueueAdd", track_id=long_id)
        assert [e["track_id"] for e in q] == [long_id]
        assert 119000 <= q[0]["duration_ms"] <= 121000, q[0]
        q = await change(a, "RoomQueueAdd", artist="Room Artist")
        assert [e["track_id"] for e in q] == [long_id] + artist_order
        # a playlist of alice's, in its order
        for t in (s2, s1):
            r = await a.cmd("AddToPlaylist", playlist_id=plid, track_id=t)
            assert r["success"], r
        # bob may not read alice's private playlist into the room
        await b.refused("RoomQueueAdd", "forbidden:", room_id=rid, playlist_id=plid)
        q = await change(a, "RoomQueueAdd", playlist_id=plid)
        assert [e["track_id"] for e in q] == [long_id] + artist_order + [s2, s1]
        # at an index
        q = await change(a, "RoomQueueAdd", track_id=s1, position=1)
        assert [e["track_id"] for e in q] == [long_id, s1] + artist_order + [s2, s1]
        entries = [e["entry_id"] for e in q]
        assert len(set(entries)) == len(entries), "every entry has its own id"
        # remove one of the two entries of s1: the other stays
        q = await change(b, "RoomQueueRemove", entry_id=entries[1])
        assert [e["entry_id"] for e in q] == entries[:1] + entries[2:]
        # move the last entry first, then the first to the end
        q = await change(a, "RoomQueueMove", entry_id=entries[-1], position=0)
        assert [e["entry_id"] for e in q] == [entries[-1], entries[0]] + entries[2:-1]
        q = await change(b, "RoomQueueMove", entry_id=entries[-1], position=len(q) - 1)
        assert [e["entry_id"] for e in q] == entries[:1] + entries[2:]
        await b.refused("RoomQueueRemove", "invalid:", room_id=rid, entry_id=entries[1])
        await a.close()
        await b.close()

    run(go())


def raw_room_socket(srv, user):
    """A raw socket upgraded to /api/ws as USER (to send several frames in
    one write)."""
    # the token rides after test_ws's ?user_id= (this server wants one)
    s, rest = raw_upgrade(srv, f"{user}&token={token(user)}")
    assert rest == b""
    return s


def raw_command(command, cid, **fields):
    return client_frame(0x1, json.dumps({"command": command, "command_id": cid, **fields}).encode())


def raw_responses(s, cids):
    """The command_ids of the CommandResponses for CIDS, in the order they
    came, with their messages."""
    order, got, buf = [], {}, b""
    while len(order) < len(cids):
        op, payload, buf = read_frame(s, buf)
        if op != 0x1:
            continue
        m = json.loads(payload)
        if m.get("event") == "CommandResponse" and m.get("command_id") in cids:
            order.append(m["command_id"])
            got[m["command_id"]] = m
    return order, got


def test_queue_add_of_an_artist_walks_the_catalog_off_the_loop(rsrv):
    """RoomQueueAdd {artist} reads the whole catalog on the worker's pool,
    not on its loop: sent in one write with a TimeSync behind it, the
    TimeSync is answered first (on the loop, the walk would answer first),
    and the artist's tracks are then added in album order. A connection
    that closes while its walk runs drops the add (its user left) and the
    worker goes on."""
    alice = uname("alice")
    doc = create_room(rsrv, alice, "Walk", "open")
    rid = doc["id"]
    ids = rsrv.ids
    artist_order = [ids["Alpha First"], ids["Alpha Second"], ids["Beta Only"]]
    s = raw_room_socket(rsrv, alice)
    try:
        s.sendall(raw_command("JoinRoom", "join", room_id=rid))
        raw_responses(s, ["join"])
        s.sendall(raw_command("RoomQueueAdd", "add", room_id=rid, artist="Room Artist")
                  + raw_command("TimeSync", "sync", client_ms=1))
        order, got = raw_responses(s, ["add", "sync"])
        assert order == ["sync", "add"], order
        assert got["add"]["success"] is True, got["add"]
        assert [e["track_id"] for e in got["add"]["data"]["queue"]] == artist_order
        # an unknown artist: refused once the walk is over
        s.sendall(raw_command("RoomQueueAdd", "none", room_id=rid, artist="Nobody At All"))
        _, got = raw_responses(s, ["none"])
        assert got["none"]["error"].startswith("invalid: artist"), got
        # the add of a connection closed in the same write is dropped
        s.sendall(raw_command("RoomQueueAdd", "gone", room_id=rid, artist="Room Artist")
                  + client_frame(0x8, (1000).to_bytes(2, "big")))
    finally:
        s.close()
    c = None

    async def go():
        nonlocal c
        c = await Client.open(rsrv, alice)
        # the worker still serves, and the room has only the first add
        room = await c.ok("JoinRoom", room_id=rid)
        assert [e["track_id"] for e in room["queue"]] == artist_order, room["queue"]
        await c.close()

    run(go())
    assert rsrv.health()["status"] == "ok"


def test_a_full_queue_reaches_the_other_worker(rsrv):
    """A queue at rooms.max_queue (500 entries: a room's state near its
    largest) still travels through the master to the other worker, as
    RoomQueueUpdated and in JoinRoom's answer; the 501st entry is refused
    as a quota."""
    alice, bob = uname("alice"), uname("bob")
    doc = create_room(rsrv, alice, "Full", "open")
    rid = doc["id"]
    long_id = rsrv.ids["Long Song"]

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        # b reads each update as it comes (each carries the whole queue:
        # a member that stopped reading would be closed as a slow reader)
        for n in range(166):
            await a.ok("RoomQueueAdd", room_id=rid, artist="Room Artist")
            await b.event("RoomQueueUpdated", lambda e: len(e["queue"]) == 3 * (n + 1))
            a.kept.clear()
        await a.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        await b.event("RoomQueueUpdated", lambda e: len(e["queue"]) == 499)
        await a.ok("RoomQueueAdd", room_id=rid, track_id=long_id, position=0)
        ev = await b.event("RoomQueueUpdated", lambda e: e["room_id"] == rid and len(e["queue"]) == 500)
        assert ev["queue"][0]["track_id"] == long_id and ev["queue"][-1]["track_id"] == long_id
        assert len({e["entry_id"] for e in ev["queue"]}) == 500
        err = await b.refused("RoomQueueAdd", "quota:", room_id=rid, track_id=long_id)
        assert "rooms.max_queue" in err, err
        room = await b.ok("JoinRoom", room_id=rid)
        assert room["queue"] == ev["queue"]
        await a.close()
        await b.close()

    run(go())


def test_concurrent_changes_from_both_workers_are_all_kept(rsrv):
    """Two members on two workers each send 25 RoomQueueAdd back to back,
    without waiting: every one lands (50 entries, distinct ids) and both
    hear the same final queue. A
    change is read, made and written in one transaction, whatever the
    worker."""
    alice, bob = uname("alice"), uname("bob")
    doc = create_room(rsrv, alice, "Race", "open")
    rid = doc["id"]
    s1, s2 = rsrv.ids["Short One"], rsrv.ids["Short Two"]

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])

        async def burst(c, track):
            cids = []
            for i in range(25):
                c.n += 1
                cids.append(f"race-{c.n}")
                await c.send({"command": "RoomQueueAdd", "command_id": cids[-1], "room_id": rid, "track_id": track})
            for cid in cids:
                r = await c.response(cid)
                assert r["success"], r

        await asyncio.gather(burst(a, s1), burst(b, s2))
        ea = await a.event("RoomQueueUpdated", lambda e: len(e["queue"]) == 50)
        eb = await b.event("RoomQueueUpdated", lambda e: len(e["queue"]) == 50)
        assert ea["queue"] == eb["queue"]
        q = ea["queue"]
        assert len({e["entry_id"] for e in q}) == 50
        assert sorted(e["track_id"] for e in q) == sorted([s1] * 25 + [s2] * 25)
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        assert got["queue"] == q
        await a.close()
        await b.close()

    run(go())


def test_host_mode_permissions(rsrv):
    """In a host room only the host plays, pauses, seeks, skips, removes and
    moves; any member adds; a user not in the room commands nothing. A
    refused command changes nothing."""
    alice, bob, mallory = uname("alice"), uname("bob"), uname("mallory")
    long_id, s1 = rsrv.ids["Long Song"], rsrv.ids["Short One"]
    doc = create_room(rsrv, alice, "Host only", "host")
    rid = doc["id"]

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        m = await Client.open(rsrv, mallory)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        await b.ok("RoomQueueAdd", room_id=rid, track_id=long_id)  # any member adds
        await a.ok("RoomQueueAdd", room_id=rid, track_id=s1)
        await play_first(a, rid)
        st, before = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        entry = before["queue"][0]["entry_id"]
        assert before["playback"]["entry_id"] == entry and before["playback"]["playing"] is True, before
        for cmd, fields in (("RoomPlay", {"entry_id": entry}), ("RoomPlay", {}), ("RoomPause", {}),
                            ("RoomSeek", {"position_ms": 60000}), ("RoomSkip", {}),
                            ("RoomQueueRemove", {"entry_id": entry}),
                            ("RoomQueueMove", {"entry_id": entry, "position": 1})):
            await b.refused(cmd, "forbidden:", room_id=rid, **fields)
        # mallory, not in the room, may not even add (nor leave, nor report)
        for cmd, fields in (("RoomQueueAdd", {"track_id": s1}), ("RoomPause", {}),
                            ("RoomSeek", {"position_ms": 1000}), ("RoomSkip", {}),
                            ("RoomMemberStatus", {"position_ms": 0, "buffering": False})):
            await m.refused(cmd, "forbidden:", room_id=rid, **fields)
        st, after = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        assert after["queue"] == before["queue"]
        assert start_of_current(after["playback"]) == start_of_current(before["playback"])
        assert after["playback"]["entry_id"] == entry and after["playback"]["playing"] is True
        assert [x["user_id"] for x in after["members"]] == [alice, bob]
        # the host may
        await a.ok("RoomSeek", room_id=rid, position_ms=60000)
        await a.ok("RoomQueueMove", room_id=rid, entry_id=entry, position=1)
        await a.ok("RoomPause", room_id=rid)
        await a.ok("RoomSkip", room_id=rid)
        await a.ok("RoomQueueRemove", room_id=rid, entry_id=entry)
        for c in (a, b, m):
            await c.close()

    run(go())


def test_late_join_lands_at_the_rooms_position(rsrv):
    """A member joining a playing room gets a state whose playback, by the
    documented rule, is where the room is: the seek position plus the time
    since the seek, both instants bounded by the test's own clock. A
    member's report gives behind_ms, and a change of its buffering flag a
    RoomState."""
    alice, bob = uname("alice"), uname("bob")
    long_id = rsrv.ids["Long Song"]
    doc = create_room(rsrv, alice, "Late", "open")
    rid = doc["id"]

    async def go():
        a = await Client.open(rsrv, alice)
        await a.ok("JoinRoom", room_id=rid)
        await a.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        t0 = now_ms()
        await play_first(a, rid, position_ms=20000)
        t1 = now_ms()
        await asyncio.sleep(1.5)
        b = await Client.open(rsrv, bob, off=a.pid)
        j0 = now_ms()
        room = await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        j1 = now_ms()
        check_state(room, rid)
        pb = room["playback"]
        assert pb["playing"] is True and pb["track_id"] == long_id
        assert j0 - 1 <= room["server_ms"] <= j1 + 1, (room["server_ms"], j0, j1)
        # the room started the entry's 20 s at t, t0 <= t <= t1, so at
        # server_ms it is at 20000 + server_ms - t
        pos = where(room)
        assert 20000 + room["server_ms"] - t1 - 2 <= pos <= 20000 + room["server_ms"] - t0 + 2, (pos, t0, t1, room)
        assert pos >= 21500 - 2  # the test slept 1.5 s after the play

        # bob reports 3 s behind where the room is at the moment he sends
        t_s = now_ms()
        reported = pb["position_ms"] + (t_s - pb["at_server_ms"]) - 3000
        await b.ok("RoomMemberStatus", room_id=rid, position_ms=reported, buffering=False)
        t_r = now_ms()
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        mb = {m["user_id"]: m for m in got["members"]}[bob]
        assert mb["position_ms"] == reported and t_s - 1 <= mb["reported_at_ms"] <= t_r + 1, mb
        assert mb["buffering"] is False
        # projected to the same instant, the report is 3 s behind, plus
        # the time the report took to arrive
        assert 3000 - 2 <= mb["behind_ms"] <= 3000 + (t_r - t_s) + 2, (mb, t_s, t_r)
        assert {m["user_id"]: m for m in got["members"]}[alice]["behind_ms"] is None

        # buffering on: a RoomState reaches the other member
        a.kept.clear()
        await b.ok("RoomMemberStatus", room_id=rid, position_ms=reported + 500, buffering=True)
        ev = await a.event("RoomState", lambda e: e.get("user_id") == bob and e["member"]["buffering"])
        assert ev["room_id"] == rid and set(ev["member"]) == MEMBER_KEYS, ev
        assert ev["member"]["position_ms"] == reported + 500, ev
        check_lean(ev["room"], rid, members=2)
        await a.close()
        await b.close()

    run(go())


def test_lazy_next_entry_at_the_server_decided_instant(rsrv):
    """Short tracks end: readers on both workers find the room on the next
    entry (across two entries), started exactly at the instant the rule
    gives from the play's state; past the last entry it is stopped at the
    end of the last track."""
    alice, bob = uname("alice"), uname("bob")
    s1, s2, long_id = rsrv.ids["Short One"], rsrv.ids["Short Two"], rsrv.ids["Long Song"]
    doc = create_room(rsrv, alice, "Lazy", "open")
    rid = doc["id"]
    doc2 = create_room(rsrv, alice, "Lazy end", "open")
    rid2 = doc2["id"]

    async def go():
        a, b = await two_workers(rsrv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        for t in (s1, s2, long_id):
            await a.ok("RoomQueueAdd", room_id=rid, track_id=t)
        await play_first(a, rid, position_ms=2000)
        ev = await b.event("RoomState", lambda e: e["room_id"] == rid and e["room"]["playback"]["playing"])
        q = rest(rsrv, "GET", f"/api/rooms/{rid}", bob)[1]["queue"]
        pb = ev["room"]["playback"]
        assert pb["entry_id"] == q[0]["entry_id"]
        start1 = start_of_current(pb)
        # the rule: s1 ends at start1 + d1, s2 plays d2 after that
        start3 = start1 + q[0]["duration_ms"] + q[1]["duration_ms"]
        # wait, by the test's clock, until the server's instant has passed
        while now_ms() < start3 + 500:
            await asyncio.sleep(0.1)
        seen = []
        for who in (bob, alice):
            st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", who)
            assert st == 200
            seen.append(got["playback"])
        # and over the WebSocket: a member's JoinRoom answers the state
        seen.append((await b.ok("JoinRoom", room_id=rid))["playback"])
        for p in seen:
            assert p["entry_id"] == q[2]["entry_id"] and p["track_id"] == long_id, p
            assert p["playing"] is True
            assert start_of_current(p) == start3, (p, start3)

        # past the last entry: stopped at the end of the last track
        await a.ok("JoinRoom", room_id=rid2)
        await a.ok("RoomQueueAdd", room_id=rid2, track_id=s1)
        await play_first(a, rid2, position_ms=1500)
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid2}", alice)
        q2 = got["queue"]
        end = start_of_current(got["playback"]) + q2[0]["duration_ms"]
        while now_ms() < end + 500:
            await asyncio.sleep(0.1)
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid2}", alice)
        p = got["playback"]
        assert p["playing"] is False and p["entry_id"] == q2[0]["entry_id"] and p["track_id"] == s1, p
        assert p["position_ms"] == q2[0]["duration_ms"], p
        await a.close()
        await b.close()

    run(go())


def test_host_hands_over_to_the_longest_present_member(rsrv):
    """The host leaves: the member who joined first (not the first by
    name) becomes host, may seek, and the others may not; then the new
    host's last connection closes, which counts as leaving."""
    host, zed, amy = uname("host"), uname("zed"), uname("amy")
    doc = create_room(rsrv, host, "Handover", "host")
    rid, invite = doc["id"], doc["invite_token"]
    long_id = rsrv.ids["Long Song"]

    async def go():
        h = await Client.open(rsrv, host)
        z = await Client.open(rsrv, zed, off=h.pid)
        y = await Client.open(rsrv, amy, on=h.pid)
        await h.ok("JoinRoom", room_id=rid)
        await h.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        await play_first(h, rid)
        await z.ok("JoinRoom", room_id=rid, invite=invite)
        await asyncio.sleep(0.01)  # distinct joined_at_ms
        await y.ok("JoinRoom", room_id=rid, invite=invite)
        await y.refused("RoomSeek", "forbidden:", room_id=rid, position_ms=1000)
        y.kept.clear()
        z.kept.clear()
        await h.ok("LeaveRoom", room_id=rid)
        for c in (z, y):
            ev = await c.event("RoomMemberLeft", lambda e: e["room_id"] == rid)
            assert ev["user_id"] == host and ev["host"] == zed, ev
            assert ev["room"]["host"] == zed and check_lean(ev["room"], rid, members=2), ev
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", amy)
        assert got["host"] == zed and [m["user_id"] for m in got["members"]] == [zed, amy], got
        assert rest(rsrv, "GET", f"/api/rooms/{rid}", host)[0] == 403  # no longer a member
        await h.refused("RoomSeek", "forbidden:", room_id=rid, position_ms=1000)
        await z.ok("RoomSeek", room_id=rid, position_ms=1000)
        await y.refused("RoomSeek", "forbidden:", room_id=rid, position_ms=2000)
        # zed's only connection closes: zed leaves, amy is host
        y.kept.clear()
        await z.close()
        ev = await y.event("RoomMemberLeft", lambda e: e["room_id"] == rid and e["user_id"] == zed)
        assert ev["host"] == amy and check_lean(ev["room"], rid, members=1), ev
        await y.ok("RoomSeek", room_id=rid, position_ms=3000)
        await h.close()
        await y.close()

    run(go())


def test_a_user_leaves_with_the_last_of_its_connections(rsrv):
    """A closed connection makes its user leave only when it was the user's
    last joined connection, counted across workers: carol's first
    connection closes and she stays; her second, on the other worker,
    closes and she leaves (RoomMemberLeft)."""
    alice, carol = uname("alice"), uname("carol")
    doc = create_room(rsrv, alice, "Devices", "open")
    rid = doc["id"]

    async def go():
        a = await Client.open(rsrv, alice)
        await a.ok("JoinRoom", room_id=rid)
        c1 = await Client.open(rsrv, carol, on=a.pid)
        c2 = await Client.open(rsrv, carol, off=a.pid)
        await c1.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        await c2.ok("JoinRoom", room_id=rid)
        a.kept.clear()
        await c1.close()
        # the room's state after the close, read by a command of alice's
        await a.ok("RoomMemberStatus", room_id=rid, position_ms=0, buffering=False)
        st, got = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        assert [m["user_id"] for m in got["members"]] == [alice, carol], got
        assert [m for m in a.kept if m.get("event") == "RoomMemberLeft"] == []
        # still a member: carol's other connection commands the room
        await c2.ok("RoomQueueAdd", room_id=rid, track_id=rsrv.ids["Short One"])
        await c2.close()
        ev = await a.event("RoomMemberLeft", lambda e: e["room_id"] == rid)
        assert ev["user_id"] == carol and ev["host"] == alice, ev
        check_lean(ev["room"], rid, members=1)
        await a.close()

    run(go())


def test_time_sync(rsrv):
    """TimeSync answers the server's clock within the round trip and echoes
    the client's; several give an offset within the shortest round trip
    (the clocks are the same here: the offset is about 0)."""
    user = uname("clock")

    async def go():
        c = await Client.open(rsrv, user)
        best = None
        for i in range(5):
            t0 = now_ms()
            data = await c.ok("TimeSync", client_ms=t0)
            t1 = now_ms()
            assert set(data) == {"server_ms", "client_ms"} and data["client_ms"] == t0, data
            assert t0 - 1 <= data["server_ms"] <= t1 + 1, (data, t0, t1)
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, data["server_ms"] - (t0 + t1) / 2)
        rtt, offset = best
        assert abs(offset) <= rtt / 2 + 1, best
        data = await c.ok("TimeSync")
        assert data["client_ms"] is None and isinstance(data["server_ms"], int), data
        await c.close()

    run(go())


def test_room_name_is_stored_exactly(rsrv):
    """A name with markup, quotes, backslashes, control-free unicode and
    emoji comes back byte for byte over REST and WS; 100 characters are
    accepted, 101 refused."""
    alice = uname("alice")
    name = '<script>alert("x")</script> & \'q\' "dq" \\ é ü 漢字 🎧 </b>'
    doc = create_room(rsrv, alice, name)
    assert doc["room"]["name"] == name
    st, got = rest(rsrv, "GET", f"/api/rooms/{doc['id']}", alice)
    assert st == 200 and got["name"] == name
    for exact in ("n" * 100, "é" * 100):  # characters, not bytes
        doc = create_room(rsrv, alice, exact)
        assert doc["room"]["name"] == exact
    for bad in ("", "n" * 101, "é" * 101):
        st, err = rest(rsrv, "POST", "/api/rooms", alice, {"name": bad})
        assert st == 400 and json_error(err), (bad, st, err)

    async def go():
        c = await Client.open(rsrv, alice)
        data = await c.ok("CreateRoom", name=name, mode="host")
        assert data["room"]["name"] == name
        st, got = rest(rsrv, "GET", f"/api/rooms/{data['id']}", alice)
        assert got["name"] == name
        # the seek's RoomState carries it too
        await c.ok("RoomQueueAdd", room_id=data["id"], track_id=rsrv.ids["Long Song"])
        await play_first(c, data["id"])
        ev = await c.event("RoomState", lambda e: e["room_id"] == data["id"])
        assert ev["room"]["name"] == name
        await c.close()

    run(go())


def test_rest_bad_input(rsrv):
    """POST /api/rooms: malformed bodies and values are 400 with a JSON
    error, never a crash."""
    alice = uname("alice")
    pids = rsrv.worker_pids()
    for body in (b"", b"{", b"[]", b"null", b'"name"', json.dumps({"mode": "open"}).encode(),
                 json.dumps({"name": 5}).encode(), json.dumps({"name": None}).encode(),
                 json.dumps({"name": "x", "mode": "party"}).encode(), json.dumps({"name": "x", "mode": 1}).encode(),
                 json.dumps({"name": "x" * 100000}).encode(), b"\xff\xfe{}", json.dumps({"name": ["x"]}).encode()):
        st, err = rest(rsrv, "POST", "/api/rooms", alice, body)
        assert st in ((400, 413) if len(body) > 65536 else (400,)) and json_error(err), (body[:40], st, err)
    st, _ = rest(rsrv, "POST", "/api/rooms", None, {"name": "x"})
    assert st == 401
    for rid in ("nothex" * 4, "0" * 23, "0" * 25, "x" * 300, "%00"):
        st, err = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        assert st in (400, 404) and json_error(err), (rid, st, err)
    assert rsrv.worker_pids() == pids
    assert rsrv.health()["status"] == "ok"


def test_malformed_room_commands(rsrv):
    """Every room command, with missing or wrongly typed fields, unknown
    rooms and entries, huge strings and bad positions: a CommandResponse
    whose error starts with the documented code, the connection kept, the
    workers unchanged (no crash) and the room untouched."""
    alice = uname("alice")
    long_id = rsrv.ids["Long Song"]
    pids = rsrv.worker_pids()
    doc = create_room(rsrv, alice, "Fuzz", "open")
    rid = doc["id"]
    other = create_room(rsrv, uname("other"), "Other")
    unknown = "0123456789abcdef01234567"
    huge = "r" * 50000
    inv, nf, fb = "invalid:", "not_found:", "forbidden:"
    table = [
        ("CreateRoom", {}, inv),
        ("CreateRoom", {"name": ""}, inv),
        ("CreateRoom", {"name": 7}, inv),
        ("CreateRoom", {"name": None}, inv),
        ("CreateRoom", {"name": "n" * 101}, inv),
        ("CreateRoom", {"name": huge}, inv),
        ("CreateRoom", {"name": "x", "mode": "party"}, inv),
        ("CreateRoom", {"name": "x", "mode": 1}, inv),
        ("JoinRoom", {}, inv),
        ("JoinRoom", {"room_id": 12}, inv),
        ("JoinRoom", {"room_id": None}, inv),
        ("JoinRoom", {"room_id": unknown}, nf),
        ("JoinRoom", {"room_id": huge}, (inv, nf)),
        ("JoinRoom", {"room_id": other["id"], "invite": 5}, inv),
        ("JoinRoom", {"room_id": other["id"], "invite": "not.a.token"}, fb),
        ("JoinRoom", {"room_id": other["id"], "invite": doc["invite_token"]}, fb),
        ("JoinRoom", {"room_id": other["id"], "invite": huge}, (inv, fb)),
        ("LeaveRoom", {}, inv),
        ("LeaveRoom", {"room_id": []}, inv),
        ("LeaveRoom", {"room_id": unknown}, nf),
        ("RoomPlay", {}, inv),
        ("RoomPlay", {"room_id": unknown}, nf),
        ("RoomPlay", {"room_id": rid, "entry_id": "feedbeef"}, inv),
        ("RoomPlay", {"room_id": rid, "entry_id": 3}, inv),
        ("RoomPlay", {"room_id": rid, "track_id": "no-such-track"}, inv),
        ("RoomPlay", {"room_id": rid, "track_id": huge}, inv),
        ("RoomPlay", {"room_id": rid, "track_id": long_id, "position_ms": -1}, inv),
        ("RoomPlay", {"room_id": rid, "track_id": long_id, "position_ms": "10"}, inv),
        ("RoomPlay", {"room_id": rid, "track_id": long_id, "position_ms": 2 ** 64}, inv),
        ("RoomPause", {"room_id": unknown}, nf),
        ("RoomPause", {"room_id": rid, "position_ms": -5}, inv),
        ("RoomPause", {"room_id": rid, "position_ms": True}, inv),
        ("RoomSeek", {"room_id": rid}, inv),
        ("RoomSeek", {"room_id": rid, "position_ms": None}, inv),
        ("RoomSeek", {"room_id": rid, "position_ms": -1}, inv),
        ("RoomSeek", {"room_id": rid, "position_ms": "1000"}, inv),
        ("RoomSeek", {"room_id": rid, "position_ms": 1.5e300}, inv),
        ("RoomSeek", {"room_id": rid, "position_ms": -2 ** 63 - 1}, inv),
        ("RoomSeek", {"room_id": unknown, "position_ms": 0}, nf),
        ("RoomSeek", {"position_ms": 0}, inv),
        ("RoomSkip", {}, inv),
        ("RoomSkip", {"room_id": {"id": rid}}, inv),
        ("RoomSkip", {"room_id": unknown}, nf),
        ("RoomQueueAdd", {"room_id": rid}, inv),
        ("RoomQueueAdd", {"room_id": unknown, "track_id": long_id}, nf),
        ("RoomQueueAdd", {"room_id": rid, "track_id": 5}, inv),
        ("RoomQueueAdd", {"room_id": rid, "track_id": "no-such-track"}, inv),
        ("RoomQueueAdd", {"room_id": rid, "track_id": huge}, inv),
        ("RoomQueueAdd", {"room_id": rid, "artist": 5}, inv),
        ("RoomQueueAdd", {"room_id": rid, "playlist_id": ["x"]}, inv),
        ("RoomQueueAdd", {"room_id": rid, "track_id": long_id, "position": -1}, inv),
        ("RoomQueueAdd", {"room_id": rid, "track_id": long_id, "position": "0"}, inv),
        ("RoomQueueRemove", {"room_id": rid}, inv),
        ("RoomQueueRemove", {"room_id": rid, "entry_id": "feedbeef"}, inv),
        ("RoomQueueRemove", {"room_id": rid, "entry_id": 1}, inv),
        ("RoomQueueRemove", {"room_id": unknown, "entry_id": "feedbeef"}, nf),
        ("RoomQueueMove", {"room_id": rid, "entry_id": "feedbeef", "position": 0}, inv),
        ("RoomQueueMove", {"room_id": rid, "entry_id": "feedbeef"}, inv),
        ("RoomQueueMove", {"room_id": unknown, "entry_id": "feedbeef", "position": 0}, nf),
        ("RoomMemberStatus", {"room_id": rid}, inv),
        ("RoomMemberStatus", {"room_id": rid, "position_ms": "x", "buffering": False}, inv),
        ("RoomMemberStatus", {"room_id": rid, "position_ms": -1, "buffering": False}, inv),
        ("RoomMemberStatus", {"room_id": rid, "position_ms": 0, "buffering": "yes"}, inv),
        ("RoomMemberStatus", {"room_id": unknown, "position_ms": 0, "buffering": False}, nf),
        ("TimeSync", {"client_ms": "now"}, inv),
        ("TimeSync", {"client_ms": [1]}, inv),
    ]

    async def go():
        c = await Client.open(rsrv, alice)
        await c.ok("JoinRoom", room_id=rid)
        await c.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        await play_first(c, rid, position_ms=1000)
        entry = (await c.ok("JoinRoom", room_id=rid))["queue"][0]["entry_id"]
        st, before = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        # entry-level refusals need a real entry too
        extra = [("RoomQueueMove", {"room_id": rid, "entry_id": entry, "position": -1}, inv),
                 ("RoomQueueMove", {"room_id": rid, "entry_id": entry, "position": "0"}, inv)]
        for command, fields, want in table + extra:
            want = want if isinstance(want, tuple) else (want,)
            r = await c.cmd(command, **fields)
            assert set(r) == RESPONSE_KEYS, (command, fields, r)
            assert r["success"] is False and r["data"] is None, (command, fields, r)
            assert isinstance(r["error"], str) and r["error"].startswith(want), (command, str(fields)[:200], r)
        # not a JSON object, and a command without its command_id
        await c.send("[1,2,3]")
        r = await c.recv(10)
        assert r["event"] == "CommandResponse" and r["success"] is False, r
        await c.send(json.dumps({"command": "RoomSeek", "room_id": rid, "position_ms": "x"}))
        r = await c.recv(10)
        assert r["event"] == "CommandResponse" and r["success"] is False, r
        # the connection is still served, the room untouched
        await c.ok("TimeSync")
        st, after = rest(rsrv, "GET", f"/api/rooms/{rid}", alice)
        assert after["queue"] == before["queue"] and after["members"] == before["members"]
        assert after["playback"]["entry_id"] == before["playback"]["entry_id"]
        assert start_of_current(after["playback"]) == start_of_current(before["playback"])
        assert after["playback"]["playing"] is True
        assert after["name"] == "Fuzz" and after["host"] == alice
        await c.close()

    run(go())
    assert rsrv.worker_pids() == pids
    assert rsrv.health()["status"] == "ok"


def test_kill_9_a_worker_keeps_the_room(talas_server, roomlib, tmp_path):
    """The worker of the host's connection is killed -9 while the room
    plays: the room is intact (GET from anywhere, same queue and same
    start instant), the member on the other worker keeps commanding it,
    the killed worker is respawned, and JoinRoom works on the new one. A
    member whose only connection died there is dropped once silent for
    30 s (the test waits for it: about 35 s)."""
    srv = start_room_server(own_room_server(talas_server, roomlib, "killsrv"))
    alice, bob, carol, dora = uname("alice"), uname("bob"), uname("carol"), uname("dora")
    long_id, s1 = srv.ids["Long Song"], srv.ids["Short One"]
    doc = create_room(srv, alice, "Survivor", "open")
    rid = doc["id"]

    async def go():
        a, b = await two_workers(srv, alice, bob)
        await a.ok("JoinRoom", room_id=rid)
        await b.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        # dora's only connection is on the worker that will be killed
        d = await Client.open(srv, dora, on=a.pid)
        await d.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        await a.ok("RoomQueueAdd", room_id=rid, track_id=long_id)
        await a.ok("RoomQueueAdd", room_id=rid, track_id=s1)
        await play_first(a, rid, position_ms=10000)
        st, before = rest(srv, "GET", f"/api/rooms/{rid}", bob)
        assert st == 200
        victim = a.pid
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await a.recv(10)
        loop = asyncio.get_running_loop()
        pids = await loop.run_in_executor(None, lambda: srv.wait_worker_pids(2, timeout=30, exclude=[victim]))
        assert b.pid in pids
        respawned = [p for p in pids if p != b.pid][0]
        for who in (alice, bob):
            st, got = rest(srv, "GET", f"/api/rooms/{rid}", who)
            assert st == 200, (st, got)
            assert got["name"] == "Survivor" and got["queue"] == before["queue"]
            assert got["playback"]["entry_id"] == before["playback"]["entry_id"]
            assert start_of_current(got["playback"]) == start_of_current(before["playback"])
            assert got["playback"]["playing"] is True
        # bob, on the surviving worker, still commands it
        b.kept.clear()
        await b.ok("RoomSeek", room_id=rid, position_ms=50000)
        ev = await b.event("RoomState", lambda e: e["room_id"] == rid)
        assert ev["room"]["playback"]["entry_id"] == before["playback"]["entry_id"]
        # a newcomer with the invite on the respawned worker joins, and
        # bob hears it through the master's relay; alice rejoins there
        c = await Client.open(srv, carol, on=respawned)
        room = await c.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        assert room["queue"] == before["queue"]
        assert carol in [m["user_id"] for m in room["members"]]
        ev = await b.event("RoomMemberJoined", lambda e: e["room_id"] == rid and e["user_id"] == carol)
        a2 = await Client.open(srv, alice, on=respawned)
        await a2.ok("JoinRoom", room_id=rid, invite=doc["invite_token"])
        b.kept.clear()
        c.kept.clear()
        await a2.ok("RoomSkip", room_id=rid)
        for x in (b, c):
            ev = await x.event("RoomState", lambda e: e["room_id"] == rid)
            assert ev["room"]["playback"]["track_id"] == s1
        # dora's connection died with its worker, without a close: she is
        # a member until she has been silent for 30 s, then dropped and
        # announced, while the others keep reporting
        st, got = rest(srv, "GET", f"/api/rooms/{rid}", bob)
        assert dora in [m["user_id"] for m in got["members"]], got
        deadline = time.monotonic() + 60
        left = None
        while left is None:
            assert time.monotonic() < deadline, "dora was never dropped as a silent member"
            for x in (a2, b, c):
                await x.ok("RoomMemberStatus", room_id=rid, position_ms=0, buffering=False)
            left = next((m for m in b.kept if m.get("event") == "RoomMemberLeft" and m["user_id"] == dora), None)
            if left is None:
                await asyncio.sleep(2)
        check_lean(left["room"], rid, members=3)
        st, got = rest(srv, "GET", f"/api/rooms/{rid}", bob)
        assert [m["user_id"] for m in got["members"]] == [alice, bob, carol], got
        for x in (a2, b, c):
            await x.close()

    run(go())
    assert srv.health()["status"] == "ok"


def test_idle_expiry_and_limits(talas_server, roomlib, tmp_path):
    """rooms.idle_timeout: a room left empty is gone after it (404 to GET,
    not_found to JoinRoom) while a room with a member stays; and the
    rooms.max_per_user, rooms.max_queue and rooms.max_members limits answer
    as quotas; rooms.invite_ttl sets the invite's lifetime."""
    srv = start_room_server(own_room_server(
        talas_server, roomlib, "idlesrv",
        "rooms:\n  idle_timeout: 2\n  max_per_user: 3\n  max_queue: 4\n  max_members: 2\n  invite_ttl: 120\n"))
    alice, bob = uname("alice"), uname("bob")
    long_id = srv.ids["Long Song"]

    async def go():
        a = await Client.open(srv, alice)
        b = await Client.open(srv, bob, off=a.pid)
        gone = await a.ok("CreateRoom", name="Gone soon")
        kept = await b.ok("CreateRoom", name="Kept")
        await a.ok("LeaveRoom", room_id=gone["id"])  # empty now
        t_empty = time.monotonic()
        loop = asyncio.get_running_loop()

        def expired():
            return rest(srv, "GET", f"/api/rooms/{gone['id']}", alice)[0] == 404
        await loop.run_in_executor(None, lambda: tf.wait_for(expired, 30, interval=0.2, what="the room to expire"))
        await a.refused("JoinRoom", "not_found:", room_id=gone["id"], invite=gone["invite_token"])
        # bob, still in his room and reporting, keeps it past the timeout
        while time.monotonic() < t_empty + 4:
            await b.ok("RoomMemberStatus", room_id=kept["id"], position_ms=0, buffering=False)
            await asyncio.sleep(0.5)
        st, got = rest(srv, "GET", f"/api/rooms/{kept['id']}", bob)
        assert st == 200 and got["name"] == "Kept", (st, got)

        # max_queue: 4 entries, the fifth is refused, as a quota
        for _ in range(4):
            await b.ok("RoomQueueAdd", room_id=kept["id"], track_id=long_id)
        err = await b.refused("RoomQueueAdd", "quota:", room_id=kept["id"], track_id=long_id)
        assert "rooms.max_queue" in err, err
        err = await b.refused("RoomQueueAdd", "quota:", room_id=kept["id"], artist="Room Artist")

        # max_members: 2; bob and alice are, carol is refused
        assert abs(claims_of(kept["invite_token"])["exp"] - (time.time() + 120)) <= 30
        await a.ok("JoinRoom", room_id=kept["id"], invite=kept["invite_token"])
        c = await Client.open(srv, uname("carol"))
        err = await c.refused("JoinRoom", "quota:", room_id=kept["id"], invite=kept["invite_token"])
        assert "rooms.max_members" in err, err
        await c.close()

        # max_per_user: bob hosts one; two more, then refused (WS and REST)
        await b.ok("CreateRoom", name="Two")
        await b.ok("CreateRoom", name="Three")
        err = await b.refused("CreateRoom", "quota:", name="Four")
        assert "rooms.max_per_user" in err, err
        st, err = rest(srv, "POST", "/api/rooms", bob, {"name": "Four"})
        assert st in (409, 429) and json_error(err), (st, err)
        await a.close()
        await b.close()

    run(go())


def test_rooms_count_against_the_user_data_budget(talas_server, roomlib, tmp_path):
    """A room is a user record: with storage.user_data_max at 64 KiB, queue
    adds are refused once the users' databases reach it ("quota:
    storage.user_data_max"), and so is a new room (REST 507, as for the
    other user records), while the room plays on: seeking and skipping
    store nothing new."""
    srv = own_room_server(talas_server, roomlib, "budget")
    text = open(srv.config_path).read()
    assert "  map_size: 256MiB\n" in text
    srv.write_config(text=text.replace("  map_size: 256MiB\n", "  map_size: 256MiB\n  user_data_max: 64KiB\n"))
    start_room_server(srv)
    users = [uname("fill") for _ in range(4)]
    long_id = srv.ids["Long Song"]
    refused = None

    async def go():
        nonlocal refused
        for u in users:
            c = await Client.open(srv, u)
            data = await c.ok("CreateRoom", name="Budget", mode="host")
            rid = data["id"]
            for _ in range(166):
                r = await c.cmd("RoomQueueAdd", room_id=rid, artist="Room Artist")
                if not r["success"]:
                    refused = (u, rid, r["error"])
                    break
            if refused:
                # the full room still plays: nothing new is stored
                await c.ok("RoomPlay", room_id=rid, entry_id=(await c.ok("JoinRoom", room_id=rid))["queue"][0]["entry_id"])
                await c.ok("RoomSeek", room_id=rid, position_ms=5000)
                await c.ok("RoomSkip", room_id=rid)
                err = await c.refused("RoomQueueAdd", "quota:", room_id=rid, track_id=long_id)
                assert "storage.user_data_max" in err, err
                await c.close()
                return
            await c.close()

    try:
        run(go(), timeout=300)
        assert refused is not None, "64 KiB of rooms were stored without a refusal"
        assert refused[2] == "quota: storage.user_data_max (65536)", refused
        st, doc = rest(srv, "POST", "/api/rooms", uname("late"), {"name": "One more"})
        assert st == 507 and "storage.user_data_max" in json.dumps(doc), (st, doc)
        assert srv.health()["status"] == "ok"
    finally:
        srv.kill()


def test_config_keys_are_checked(talas_server, roomlib, tmp_path):
    """talas-master -t refuses an out-of-range rooms key with file:line:key."""
    srv = room_server(tmp_path / "badconf", roomlib, "rooms:\n  max_members: 0\n")
    cp = tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)
    assert cp.returncode == 1, cp
    assert re.search(r"talas\.yaml:\d+:\d+: rooms\.max_members", cp.stdout + cp.stderr), cp
    srv = room_server(tmp_path / "goodconf", roomlib,
                      "rooms:\n  idle_timeout: 600\n  max_members: 1000\n  max_queue: 500\n"
                      "  max_per_user: 5\n  invite_ttl: 604800\n")
    cp = tf.run([tf.TALAS_MASTER, "-t", "-c", srv.config_path], check=False)
    assert cp.returncode == 0, cp


def test_cluster_mode_answers_unavailable(talas_server, roomlib, redis_server, pg_database):
    """In cluster mode rooms are not there yet, and say so: REST (and a
    room's queue over /hls/queue/room/) answers 501 with a JSON error, every room command "unavailable: rooms are not
    available in cluster mode yet"; TimeSync, which needs no room, works."""
    import cluster_fixtures as cf
    srv = own_room_server(talas_server, roomlib, "node-a")
    srv.write_config(text=srv.config_path.read_text()
                     + cf.cluster_yaml("node-a", redis_server.address, pg_database[1]))
    r = srv.talasctl("db", "migrate")
    assert r.returncode == 0, (r.stdout, r.stderr)
    start_room_server(srv)
    tf.wait_for(lambda: cf.engines_ready(srv), 15, what="every worker on Redis and PostgreSQL")
    alice = uname("alice")
    st, err = rest(srv, "POST", "/api/rooms", alice, {"name": "Cluster"})
    assert st == 501 and json_error(err), (st, err)
    st, err = rest(srv, "GET", f"/api/rooms/{'0' * 24}", alice)
    assert st == 501 and json_error(err), (st, err)
    # and a room's queue as one stream (/hls/queue/room/...) says the same
    st, err = rest(srv, "GET", f"/hls/queue/room/{'0' * 24}/master.m3u8", alice)
    assert st == 501 and err["error"]["code"] == "rooms_unavailable", (st, err)
    want = "unavailable: rooms are not available in cluster mode yet"

    async def go():
        c = await Client.open(srv, alice)
        for command, fields in (("CreateRoom", {"name": "Cluster"}), ("JoinRoom", {"room_id": "0" * 24}),
                                ("RoomSeek", {"room_id": "0" * 24, "position_ms": 0}),
                                ("RoomQueueAdd", {"room_id": "0" * 24, "track_id": srv.ids["Long Song"]})):
            err = await c.refused(command, "unavailable:", **fields)
            assert err == want, err
        assert (await c.ok("TimeSync", client_ms=5))["client_ms"] == 5
        await c.close()

    run(go())
