"""What Subsonic apps do shows in Talas's own API and events (issue 19,
acceptance 4), against a real talas-master of two workers: a WebSocket
client (python3-websockets) subscribed on /api/ws sees the events of /rest
calls answered by the other worker (one keep-alive connection, reopened
until a "now playing" scrobble on it is recorded by a worker other than
the WebSocket's, as getNowPlaying's playerId tells):

  star                      TrackLiked; the song in GET /api/users/{id}/likes
  scrobble submission=false PlaybackStarted; the user in getNowPlaying
  scrobble (submission=true) PlaybackStarted and PlaybackStopped; a play in
                            /api/analytics/tracks/{id} and the user's history;
                            no longer in getNowPlaying
  createPlaylist            PlaylistUpdated; the playlist in /api/playlists/{id}
"""
import asyncio
import http.client
import json
import secrets
from urllib.parse import urlencode

import pytest

import subsonic_fixtures as sf
from subsonic_fixtures import PASSWORDS, lib, serve  # noqa: F401

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

BACKEND_KEY = secrets.token_urlsafe(32)
EVENTS = ["TrackLiked", "PlaybackStarted", "PlaybackStopped", "PlaylistUpdated"]


@pytest.fixture(scope="module")
def asrv(tmp_path_factory, lib):
    workdir = tmp_path_factory.mktemp("actsrv")
    yield from serve(workdir, lib, extra="  max_failed_logins: 0\n", backend_key=BACKEND_KEY)


class Rest:
    """/rest calls of alice on one keep-alive connection: one worker."""

    def __init__(self, srv):
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)

    def __call__(self, method, **params):
        q = urlencode(dict({"u": "alice", "p": PASSWORDS["alice"], "f": "json", "c": "acttest"}, **params),
                      doseq=True)
        self.conn.request("GET", f"/rest/{method}?{q}")
        r = self.conn.getresponse()
        body = r.read()
        assert r.status == 200 and r.getheader("Connection", "").lower() != "close", body
        doc = json.loads(body)["subsonic-response"]
        assert doc["status"] == "ok", doc
        return doc

    def close(self):
        self.conn.close()


async def recv_until(ws, pred):
    return await sf.recv_until(ws, pred, timeout=15)


def event(name, **fields):
    return lambda m: m.get("event") == name and all(m.get(k) == v for k, v in fields.items())


def test_subsonic_activity_in_talas_api_and_events(asrv):
    srv = asrv
    tone = srv.tracks_by_title["Tone Two"]["id"]
    noise = srv.tracks_by_title["Noise One"]["id"]
    # the search for a connection plays other tracks: tone's plays are the test's
    others = sorted(t["id"] for title, t in srv.tracks_by_title.items() if title != "Tone Two")[:2]
    before = srv.get_json(f"/api/analytics/tracks/{tone}")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/ws?user_id=alice") as ws:
            await ws.send(json.dumps({"command": "Subscribe", "command_id": "s", "events": EVENTS}))
            await recv_until(ws, lambda m: m.get("command_id") == "s")
            await ws.send(json.dumps({"command": "GetStatus", "command_id": "st"}))
            status = await recv_until(ws, lambda m: m.get("command_id") == "st")
            ws_pid = status["data"]["worker_pid"]

            # a connection whose worker is not the WebSocket's
            other = None
            for i in range(40):
                rest = Rest(srv)
                track = others[i % 2]  # a new track: a new session, recorded by this worker
                await asyncio.to_thread(rest, "scrobble", id=track, submission="false")
                await recv_until(ws, event("PlaybackStarted", track_id=track, user_id="alice"))
                now = (await asyncio.to_thread(rest, "getNowPlaying"))["nowPlaying"]["entry"]
                mine = [e for e in now if e["username"] == "alice"]
                assert [e["id"] for e in mine] == [track], now
                if mine[0]["playerId"] != ws_pid:
                    other = rest
                    break
                rest.close()
            assert other is not None, "every connection landed on the WebSocket's worker"

            await asyncio.to_thread(other, "star", id=tone)
            liked = await recv_until(ws, event("TrackLiked", track_id=tone))
            await asyncio.to_thread(other, "scrobble", id=tone)
            started = await recv_until(ws, event("PlaybackStarted", track_id=tone))
            stopped = await recv_until(ws, event("PlaybackStopped", track_id=tone))
            now = (await asyncio.to_thread(other, "getNowPlaying"))["nowPlaying"].get("entry", [])
            made = await asyncio.to_thread(other, "createPlaylist", name="act list", songId=[noise, tone])
            pid = made["playlist"]["id"]  # made by Talas, not the name
            added = [await recv_until(ws, event("PlaylistUpdated", playlist_id=pid, track_id=t))
                     for t in (noise, tone)]
            other.close()
            return liked, started, stopped, now, added, pid

    liked, started, stopped, now, added, pid = asyncio.run(asyncio.wait_for(go(), 120))
    assert liked["user_id"] == "alice"
    assert started["user_id"] == "alice" and stopped["user_id"] == "alice"
    assert [a["action"] for a in added] == ["Added", "Added"]
    # the finished play ended "now playing"
    assert not [e for e in now if e["username"] == "alice"], now

    # the like in Talas's API: with the backend key, or alice's own view
    st, _, body = srv.get("/api/users/alice/likes", headers={"Authorization": f"Bearer {BACKEND_KEY}"})
    assert st == 200, body
    likes = json.loads(body)
    assert likes["user_id"] == "alice" and likes["total"] == 1
    assert [x["track_id"] for x in likes["likes"]] == [tone] and likes["likes"][0]["liked_at_ms"] > 0
    st, _, body = srv.get("/api/users/bob/likes", headers={"Authorization": f"Bearer {BACKEND_KEY}"})
    assert st == 200 and json.loads(body)["total"] == 0, body
    st, _, body = srv.get("/api/users/alice/likes")
    assert st == 401, body

    # the play in the analytics
    after = srv.get_json(f"/api/analytics/tracks/{tone}")
    assert after["plays"] == before["plays"] + 1
    hist = srv.get_json("/api/analytics/users/alice")
    assert any(h["track_id"] == tone for h in hist["history"])

    # the playlist in /api/playlists
    pl = srv.get_json(f"/api/playlists/{pid}")
    assert pl["name"] == "act list" and pl["owner"] == "alice" and [t["track_id"] for t in pl["tracks"]] == [noise, tone]
