"""HLS: master and media playlists, fMP4 segments made on demand from the
shared transcode cache (issue 4's HLS acceptance points, and issue 5's HLS
token checks).

What an HLS player and its operator would check: the master playlist lists
every HLS rung with BANDWIDTH, AVERAGE-BANDWIDTH and CODECS that real
segments respect; media playlists are VOD with EXTINFs that add up to the
source; ffmpeg decodes the master and every media playlist of every source
format to the source's duration (50 ms); cold segments fetched in a random
order join without a seam, compared with one continuous encode by the
ffmpeg CLI; segment N of a cold track costs segment N's encode, not 0..N;
a segment wanted by many clients at once is encoded once; segments are
immutable and shared with progressive AAC; bad paths get JSON errors; and
with auth, every playlist and segment needs an "hls" token, which the
playlists carry on their URLs, and which stops working when it expires.
"""

import array
import concurrent.futures as cf
import json
import math
import random
import re
import statistics
import subprocess
import time

import pytest

import auth_keys as ak
import talas_fixtures as tf

TOOL = tf.BUILDDIR / "tests" / "tools" / "talas-transcode"
RUNGS = {"high": (320, 44100), "medium": (192, 44100), "mobile": (96, 22050)}
SECONDS = 12
FORMATS = {  # name: (file, encoder arguments)
    "mp3": ("h_mp3.mp3", ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "192k"]),
    "flac48": ("h_flac48.flac", ["-ar", "48000", "-ac", "2", "-c:a", "flac"]),
    "wav48mono": ("h_wav48mono.wav", ["-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le"]),
    "vorbis": ("h_vorbis.ogg", ["-ar", "44100", "-ac", "2", "-c:a", "libvorbis", "-q:a", "4"]),
    "opus": ("h_opus.opus", ["-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", "64k"]),
    "m4a": ("h_m4a.m4a", ["-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "160k"]),
}
FLAC44 = ["-ar", "44100", "-ac", "2", "-c:a", "flac"]


# ------------------------------------------------------------------ helpers

def ffmpeg(args, timeout=120):
    tf.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error"] + list(args), timeout=timeout)


def make_source(out, seconds, args, title, freq=440, noise=0.05):
    """A tone plus pink noise, SECONDS long."""
    ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}:sample_rate=96000",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a={noise}:r=96000:s=3",
            "-filter_complex", "[0]volume=0.5[a];[a][1]amix=inputs=2:normalize=0",
            "-metadata", f"title={title}", "-metadata", "artist=Talas HLS Tests"]
           + list(args) + [str(out)])
    return out


def source_samples(path):
    m = json.loads(tf.run([TOOL, "measure", path]).stdout)
    return m["samples"], m["sample_rate"]


def layout(path, profile):
    return json.loads(tf.run([TOOL, "layout", path, profile]).stdout)


def attrs(line):
    """The attributes of an #EXT-X-...: tag line, as a dict of strings."""
    out = {}
    for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]):
        out[m.group(1)] = m.group(2).strip('"')
    return out


def parse_master(text):
    lines = text.strip().split("\n")
    assert lines[0] == "#EXTM3U", text
    rungs = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            rungs.append((attrs(line), lines[i + 1]))
    return rungs


def parse_media(text):
    """(tags, [(extinf seconds, uri)]) of a media playlist."""
    lines = text.strip().split("\n")
    assert lines[0] == "#EXTM3U", text
    tags, segs = {}, []
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            segs.append((float(line[8:].split(",")[0]), lines[i + 1]))
        elif line.startswith("#EXT"):
            k, _, v = line.partition(":")
            tags[k] = v
    return tags, segs


def get(srv, path, headers=None, timeout=120):
    return srv.get(path, headers=headers, timeout=timeout)


def get_ok(srv, path, headers=None):
    st, h, body = get(srv, path, headers)
    assert st == 200, f"GET {path}: {st} {body[:300]!r}"
    return h, body


def decode_url(url, rate, channels=1):
    """ffmpeg -xerror decodes URL (playlists: every segment over HTTP) to s16
    at RATE; asserts a clean decode."""
    cp = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", url,
                         "-ac", str(channels), "-ar", str(rate), "-f", "s16le", "-"],
                        capture_output=True, timeout=300)
    assert cp.returncode == 0 and cp.stderr == b"", f"{url}: {cp.stderr.decode(errors='replace')[:600]}"
    a = array.array("h")
    a.frombytes(cp.stdout)
    return a


def decode_file(path, rate, channels=1):
    return decode_url(str(path), rate, channels)


def stats(srv):
    return srv.get_json("/api/stats")["cache"]


def settled_stats(srv, quiet=1.8, timeout=30):
    """/api/stats once it stopped changing for QUIET seconds (workers flush
    their counters about once a second)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        s = stats(srv)
        if s != last:
            last, since = s, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return s
        time.sleep(0.25)
    raise AssertionError(f"/api/stats kept changing for {timeout}s: {last}")


def error_json(body):
    doc = json.loads(body)
    assert "error" in doc, doc
    return doc


def rms_diff(a, b, start, end):
    end = min(end, len(a), len(b))
    return math.sqrt(sum((a[i] - b[i]) ** 2 for i in range(start, end)) / max(1, end - start))


def max_diff(a, b, start, end):
    end = min(end, len(a), len(b))
    return max(abs(a[i] - b[i]) for i in range(start, end))


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    base = tmp_path_factory.mktemp("hmedia")
    main = base / "main"
    main.mkdir()
    m = {"main": main, "base": base}
    for i, (name, (fname, args)) in enumerate(FORMATS.items()):
        m[name] = make_source(main / fname, SECONDS, args, f"HLS {name}", freq=330 + 50 * i)
    m["noisy"] = make_source(main / "noisy.flac", 40, FLAC44, "HLS noisy", freq=520, noise=0.3)
    # a WAV whose header announces MP3 over random bytes: nothing decodes
    rnd = random.Random(9)
    n = 100000
    junk = bytes(rnd.getrandbits(8) for _ in range(n))
    import struct
    fmt = struct.pack("<HHIIHH", 0x55, 2, 44100, 44100, 1, 0)
    (main / "garbage.wav").write_bytes(
        b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + n) + b"WAVE" + b"fmt "
        + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", n) + junk)
    # own servers' sources
    cold = base / "cold"
    cold.mkdir()
    m["seam"] = make_source(cold / "seam.flac", 40, FLAC44, "HLS seam", freq=610, noise=0.2)
    mono = ["-ar", "44100", "-ac", "1", "-c:a", "flac"]
    m["long"] = make_source(cold / "long.flac", 300, mono, "HLS long", freq=450, noise=0.02)
    return m


@pytest.fixture(scope="module")
def hsrv(tmp_path_factory, media):
    srv = tf.TalasServer(tmp_path_factory.mktemp("hsrv"), [media["main"]], workers=2)
    srv.start(wait_scan=True)
    try:
        srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
        yield srv
    finally:
        srv.kill()


def tid(srv, title):
    assert title in srv.ids, f"{title!r} is not in the catalog: {sorted(srv.ids)}"
    return srv.ids[title]


# ------------------------------------------------------------- playlists

def test_master_lists_every_hls_rung_with_bandwidth_and_codecs(hsrv):
    h, body = get_ok(hsrv, f"/hls/{tid(hsrv, 'HLS flac48')}/master.m3u8")
    assert h["content-type"] == "application/vnd.apple.mpegurl"
    text = body.decode()
    assert "#EXT-X-VERSION:7" in text and "#EXT-X-INDEPENDENT-SEGMENTS" in text
    rungs = parse_master(text)
    names = [uri.split("/")[0] for _, uri in rungs]
    # the AAC rungs of the seeds' ladder; the MP3 profiles stay progressive
    assert sorted(names) == sorted(RUNGS), names
    # a player without an estimate starts on the first: the middle rung
    assert names[0] == "medium", names
    assert names[1:] == ["high", "mobile"], names
    for a, uri in rungs:
        kbps = RUNGS[uri.split("/")[0]][0]
        assert a["CODECS"] == "mp4a.40.2"
        assert int(a["AVERAGE-BANDWIDTH"]) >= kbps * 1000
        assert int(a["BANDWIDTH"]) > int(a["AVERAGE-BANDWIDTH"])
        assert uri.endswith("/playlist.m3u8")
        st, _, _ = get(hsrv, f"/hls/{tid(hsrv, 'HLS flac48')}/{uri}")
        assert st == 200


@pytest.mark.parametrize("rung", list(RUNGS))
def test_media_playlist_is_vod_with_exact_extinfs(hsrv, media, rung):
    track = tid(hsrv, "HLS flac48")
    _, body = get_ok(hsrv, f"/hls/{track}/{rung}/playlist.m3u8")
    text = body.decode()
    tags, segs = parse_media(text)
    assert tags["#EXT-X-PLAYLIST-TYPE"] == "VOD"
    assert "#EXT-X-ENDLIST" in tags
    assert tags["#EXT-X-MAP"] == 'URI="init.mp4"'
    assert tags["#EXT-X-MEDIA-SEQUENCE"] == "0"
    target = int(tags["#EXT-X-TARGETDURATION"])
    assert target == 6  # hls.segment_duration's default
    assert all(round(d) <= target for d, _ in segs)
    assert [u for _, u in segs] == [f"{n}.m4s" for n in range(len(segs))]

    # the EXTINFs are the grid: frames of 1024 samples, the first without
    # the encoder's priming frame, the last up to the source's last sample
    _, out_rate = RUNGS[rung]
    lay = layout(media["flac48"], rung)
    starts = lay["chunk_starts"] + [lay["frames"]]
    delay, total = lay["encoder_delay"], lay["out_samples"]
    want = []
    for c in range(lay["chunks"]):
        a = max(0, starts[c] * 1024 - delay)
        b = min(total, starts[c + 1] * 1024 - delay)
        if b > a:
            want.append((b - a) / out_rate)
    assert [round(d, 6) for d, _ in segs] == [round(w, 6) for w in want]
    samples, rate = source_samples(media["flac48"])
    assert abs(sum(d for d, _ in segs) - samples / rate) < 1e-4
    # the first segments are short: a player starts after a tiny encode
    assert segs[0][0] < 0.5 and segs[1][0] > segs[0][0]


@pytest.mark.parametrize("playlist", ["master", "high", "medium", "mobile"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_decodes_to_the_source_duration(hsrv, media, fmt, playlist):
    track = tid(hsrv, f"HLS {fmt}")
    path = "master.m3u8" if playlist == "master" else f"{playlist}/playlist.m3u8"
    rate = 44100 if playlist == "master" else RUNGS[playlist][1]
    pcm = decode_url(f"{hsrv.base_url}/hls/{track}/{path}", rate)
    samples, src_rate = source_samples(media[fmt])
    got_ms = len(pcm) * 1000 / rate
    want_ms = samples * 1000 / src_rate
    assert abs(got_ms - want_ms) <= 50, (got_ms, want_ms)


def test_bandwidth_bounds_real_segments(hsrv, media):
    """Before any segment exists, BANDWIDTH is an upper bound of every
    segment's bit rate; once a rung's segments are all cached, BANDWIDTH and
    AVERAGE-BANDWIDTH are measured on them: the peak segment and the whole
    rung (1%), on a noisy source."""
    track = tid(hsrv, "HLS noisy")
    _, body = get_ok(hsrv, f"/hls/{track}/master.m3u8")
    cold = {uri.split("/")[0]: a for a, uri in parse_master(body.decode())}
    measured = {}
    for rung, a in cold.items():
        _, pl = get_ok(hsrv, f"/hls/{track}/{rung}/playlist.m3u8")
        _, segs = parse_media(pl.decode())
        with cf.ThreadPoolExecutor(4) as ex:
            sizes = list(ex.map(lambda s: len(get_ok(hsrv, f"/hls/{track}/{rung}/{s[1]}")[1]), segs))
        rates = [size * 8 / d for size, (d, _) in zip(sizes, segs)]
        measured[rung] = (max(rates), sum(sizes) * 8 / sum(d for d, _ in segs))
        assert max(rates) <= int(a["BANDWIDTH"]), (rung, max(rates), a)
    _, body = get_ok(hsrv, f"/hls/{track}/master.m3u8")
    warm = {uri.split("/")[0]: a for a, uri in parse_master(body.decode())}
    for rung, (peak, average) in measured.items():
        a = warm[rung]
        assert peak <= int(a["BANDWIDTH"]) <= peak * 1.01 + 1000, (rung, peak, a)
        assert abs(average - int(a["AVERAGE-BANDWIDTH"])) <= 0.01 * average, (rung, average, a)


# ------------------------------------------------------------- segments

def test_cold_segments_in_random_order_are_seamless(talas_server, media, tmp_path):
    """Every segment of a cold track, fetched in a random order from two
    workers, concatenated after the init segment, decodes to the audio of
    one continuous encode (ffmpeg CLI, same encoder and bitrate): the worst
    error around every boundary is the coding error found anywhere else."""
    srv = talas_server([media["seam"].parent], workers=2)
    track = srv.track_by_title("HLS seam")["id"]
    _, init = get_ok(srv, f"/hls/{track}/high/init.mp4")
    _, pl = get_ok(srv, f"/hls/{track}/high/playlist.m3u8")
    _, segs = parse_media(pl.decode())
    order = list(range(len(segs)))
    random.Random(4).shuffle(order)
    bodies = {}
    for n in order:
        _, bodies[n] = get_ok(srv, f"/hls/{track}/high/{n}.m4s")
    s = settled_stats(srv)
    # each segment encoded once, for its request or ahead of it
    assert s["transcodes_started"] == s["chunks"] == len(segs), s
    # the streaming stats count segments from the cache and encoded
    seg = tf.wait_for(lambda: (lambda h: h if h["cache_hits"] + h["cache_misses"] == len(segs) else None)(
        srv.get_json("/api/streaming/stats")["hls_segments"]), 10, what="segment counters")
    for n in range(len(segs)):
        get_ok(srv, f"/hls/{track}/high/{n}.m4s")
    tf.wait_for(lambda: srv.get_json("/api/streaming/stats")["hls_segments"]["cache_hits"]
                == seg["cache_hits"] + len(segs), 10, what="segment hits")
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(init + b"".join(bodies[n] for n in range(len(segs))))
    ours = decode_file(joined, 44100)

    ref_file = tmp_path / "continuous.m4a"
    ffmpeg(["-i", str(media["seam"]), "-c:a", "aac", "-b:a", "320k", "-ar", "44100", "-ac", "2",
            str(ref_file)])
    ref = decode_file(ref_file, 44100)  # the MP4 edit list trims the priming
    src = decode_file(media["seam"], 44100)
    n = min(len(ours), len(ref), len(src))
    assert n > 44100 * 39
    assert abs(len(ours) - len(src)) <= 1024, (len(ours), len(src))

    # aligned: the best lag against the source is 0
    seg = range(44100 * 10, 44100 * 11, 3)
    lags = {lag: sum((ours[i] - src[i + lag]) ** 2 for i in seg) for lag in range(-3, 4)}
    assert min(lags, key=lags.get) == 0, lags

    lay = layout(media["seam"], "high")
    boundaries = [st * 1024 - lay["encoder_delay"] for st in lay["chunk_starts"][1:]]
    w = 441  # 10 ms
    boundaries = [b for b in boundaries if 2 * w < b < n - 2 * w]
    assert len(boundaries) >= 8
    interior = [max_diff(ours, ref, s0, s0 + w) for s0 in range(4 * w, n - 4 * w, 7 * w)
                if all(abs(s0 - b) > 3 * w for b in boundaries)]
    noise = statistics.median(interior)
    worst_interior = sorted(interior)[int(len(interior) * 0.99)]
    signal = math.sqrt(sum(x * x for x in ref[44100:44100 * 3:5]) / len(range(44100, 44100 * 3, 5)))
    assert noise < signal / 3, (noise, signal)  # the comparison means something
    for b in boundaries:
        e = max_diff(ours, ref, b - w, b + w)
        assert e <= max(2 * worst_interior, 3 * noise), \
            f"boundary at sample {b}: worst error {e} vs interior median {noise}, p99 {worst_interior}"
        # and against the source itself, the RMS error is no worse there
        assert rms_diff(ours, src, b - w, b + w) <= 2 * rms_diff(ours, src, b + 3 * w, b + 5 * w) + 50


def test_segment_n_of_a_cold_track_encodes_that_segment_only(talas_server, media):
    srv = talas_server([media["long"].parent], workers=2)
    track = srv.track_by_title("HLS long")["id"]
    before = settled_stats(srv)
    t0 = time.monotonic()
    _, body = get_ok(srv, f"/hls/{track}/high/40.m4s")
    took = time.monotonic() - t0
    assert body[4:8] == b"moof"
    after = settled_stats(srv)
    started = after["transcodes_started"] - before["transcodes_started"]
    # segment 40 and the next one, prefetched for the player: not 0..40
    assert 1 <= started <= 3, (started, after)
    # every encode started is stored; a prefetch may land after the
    # counters settled (once, in a fresh-clone run, one was still missing
    # then), so its chunk is waited for, never assumed
    tf.wait_for(lambda: stats(srv)["chunks"] - before["chunks"] == started, 20, interval=0.25,
                what=f"the {started} chunk(s) encoded to be in the cache")
    after = settled_stats(srv)
    assert after["transcodes_started"] - before["transcodes_started"] == started, after
    assert after["chunks"] - before["chunks"] == started, after
    assert took < 30


def test_a_segment_wanted_by_many_clients_is_encoded_once(talas_server, media):
    srv = talas_server([media["long"].parent], workers=2)
    track = srv.track_by_title("HLS long")["id"]
    before = settled_stats(srv)

    def one(_):
        return get(srv, f"/hls/{track}/medium/20.m4s")

    with cf.ThreadPoolExecutor(24) as ex:
        results = list(ex.map(one, range(24)))
    assert all(st == 200 for st, _, _ in results), [st for st, _, _ in results]
    assert len({body for _, _, body in results}) == 1
    after = settled_stats(srv)
    # segment 20 once, plus at most its prefetched successor
    assert after["transcodes_started"] - before["transcodes_started"] <= 2, after


def test_segments_are_immutable_and_shared_with_progressive_aac(hsrv, media):
    track = tid(hsrv, "HLS vorbis")
    h, init = get_ok(hsrv, f"/hls/{track}/medium/init.mp4")
    assert init[4:8] == b"ftyp" and b"mp4a" in init and b"esds" in init
    _, pl = get_ok(hsrv, f"/hls/{track}/medium/playlist.m3u8")
    _, segs = parse_media(pl.decode())
    for _, uri in segs:
        h, body = get_ok(hsrv, f"/hls/{track}/medium/{uri}")
        assert h["content-type"] == "audio/mp4"
        cc = h["cache-control"]
        assert "public" in cc and "immutable" in cc and "max-age=31536000" in cc, cc
        assert body[4:8] == b"moof"
    st, h2, _ = get(hsrv, f"/hls/{track}/medium/{segs[1][1]}", headers={"If-None-Match": h["etag"]})
    st_last, _, _ = get(hsrv, f"/hls/{track}/medium/{segs[-1][1]}", headers={"If-None-Match": h["etag"]})
    assert st_last == 304
    # every chunk of the AAC transcode is now cached: the progressive stream
    # of the same profile is served from the same entries, with a length
    before = settled_stats(hsrv)
    st, hp, body = get(hsrv, f"/stream/{track}?profile=medium")
    assert st == 200 and int(hp["content-length"]) == len(body)
    after = settled_stats(hsrv)
    assert after["transcodes_started"] == before["transcodes_started"], (before, after)


@pytest.mark.parametrize("path,status,code", [
    ("{id}/ultra/playlist.m3u8", 404, "unknown_quality"),
    ("{id}/low/playlist.m3u8", 404, "unknown_quality"),      # MP3: progressive only
    ("{id}/mp3/0.m4s", 404, "unknown_quality"),
    ("{id}/high/99999.m4s", 404, "not_found"),
    ("{id}/high/01.m4s", 404, "not_found"),
    ("{id}/high/-1.m4s", 404, "not_found"),
    ("{id}/high/x.m4s", 404, "not_found"),
    ("{id}/high/99999999999.m4s", 404, "not_found"),
    ("{id}/high/", 404, "not_found"),
    ("{id}/high", 404, "not_found"),
    ("{id}/", 404, "not_found"),
    ("{id}/master.m3u", 404, "not_found"),
    ("AAAAAAAAAAAAAAAA/master.m3u8", 404, "not_found"),
    ("AAAAAAAAAAAAAAAA/high/0.m4s", 404, "not_found"),
    ("../../etc/passwd", 404, "not_found"),
    ("{garbage}/master.m3u8", 422, "undecodable"),
    ("{garbage}/high/playlist.m3u8", 422, "undecodable"),
    ("{garbage}/high/init.mp4", 422, "undecodable"),
    ("{garbage}/high/0.m4s", 422, "undecodable"),
])
def test_bad_hls_requests_get_json_errors(hsrv, path, status, code):
    path = path.format(id=tid(hsrv, "HLS mp3"), garbage=tid(hsrv, "garbage"))
    st, h, body = get(hsrv, f"/hls/{path}")
    assert st == status, (path, st, body[:200])
    assert h["content-type"].startswith("application/json")
    assert error_json(body)["error"]["code"] == code, body
    st, _, body = get(hsrv, f"/hls/{tid(hsrv, 'HLS mp3')}/master.m3u8", headers=None)
    assert st == 200


def test_hls_is_get_or_head_only(hsrv):
    track = tid(hsrv, "HLS mp3")
    st, h, body = hsrv.get(f"/hls/{track}/master.m3u8", method="POST", body=b"x")
    assert st == 405 and error_json(body)
    st, h, body = hsrv.get(f"/hls/{track}/high/init.mp4", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 0


# ----------------------------------------------------------------- tokens

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("hkeys"))


@pytest.fixture(scope="module")
def asrv(tmp_path_factory, media, keys):
    srv = tf.TalasServer(tmp_path_factory.mktemp("hasrv"), [media["main"]], workers=2)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    srv.start(wait_scan=True)
    try:
        srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
        yield srv
    finally:
        srv.kill()


def token(keys, track, ttl=300, scope="hls"):
    return ak.pyjwt_token(keys, "HS256", ak.claims(track, ttl=ttl, scope=scope), kid="k2")


def test_hls_needs_an_hls_token_and_playlists_carry_it(asrv, media, keys):
    track = tid(asrv, "HLS flac48")
    other = tid(asrv, "HLS mp3")
    paths = [f"/hls/{track}/master.m3u8", f"/hls/{track}/high/playlist.m3u8",
             f"/hls/{track}/high/init.mp4", f"/hls/{track}/high/0.m4s"]
    for p in paths:
        st, h, body = asrv.get(p)
        assert st == 401 and "Bearer" in h["www-authenticate"], (p, st)
        st, _, _ = asrv.get(p + "?token=" + token(keys, track, scope="stream"))
        assert st == 403, (p, st)
        st, _, _ = asrv.get(p + "?token=" + token(keys, other))
        assert st == 403, (p, st)
        st, _, _ = asrv.get(p + "?token=garbage")
        assert st == 401, (p, st)
    t = token(keys, track)
    _, master = get_ok(asrv, f"/hls/{track}/master.m3u8?token={t}")
    for _, uri in parse_master(master.decode()):
        assert uri.endswith("?token=" + t), uri
    # a bearer header works too, and the playlist hands the token on
    h, pl = get_ok(asrv, f"/hls/{track}/mobile/playlist.m3u8", headers={"Authorization": "Bearer " + t})
    assert "private" in h["cache-control"]
    tags, segs = parse_media(pl.decode())
    assert tags["#EXT-X-MAP"] == f'URI="init.mp4?token={t}"'
    assert all(u.endswith("?token=" + t) for _, u in segs)
    # a player needs nothing but the master playlist's URL
    pcm = decode_url(f"{asrv.base_url}/hls/{track}/master.m3u8?token={t}", 44100)
    assert len(pcm) > 44100 * (SECONDS - 1)


def test_an_expired_token_stops_new_playlists_and_segments(asrv, media, keys):
    track = tid(asrv, "HLS vorbis")
    t = token(keys, track, ttl=3)
    get_ok(asrv, f"/hls/{track}/master.m3u8?token={t}")
    _, pl = get_ok(asrv, f"/hls/{track}/high/playlist.m3u8?token={t}")
    _, segs = parse_media(pl.decode())
    get_ok(asrv, f"/hls/{track}/high/{segs[0][1]}")
    time.sleep(4.2)
    for p in ("master.m3u8", "high/playlist.m3u8", "high/init.mp4", "high/1.m4s"):
        st, _, body = asrv.get(f"/hls/{track}/{p}?token={t}")
        assert st == 401 and error_json(body)["error"]["code"] == "invalid_token", (p, st, body)


def test_segment_duration_comes_from_the_config(talas_server, media):
    """hls.segment_duration sets the full segments' length (and the AAC
    grid: progressive AAC of the profile shares the chunks)."""
    srv = talas_server([media["seam"].parent], workers=1, extra_yaml="hls:\n  segment_duration: 4s\n")
    track = srv.track_by_title("HLS seam")["id"]
    _, pl = get_ok(srv, f"/hls/{track}/medium/playlist.m3u8")
    tags, segs = parse_media(pl.decode())
    assert tags["#EXT-X-TARGETDURATION"] == "4"
    full = [d for d, _ in segs[:-1] if d > 3]
    assert full and all(abs(d - 172 * 1024 / 44100) < 1e-5 for d in full), segs
    pcm = decode_url(f"{srv.base_url}/hls/{track}/medium/playlist.m3u8", 44100)
    samples, rate = source_samples(media["seam"])
    assert abs(len(pcm) / 44100 - samples / rate) <= 0.05
    for _, uri in segs:
        get_ok(srv, f"/hls/{track}/medium/{uri}")
    before = settled_stats(srv)
    st, h, body = get(srv, f"/stream/{track}?profile=medium")
    assert st == 200 and int(h["content-length"]) == len(body)
    assert settled_stats(srv)["transcodes_started"] == before["transcodes_started"]
