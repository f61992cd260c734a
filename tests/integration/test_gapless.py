"""Continuous (gapless) HLS of a queue: /hls/queue/{playlist|artist|room}/{id}/...

A queue of four tracks of mixed sources, made at test time (no media is
committed): MP3 44.1 kHz and Opus 48 kHz of real music (the Ogg
soundtracks of Debian's frozen-bubble-data), FLAC 48 kHz of real music
with a 660 Hz tone under it, and a mono WAV 22.05 kHz tone of 440 Hz,
each of a length that is no whole number of AAC frames. Every segment of
the medium and mobile rungs (44.1 and 22.05 kHz) is fetched cold, in
order, and the medium rung's again in a scrambled order on a fresh server
(its own cache); the joined init + segments are decoded with
ffmpeg (fMP4 without an edit list: the queue's priming frame is left out
of segment 0, so decoded sample 0 is the first track's first sample).

The references are the sources decoded by ffmpeg at the rung's rate and
channels (ffmpeg trims the MP3's LAME delay and the Opus pre-skip, as the
server's measure does), laid end to end. Asserted:
  - the EXTINFs add up to the sum of the tracks' decoded lengths within
    1 ms per boundary, and the decoded stream is that long plus at most the
    last AAC frame's padding (never listed, after the last track);
  - at every track boundary, a window before it matches the end of the
    track before and a window after it the start of the track after:
    the best lag of the difference is 0 (+-1 sample: the tracks' lengths
    are rounded at the rung's rate one by one), and the error there (and
    on a window straddling it) is at most 1.5 times the worst error of
    continuous encodes of the joined references by the ffmpeg CLI, as
    test_seams.py judges chunk seams: one from 0 and one from where the
    encoder of the chunk holding the boundary starts, each also of its
    input scaled by +-0.01 dB (a hard cut codes worse than the music
    around it, whoever encodes it, and differently with another history
    or an input 1e-6 away). An inserted silence, a dropped or repeated
    block, or priming left in shows as a lag or as an error many times
    that. The coding noise inside the tracks is printed;
  - both fetches give the same bytes (chunks are pure functions of the
    queue and the rung), and the artist's queue of the same tracks in the
    same order (album, then track number) is the same stream, and so is a
    listening room's queue of those tracks (for its members and its
    invite's holders only).
"""

import array
import json
import math
import random
import re
import secrets
import subprocess
import urllib.parse
from pathlib import Path

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

websockets = pytest.importorskip("websockets", reason="install Debian package python3-websockets")

MUSIC = Path("/usr/share/games/frozen-bubble/snd")
ARTIST = "Gapless Artiste / Été"
# title: (file, seconds, ffmpeg input args, encoder args, album, track number)
TRACKS = [
    ("Gap 1 mp3", "g1.mp3", 7.31,
     ["-ss", "60", "-i", MUSIC / "frozen-mainzik-1p.ogg"],
     ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "256k"], "A side", 1),
    ("Gap 2 flac48", "g2.flac", 6.77,
     ["-ss", "30", "-i", MUSIC / "introzik.ogg", "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
      "-filter_complex", "[0:a]aresample=48000[m];[1:a]volume=0.15,aformat=channel_layouts=stereo[t];"
      "[m][t]amix=inputs=2:normalize=0:duration=first"],
     ["-ar", "48000", "-c:a", "flac"], "A side", 2),
    ("Gap 3 wav mono", "g3.wav", 5.123,
     ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"],
     ["-af", "volume=0.5", "-ar", "22050", "-ac", "1", "-c:a", "pcm_s16le"], "B side", 1),
    ("Gap 4 opus", "g4.opus", 8.05,
     ["-ss", "50", "-i", MUSIC / "frozen-mainzik-2p.ogg"],
     ["-ar", "48000", "-c:a", "libopus", "-b:a", "160k"], "B side", 2),
]
RUNG = "medium"
RUNGS = {"medium": (44100, 192), "mobile": (22050, 96)}  # rate, kbit/s
# Our resampler and ffmpeg's agree to about 1e-6, not bit for bit, and an
# AAC encoder fed inputs that close codes differently (chaotically): each
# continuous encode is also made of its input scaled by a hundredth of a dB
PERTURB_DB = (0.0, -0.01, 0.01)
PREROLL_MS = 1500  # TALAS_TRANSCODE_PREROLL_AAC_MS
LIMIT = 1.5
FLOOR = 1e-4


def ffmpeg(args, timeout=120):
    tf.run(["nice", "-n", "10", "ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"]
           + [str(a) for a in args], timeout=timeout)


def decode(path, rate):
    """Stereo float PCM of PATH at RATE, as two arrays."""
    cp = subprocess.run(["nice", "-n", "10", "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror",
                         "-i", str(path), "-ac", "2", "-ar", str(rate), "-f", "f32le", "-"],
                        capture_output=True, timeout=120)
    assert cp.returncode == 0 and cp.stderr == b"", f"{path}: {cp.stderr.decode(errors='replace')[:400]}"
    a = array.array("f")
    a.frombytes(cp.stdout)
    return a[0::2], a[1::2]


def rms_diff(x, xo, src, so, n):
    """Worst channel RMS of x[xo:xo+n] - src[so:so+n]."""
    worst = 0.0
    for xc, sc in zip(x, src):
        worst = max(worst, math.sqrt(sum((xc[xo + i] - sc[so + i]) ** 2 for i in range(n)) / n))
    return worst


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    if not all((MUSIC / p).is_file() for p in ("frozen-mainzik-1p.ogg", "introzik.ogg", "frozen-mainzik-2p.ogg")):
        pytest.skip(f"no real music in {MUSIC}: install Debian package 'frozen-bubble-data'")
    lib = tmp_path_factory.mktemp("gapless") / "lib"
    lib.mkdir()
    for title, fname, seconds, inputs, args, album, number in TRACKS:
        # through PCM, so every source starts at timestamp 0 (an Opus file
        # cut straight from the Ogg at -ss starts at granule 488, and
        # libavformat then gives some of its pages timestamps 10 ms off,
        # which a decoder placing frames by timestamp follows)
        wav = lib.parent / "cut.wav"
        ffmpeg(inputs + ["-t", seconds, "-c:a", "pcm_f32le", wav])
        ffmpeg(["-i", wav, "-metadata", f"title={title}", "-metadata", f"artist={ARTIST}",
                "-metadata", f"album={album}", "-metadata", f"track={number}"] + args + [lib / fname])
        wav.unlink()
    return lib


def start_server(tmp_path_factory, library, name):
    srv = tf.TalasServer(tmp_path_factory.mktemp(name), [library], workers=2)
    srv.start(wait_scan=True)
    srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
    assert len(srv.ids) == len(TRACKS), srv.ids
    return srv


async def make_playlist(srv, pl, user="gapless", token=None):
    url = f"ws://127.0.0.1:{srv.port}/api/ws?user_id={user}" + (f"&token={token}" if token else "")
    async with websockets.connect(url) as ws:
        for title, *_ in TRACKS:
            r = await cf.command(ws, {"command": "AddToPlaylist", "command_id": secrets.token_hex(4),
                                      "playlist_id": pl, "track_id": srv.ids[title]})
            assert r["success"], r


@pytest.fixture(scope="module")
def gsrv(tmp_path_factory, library):
    srv = start_server(tmp_path_factory, library, "gsrv")
    try:
        import asyncio
        asyncio.run(make_playlist(srv, "mix"))
        yield srv
    finally:
        srv.kill()


_references = {}


def references(library, rate):
    """Each track decoded by ffmpeg at RATE, stereo."""
    if rate not in _references:
        _references[rate] = [decode(library / fname, rate) for _, fname, *_ in TRACKS]
    return _references[rate]


def fetch_all(srv, base, order_seed=None, query=""):
    """init + every segment of BASE (a rung's URL prefix, QUERY after each
    URL), in order or scrambled; returns (bytes, EXTINF durations, segment
    bodies)."""
    st, _, pl = srv.get(f"{base}/playlist.m3u8{query}", timeout=60)
    assert st == 200, (st, pl[:300])
    text = pl.decode()
    extinfs = [float(m) for m in re.findall(r"#EXTINF:([0-9.]+),", text)]
    uris = [line.removesuffix(query) for line in text.split("\n") if line.endswith(".m4s" + query)]
    assert len(uris) == len(extinfs) >= 4, text
    st, _, init = srv.get(f"{base}/init.mp4{query}", timeout=60)
    assert st == 200, (st, init[:300])
    order = list(range(len(uris)))
    if order_seed is not None:
        random.Random(order_seed).shuffle(order)
    bodies = {}
    for k in order:
        st, _, bodies[k] = srv.get(f"{base}/{uris[k]}{query}", timeout=300)
        assert st == 200, (k, st, bodies[k][:300])
    segs = [bodies[k] for k in range(len(uris))]
    return init + b"".join(segs), extinfs, segs


def check_continuity(tmp_path, data, extinfs, references, rung=RUNG):
    rate, kbps = RUNGS[rung]
    window = rate // 100  # 10 ms
    preroll_frames = -(-PREROLL_MS * rate // 1024000)  # as talas_layout_compute rounds it
    lengths = [len(r[0]) for r in references]
    expected = sum(lengths)
    boundaries = len(lengths) - 1
    tol = boundaries * rate // 1000  # 1 ms per boundary
    listed = round(sum(extinfs) * rate)
    assert abs(listed - expected) <= tol + 1, (listed, expected)

    f = tmp_path / "queue.mp4"
    f.write_bytes(data)
    ours = decode(f, rate)
    # the last AAC frame's padding follows the last track, never a boundary
    assert -tol <= len(ours[0]) - expected <= 1024 + tol, (len(ours[0]), expected)

    src = ([], [])
    for r in references:
        src[0].extend(r[0])
        src[1].extend(r[1])
    starts = [sum(lengths[:i]) for i in range(len(lengths) + 1)]

    # the coding noise inside the tracks, away from the boundaries
    rnd = random.Random(5)
    noise = []
    for _ in range(40):
        t = rnd.randrange(len(lengths))
        lo, hi = starts[t] + 3 * window, starts[t + 1] - 4 * window
        at = rnd.randrange(lo, hi)
        noise.append(rms_diff(ours, at, src, at, 2 * window))
    noise_level = max(max(noise), FLOOR)

    # a continuous encode of the joined references by the ffmpeg CLI (same
    # encoder, bitrate, rate): a hard cut between two pieces codes worse
    # than the music around it, whoever encodes it
    raw = tmp_path / "joined.f32"
    inter = array.array("f", [0.0]) * (2 * expected)
    inter[0::2], inter[1::2] = array.array("f", src[0]), array.array("f", src[1])
    raw.write_bytes(inter.tobytes())
    # A continuous encoder's error at one place depends on its history
    # (test_seams.py): the reference is a family of continuous encodes, one
    # from 0 and one from where the encoder of the chunk holding each
    # boundary starts (its pre-roll's first frame, from the EXTINFs: chunk n
    # starts at frame (its start + priming) / 1024), each counted at the
    # boundaries at least 1 s after its start; e_cont(b) is the worst.
    seg_starts = [0]
    for d in extinfs:
        seg_starts.append(seg_starts[-1] + round(d * rate))
    first_frames = [0] + [(x + 1024) // 1024 for x in seg_starts[1:-1]]
    enc_starts = {0}
    for t in range(1, len(lengths)):
        c = max(n for n, f in enumerate(first_frames) if f * 1024 - 1024 <= starts[t])
        enc_starts.add(max(0, first_frames[c] - preroll_frames) * 1024)
    family = []
    for k in sorted(enc_starts):
        for i, db in enumerate(PERTURB_DB):
            out = tmp_path / f"continuous{k}.{i}.m4a"
            ffmpeg(["-f", "f32le", "-ar", rate, "-ac", 2, "-i", raw, "-af",
                    f"atrim=start_sample={k},asetpts=PTS-STARTPTS,volume={db}dB:precision=float",
                    "-c:a", "aac", "-b:a", f"{kbps}k", out])
            family.append((k, decode(out, rate)))

    def e_cont_at(lo):
        errs = [rms_diff(x, lo - k, src, lo, 2 * window) for k, x in family if k == 0 or lo - k >= rate]
        return max(errs)

    rows = []
    for t in range(1, len(lengths)):
        b = starts[t]
        # each side on its own: before b against the end of track t-1,
        # after b against the start of track t
        for side, lo in (("before", b - 2 * window), ("after", b)):
            lags = {lag: rms_diff(ours, lo + lag, src, lo, 2 * window) for lag in range(-4, 5)}
            best = min(lags, key=lags.get)
            e_cont = e_cont_at(lo)
            limit = LIMIT * max(e_cont, FLOOR)
            rows.append(f"boundary {t} ({b / rate:.4f} s) {side}: lag {best}, error {lags[0]:.5f}, "
                        f"continuous encode {e_cont:.5f}, noise {noise_level:.5f}, limit {limit:.5f}")
            assert abs(best) <= 1, rows[-1] + f" {lags}"
            assert lags[0] <= limit, rows[-1]
        # straddling the boundary: both tracks joined with nothing between
        e = rms_diff(ours, b - window, src, b - window, 2 * window)
        e_cont = e_cont_at(b - window)
        limit = LIMIT * max(e_cont, FLOOR)
        rows.append(f"boundary {t} straddled: error {e:.5f}, continuous encode {e_cont:.5f}, limit {limit:.5f}")
        assert e <= limit, rows[-1]
    print(f"\n{rung}:\n" + "\n".join(rows) + f"\ndecoded {len(ours[0])} samples, tracks {expected}, listed {listed}")


def test_master_playlist_lists_the_rungs(gsrv):
    st, h, body = gsrv.get("/hls/queue/playlist/mix/master.m3u8")
    assert st == 200, body
    text = body.decode()
    assert text.startswith("#EXTM3U")
    assert f"{RUNG}/playlist.m3u8" in text
    assert h.get("content-type") == "application/vnd.apple.mpegurl"


@pytest.mark.parametrize("rung", list(RUNGS))
def test_queue_in_order_is_sample_continuous(gsrv, library, tmp_path, rung):
    data, extinfs, segs = fetch_all(gsrv, f"/hls/queue/playlist/mix/{rung}")
    check_continuity(tmp_path, data, extinfs, references(library, RUNGS[rung][0]), rung)
    if rung == RUNG:
        gsrv.in_order = segs


def test_queue_scrambled_on_a_fresh_server(tmp_path_factory, library, gsrv, tmp_path):
    srv = start_server(tmp_path_factory, library, "fresh")
    try:
        import asyncio
        asyncio.run(make_playlist(srv, "mix2"))
        data, extinfs, segs = fetch_all(srv, f"/hls/queue/playlist/mix2/{RUNG}", order_seed=7)
        check_continuity(tmp_path, data, extinfs, references(library, RUNGS[RUNG][0]))
        if hasattr(gsrv, "in_order"):
            assert segs == gsrv.in_order, "the same queue made its segments otherwise"
    finally:
        srv.kill()


def test_artist_queue_is_the_playlist_in_album_order(gsrv):
    name = urllib.parse.quote(ARTIST, safe="")
    st, _, a = gsrv.get(f"/hls/queue/artist/{name}/{RUNG}/playlist.m3u8")
    assert st == 200, a
    st, _, p = gsrv.get(f"/hls/queue/playlist/mix/{RUNG}/playlist.m3u8")
    assert st == 200, p
    assert a == p
    st, _, seg_a = gsrv.get(f"/hls/queue/artist/{name}/{RUNG}/1.m4s", timeout=120)
    st2, _, seg_p = gsrv.get(f"/hls/queue/playlist/mix/{RUNG}/1.m4s", timeout=120)
    assert st == st2 == 200
    assert seg_a == seg_p


@pytest.mark.parametrize("path,status,code", [
    # a room's queue: its members' or its invite holders', never anybody's
    ("/hls/queue/room/0123456789abcdef01234567/master.m3u8", 401, "unauthorized"),
    ("/hls/queue/room/0123456789abcdef01234567/medium/0.m4s?invite=garbage", 401, "invalid_token"),
    ("/hls/queue/room/not-a-room/master.m3u8", 404, "not_found"),
    ("/hls/queue/room/0123456789ABCDEF01234567/master.m3u8", 404, "not_found"),
    ("/hls/queue/playlist/nope/master.m3u8", 404, "not_found"),
    ("/hls/queue/artist/Nobody%20Here/master.m3u8", 404, "not_found"),
    ("/hls/queue/artist/bad%zz/master.m3u8", 404, "not_found"),
    ("/hls/queue/artist/a%00b/master.m3u8", 404, "not_found"),
    ("/hls/queue/album/x/master.m3u8", 404, "not_found"),
    ("/hls/queue/playlist/mix/nosuch/playlist.m3u8", 404, "unknown_quality"),
    ("/hls/queue/playlist/mix/medium/9999.m4s", 404, "not_found"),
    ("/hls/queue/playlist/mix/medium/01.m4s", 404, "not_found"),
    ("/hls/queue/playlist/mix/medium/playlist.m3u8?normalize=-14", 400, "invalid_parameter"),
])
def test_bad_requests_get_json_errors(gsrv, path, status, code):
    st, _, body = gsrv.get(path)
    assert st == status, (path, st, body[:300])
    assert json.loads(body)["error"]["code"] == code


def test_post_is_refused_head_is_answered(gsrv):
    st, _, _ = gsrv.get("/hls/queue/playlist/mix/master.m3u8", method="POST", body=b"x")
    assert st == 405
    st, h, body = gsrv.get(f"/hls/queue/playlist/mix/{RUNG}/init.mp4", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 0
    # a conditional request for a playlist it has: 304
    st, h, _ = gsrv.get(f"/hls/queue/playlist/mix/{RUNG}/playlist.m3u8")
    assert st == 200 and h["etag"]
    st, _, _ = gsrv.get(f"/hls/queue/playlist/mix/{RUNG}/playlist.m3u8", headers={"If-None-Match": h["etag"]})
    assert st == 304


# ----------------------------------------------------------------- tokens

def test_tokens_as_for_a_track_and_private_playlists(tmp_path_factory, library):
    """With auth.required: an hls token on every object (its track claim
    not compared: a queue has none), handed on in the playlists' URLs; a
    private playlist plays for its owner only; share-less errors as JSON."""
    import asyncio
    import auth_keys as ak

    keys = ak.Keys(tmp_path_factory.mktemp("gkeys"))
    srv = tf.TalasServer(tmp_path_factory.mktemp("gasrv"), [library], workers=2)
    ak.configure(srv, keys)
    srv.start(wait_scan=True)
    try:
        st, _, body = srv.get("/api/tracks", headers=srv.backend)
        assert st == 200, body
        srv.ids = {t["title"]: t["id"] for t in json.loads(body)["tracks"]}

        def token(sub, scope="hls"):
            return ak.pyjwt_token(keys, "HS256", ak.claims(srv.ids["Gap 1 mp3"], scope=scope, sub=sub), kid="k2")

        asyncio.run(make_playlist(srv, "private-mix", user="olivia", token=token("olivia")))

        base = "/hls/queue/playlist/private-mix"
        paths = [f"{base}/master.m3u8", f"{base}/{RUNG}/playlist.m3u8", f"{base}/{RUNG}/init.mp4",
                 f"{base}/{RUNG}/0.m4s"]
        for p in paths:
            st, h, body = srv.get(p)
            assert st == 401 and "Bearer" in h["www-authenticate"], (p, st, body)
            st, _, body = srv.get(p + "?token=garbage")
            assert st == 401, (p, st, body)
            st, _, body = srv.get(p + "?token=" + token("olivia", scope="stream"))
            assert st == 403, (p, st, body)
            st, _, body = srv.get(p + "?token=" + token("mallory"))
            assert st == 403 and json.loads(body)["error"]["code"] == "forbidden", (p, st, body)
            st, h, body = srv.get(p + "?token=" + token("olivia"), timeout=120)
            assert st == 200, (p, st, body[:300])
            assert "private" in h["cache-control"]
        t = token("olivia")
        st, _, pl = srv.get(f"{base}/{RUNG}/playlist.m3u8", headers={"Authorization": "Bearer " + t})
        assert st == 200
        uris = [line for line in pl.decode().split("\n") if line and not line.startswith("#")]
        assert uris and all(u.endswith("?token=" + t) for u in uris), uris
        assert f'URI="init.mp4?token={t}"' in pl.decode()
        # an artist is anybody's with a valid token
        name = urllib.parse.quote(ARTIST, safe="")
        st, _, body = srv.get(f"/hls/queue/artist/{name}/master.m3u8?token=" + token("mallory"))
        assert st == 200, body
    finally:
        srv.kill()



# ------------------------------------------------------------------ rooms

def test_room_queue_is_the_playlist_stream_for_members_and_invites(tmp_path_factory, library, gsrv):
    """/hls/queue/room/{id}: the room's queue (filled from a playlist of
    the tracks) in queue order is the playlist's stream, byte for byte;
    with auth.required it plays for a member's token, or a token with the
    room's invite (?invite= or X-Room-Invite), which then rides on every
    URL; not for another user, another room's invite, an invite alone.
    Reordering the queue makes another stream (another cache key)."""
    import asyncio
    import time
    import auth_keys as ak

    keys = ak.Keys(tmp_path_factory.mktemp("rkeys"))
    srv = tf.TalasServer(tmp_path_factory.mktemp("roomsrv"), [library], workers=2)
    ak.configure(srv, keys)
    srv.start(wait_scan=True)
    try:
        st, _, body = srv.get("/api/tracks", headers=srv.backend)
        assert st == 200, body
        srv.ids = {t["title"]: t["id"] for t in json.loads(body)["tracks"]}

        def user(sub):
            return ak.pyjwt_token(keys, "HS256", {"exp": int(time.time()) + 3600, "sub": sub, "iss": ak.ISSUER,
                                                  "aud": ak.AUDIENCE}, kid="k2")

        def rest(method, path, sub, body=None):
            h = {"Authorization": "Bearer " + user(sub)}
            if body is not None:
                h["Content-Type"] = "application/json"
                body = json.dumps(body).encode()
            st, _, resp = srv.get(path, method=method, headers=h, body=body)
            return st, json.loads(resp)

        olivia, mallory = user("olivia"), user("mallory")
        asyncio.run(make_playlist(srv, "room-mix", user="olivia", token=olivia))
        st, doc = rest("POST", "/api/rooms", "olivia", {"name": "Gapless room", "mode": "host"})
        assert st == 201, doc
        rid, invite = doc["id"], doc["invite_token"]
        st, other = rest("POST", "/api/rooms", "olivia", {"name": "Another room"})
        assert st == 201, other

        async def room_commands(*cmds):
            url = f"ws://127.0.0.1:{srv.port}/api/ws?token={olivia}"
            async with websockets.connect(url) as ws:
                r = await cf.command(ws, {"command": "JoinRoom", "command_id": "j", "room_id": rid})
                assert r["success"], r
                for c in cmds:
                    r = await cf.command(ws, {"command_id": secrets.token_hex(4), "room_id": rid, **c})
                    assert r["success"], r
                return r

        asyncio.run(room_commands({"command": "RoomQueueAdd", "playlist_id": "room-mix"}))
        st, room = rest("GET", f"/api/rooms/{rid}", "olivia")
        assert st == 200 and [e["track_id"] for e in room["queue"]] == [srv.ids[t[0]] for t in TRACKS], room

        base = f"/hls/queue/room/{rid}"
        # a member: the stream, cold, is the playlist's stream of the same tracks
        data, extinfs, segs = fetch_all(srv, f"{base}/{RUNG}", query=f"?token={olivia}")
        st, _, rpl = srv.get(f"{base}/{RUNG}/playlist.m3u8?token={olivia}")
        st2, _, ppl = srv.get(f"/hls/queue/playlist/room-mix/{RUNG}/playlist.m3u8?token={olivia}")
        assert st == st2 == 200 and rpl == ppl, (rpl, ppl)
        pdata, _, psegs = fetch_all(srv, f"/hls/queue/playlist/room-mix/{RUNG}", query=f"?token={olivia}")
        assert segs == psegs and data == pdata
        if hasattr(gsrv, "in_order"):
            assert segs == gsrv.in_order, "the room's queue made its segments otherwise"

        paths = [f"{base}/master.m3u8", f"{base}/{RUNG}/playlist.m3u8", f"{base}/{RUNG}/init.mp4",
                 f"{base}/{RUNG}/0.m4s"]
        for p in paths:
            for q, headers, status, code in (
                    ("", {}, 401, "unauthorized"),
                    (f"?invite={invite}", {}, 401, "unauthorized"),        # an invite alone: no user
                    (f"?token={mallory}", {}, 403, "forbidden"),          # not a member
                    (f"?token={mallory}&invite={other['invite_token']}", {}, 403, "forbidden"),
                    (f"?token={mallory}&invite=x{invite}", {}, 401, "invalid_token"),
                    (f"?token={invite}", {}, 403, "forbidden")):            # an invite is no token
                st, _, body = srv.get(p + q, headers=headers)
                assert st == status and json.loads(body)["error"]["code"] == code, (p, q, st, body[:300])
            for q, headers in ((f"?token={mallory}&invite={invite}", {}),
                               (f"?token={mallory}", {"X-Room-Invite": invite}),
                               (f"?token={olivia}", {})):
                st, h, body = srv.get(p + q, headers=headers, timeout=120)
                assert st == 200, (p, q, headers, st, body[:300])
                assert "private" in h["cache-control"], h
        # the invite rides on the URLs, wherever it came from
        for q, headers in ((f"?token={mallory}&invite={invite}", {}), (f"?token={mallory}", {"X-Room-Invite": invite})):
            st, _, pl = srv.get(f"{base}/{RUNG}/playlist.m3u8" + q, headers=headers)
            uris = [line for line in pl.decode().split("\n") if line and not line.startswith("#")]
            want = f"?token={mallory}&invite={invite}"
            assert uris and all(u.endswith(want) for u in uris), uris
            assert f'URI="init.mp4{want}"' in pl.decode()
            st, _, seg = srv.get(f"{base}/{RUNG}/{uris[1]}", timeout=120)
            assert st == 200 and seg == segs[1]
        st, _, body = srv.get(f"/hls/queue/room/{'0' * 24}/master.m3u8?token={olivia}")
        assert st == 404 and json.loads(body)["error"]["code"] == "not_found", body

        # the queue reordered (the last track first): another stream, under
        # another key (the playlist's text, which only counts the length,
        # may stay the same: its ETag names the queue)
        st, h1, _ = srv.get(f"{base}/{RUNG}/playlist.m3u8?token={olivia}")
        asyncio.run(room_commands({"command": "RoomQueueMove", "entry_id": room["queue"][-1]["entry_id"],
                                   "position": 0}))
        st, h2, _ = srv.get(f"{base}/{RUNG}/playlist.m3u8?token={olivia}")
        assert st == 200 and h1["etag"] != h2["etag"], (h1, h2)
        st, _, seg0 = srv.get(f"{base}/{RUNG}/0.m4s?token={olivia}", timeout=120)
        assert st == 200 and seg0 != segs[0]
        # an emptied queue has nothing to play
        asyncio.run(room_commands(*({"command": "RoomQueueRemove", "entry_id": e["entry_id"]} for e in room["queue"])))
        st, _, body = srv.get(f"{base}/master.m3u8?token={olivia}")
        assert st == 404 and json.loads(body)["error"]["code"] == "empty_queue", body
    finally:
        srv.kill()
