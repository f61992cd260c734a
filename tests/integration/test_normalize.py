"""?normalize=LUFS on the transcoding routes (issue 17, second increment).

Tracks generated here with ffmpeg: a quiet one (about -30 LUFS), a loud
one (about -8 LUFS) and a quiet tone with loud transients (high crest
factor: the gain to -14 pushes its transients 15 dB past full scale, so
only the true-peak limiter keeps them in), scanned and measured by a real
talas-master. Each is normalized to -14 and -23 LUFS through
/stream?profile= (MP3 and AAC), /preview and HLS (init and segments
joined), decoded by ffmpeg and measured with its own ebur128 filter
(peak=true): integrated loudness within 0.5 LU of the target, true peak
at most -1 dBTP. Also: the exact Content-Length and Range of the first
play, the cache (a second request is a hit, each target its own
variant), bad values (400 JSON), a silent track (409) and the original
route, whose bytes never change.
"""

import json
import re
import urllib.parse

import pytest

import auth_keys as ak
import talas_fixtures as tf

TARGETS = (-14, -23)
# Long enough that a preview (30 s, 1 s fades) is an excerpt whose fades
# weigh little in its loudness. The noise is band-limited as music is: the
# lossy encoders' low-pass filters (LAME's from 16 kHz) would otherwise take
# a few tenths of a LU of full-band noise's K-weighted energy away.
TRACKS = {  # title: (ffmpeg lavfi source, seconds)
    "quiet": ("anoisesrc=color=pink:sample_rate=44100:amplitude=0.17:seed=7", 45),
    "loud": ("anoisesrc=color=pink:sample_rate=44100:amplitude=1.0:seed=9", 45),
    # a tone at about -31 LUFS with a click near full scale every 7 s (one
    # sample: loud, but too short to weigh in the integrated loudness)
    "crest": ("aevalsrc=0.04*sin(2*PI*440*t)+if(lt(mod(t\\,7)\\,0.00002)\\,0.95\\,0):s=44100", 45),
}
# the loud one is squashed to about -8 LUFS, as mastered loud music is
LOUD_FILTER = "volume=10dB,alimiter=limit=0.89:level=0:attack=2:release=40"


def ffmpeg(*args, timeout=120):
    tf.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *[str(a) for a in args]], timeout=timeout)


def ebur128(path):
    """ffmpeg's measure of a file: (integrated LUFS, true peak dBTP)."""
    cp = tf.run(["ffmpeg", "-nostats", "-nostdin", "-i", str(path), "-af", "ebur128=peak=true",
                 "-f", "null", "-"], timeout=120)
    summary = cp.stderr[cp.stderr.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def error_code(body):
    return json.loads(body)["error"]["code"]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    d = tmp_path_factory.mktemp("normalize-lib")
    for title, (src, secs) in TRACKS.items():
        src = src + (f":d={secs}" if src.startswith("aevalsrc") else f":duration={secs}")
        extra = ["-af", "lowpass=f=12000:poles=2" + ("," + LOUD_FILTER if title == "loud" else "")] \
            if title != "crest" else []
        ffmpeg("-f", "lavfi", "-i", src, *extra, "-ac", "2", "-metadata", f"title={title}",
               d / f"{title}.flac")
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "4", "-metadata", "title=silence",
           d / "silence.flac")
    return d


@pytest.fixture(scope="module")
def nsrv(tmp_path_factory, library):
    srv = tf.TalasServer(tmp_path_factory.mktemp("nsrv"), [library], workers=2,
                         extra_yaml="cache:\n  max_size: 128MiB\n")
    srv.start(wait_scan=True)
    try:
        srv.by_title = {t["title"]: t for t in srv.tracks()}
        yield srv
    finally:
        srv.kill()


def track(srv, title):
    return srv.by_title[title]["id"]


def test_generated_tracks_are_what_they_claim(nsrv):
    lufs = {t: nsrv.by_title[t]["loudness"]["integrated_lufs"] for t in TRACKS}
    assert -33 <= lufs["quiet"] <= -27, lufs
    assert -10 <= lufs["loud"] <= -6, lufs
    assert -33 <= lufs["crest"] <= -26, lufs
    # the crest track's transients: the gain to -14 would push them far past 0 dBTP
    crest = nsrv.by_title["crest"]["loudness"]
    assert crest["true_peak_dbtp"] + (-14 - crest["integrated_lufs"]) > 10, crest


def fetch_hls(srv, tid, target, tmp_path):
    """Master -> rung playlist -> init + every segment, by the URLs listed:
    the normalize target must ride on each of them."""
    st, _, master = srv.get(f"/hls/{tid}/master.m3u8?normalize={target}", timeout=60)
    assert st == 200, master[:300]
    uris = [line for line in master.decode().split("\n") if line and not line.startswith("#")]
    assert uris and all(u.endswith(f"?normalize={target}.0") for u in uris), master
    rung = next(u for u in uris if u.startswith("medium/"))
    st, _, pl = srv.get(f"/hls/{tid}/{rung}", timeout=60)
    assert st == 200, pl[:300]
    text = pl.decode()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
    segs = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert init.endswith(f"?normalize={target}.0") and len(segs) >= 3, text
    assert all(s.endswith(f"?normalize={target}.0") for s in segs), text
    body = b""
    for u in [init] + segs:
        st, _, part = srv.get(f"/hls/{tid}/medium/{u}", timeout=120)
        assert st == 200, (u, part[:300])
        body += part
    out = tmp_path / f"hls{target}.mp4"
    out.write_bytes(body)
    return out


ROUTES = {  # name: (path template, file suffix)
    "mp3": ("/stream/{id}?profile=mp3&normalize={target}", "mp3"),
    "aac": ("/stream/{id}?profile=medium&normalize={target}", "aac"),
    "preview": ("/preview/{id}?normalize={target}", "mp3"),
    "hls": (None, "mp4"),
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("title", list(TRACKS))
def test_normalized_loudness_and_true_peak(nsrv, tmp_path, title, route):
    tid = track(nsrv, title)
    seen = {}
    for target in TARGETS:
        template, suffix = ROUTES[route]
        if template is None:
            out = fetch_hls(nsrv, tid, target, tmp_path)
        else:
            st, h, body = nsrv.get(template.format(id=tid, target=target), timeout=180)
            assert st == 200, body[:300]
            out = tmp_path / f"{route}{target}.{suffix}"
            out.write_bytes(body)
        seen[target] = out.read_bytes()
        integrated, peak = ebur128(out)
        print(f"{title} {route} {target}: I {integrated} LUFS, true peak {peak} dBTP")
        assert abs(integrated - target) <= 0.5, f"{title} {route} to {target}: I = {integrated} LUFS"
        assert peak <= -1.0, f"{title} {route} to {target}: true peak {peak} dBTP"
    # two targets, two renditions
    assert seen[-14] != seen[-23]


def stats(srv):
    return srv.get_json("/api/stats")["cache"]


def settled_stats(srv):
    last = None
    def settled():
        nonlocal last
        s = stats(srv)
        same, last = s == last, s
        return same
    tf.wait_for(settled, 30, interval=1.5, what="/api/stats to settle")
    return last


def test_first_play_has_exact_length_and_ranges(nsrv):
    tid = track(nsrv, "quiet")
    plain = f"/stream/{tid}?profile=low"
    st, h, _ = nsrv.get(plain, method="HEAD")
    assert st == 200
    # cold: a range in the middle, before anything of this rendition exists
    url = plain + "&normalize=-17.5"
    st, h, part = nsrv.get(url, headers={"Range": "bytes=40000-99999"}, timeout=120)
    assert st == 206, part[:300]
    assert h["Content-Range"].startswith("bytes 40000-99999/"), h["Content-Range"]
    total = int(h["Content-Range"].rsplit("/", 1)[1])
    st, h2, whole = nsrv.get(url, timeout=120)
    assert st == 200 and int(h2["Content-Length"]) == len(whole) == total
    assert part == whole[40000:100000]
    # CBR: the very sizes of the plain profile
    st, h3, _ = nsrv.get(plain, method="HEAD")
    assert int(h3["Content-Length"]) == total
    st, _, plain_body = nsrv.get(plain, timeout=120)
    assert plain_body != whole


def test_second_request_is_a_cache_hit_and_targets_do_not_share(nsrv):
    tid = track(nsrv, "crest")
    url = f"/stream/{tid}?profile=low&normalize=-20"
    st, _, first = nsrv.get(url, timeout=120)
    assert st == 200
    before = settled_stats(nsrv)
    st, _, again = nsrv.get(url, timeout=120)
    assert st == 200 and again == first
    after = settled_stats(nsrv)
    assert after["misses"] == before["misses"], (before, after)
    assert after["hits"] > before["hits"], (before, after)
    # another target: encoded (misses), other bytes; no target: the plain variant
    st, _, other = nsrv.get(f"/stream/{tid}?profile=low&normalize=-21", timeout=120)
    assert st == 200 and other != first
    later = settled_stats(nsrv)
    assert later["misses"] > after["misses"], (after, later)
    st, _, plain = nsrv.get(f"/stream/{tid}?profile=low", timeout=120)
    assert st == 200 and plain not in (first, other)


@pytest.mark.parametrize("value", ["abc", "-40", "0", "-4", "14", "-14.25", "1e1", "", "-14dB", " -14",
                                   "--14", "-31.5"])
def test_bad_values_are_refused(nsrv, value):
    tid = track(nsrv, "quiet")
    q = urllib.parse.quote(value)
    for path in (f"/stream/{tid}?profile=mp3&normalize={q}", f"/preview/{tid}?normalize={q}",
                 f"/hls/{tid}/master.m3u8?normalize={q}", f"/hls/{tid}/medium/0.m4s?normalize={q}"):
        st, h, body = nsrv.get(path)
        assert st == 400, (path, st, body[:200])
        assert h["Content-Type"].startswith("application/json")
        assert error_code(body) == "invalid_parameter" and b"normalize" in body, body


def test_limits_of_the_range_are_accepted(nsrv):
    tid = track(nsrv, "quiet")
    for value in ("-31", "-5", "-5.0", "-23.5"):
        st, _, body = nsrv.get(f"/stream/{tid}?profile=mp3&normalize={value}", method="HEAD")
        assert st == 200, (value, body[:200])


def test_silent_track_is_409(nsrv):
    tid = track(nsrv, "silence")
    for path in (f"/stream/{tid}?profile=mp3&normalize=-14", f"/preview/{tid}?normalize=-14",
                 f"/hls/{tid}/master.m3u8?normalize=-14"):
        st, _, body = nsrv.get(path)
        assert st == 409 and error_code(body) == "loudness_unknown", (path, st, body[:200])
    # without normalize it plays
    st, _, _ = nsrv.get(f"/stream/{tid}?profile=mp3", method="HEAD")
    assert st == 200


def test_unmeasured_track_is_409(talas_server, library):
    srv = talas_server([library], extra_yaml="analysis:\n  loudness: false\n")
    tid = next(t["id"] for t in srv.tracks() if t["title"] == "quiet")
    st, _, body = srv.get(f"/stream/{tid}?profile=mp3&normalize=-14")
    assert st == 409 and error_code(body) == "loudness_unknown", body[:300]
    assert b"not measured" in body


def test_original_route_ignores_normalize(nsrv, library):
    tid = track(nsrv, "loud")
    original = (library / "loud.flac").read_bytes()
    st, h, body = nsrv.get(f"/stream/{tid}?normalize=-14")
    assert st == 200 and body == original
    st, _, part = nsrv.get(f"/stream/{tid}?normalize=-23", headers={"Range": "bytes=100-199"})
    assert st == 206 and part == original[100:200]


@pytest.mark.parametrize("route", ["mp3", "aac", "hls"])
def test_true_peak_holds_under_heavy_limiting(nsrv, tmp_path, route):
    """Dense loud noise raised 5 dB (to -5 LUFS): the limiter works all the
    time, and the encoder's overshoot must stay within its margin. The
    loudness falls short of the target there (the limiter takes it away):
    only the peak is held."""
    tid = track(nsrv, "loud")
    template, suffix = ROUTES[route]
    if template is None:
        out = fetch_hls(nsrv, tid, -5, tmp_path)
    else:
        st, _, body = nsrv.get(template.format(id=tid, target=-5), timeout=180)
        assert st == 200, body[:300]
        out = tmp_path / f"{route}.{suffix}"
        out.write_bytes(body)
    integrated, peak = ebur128(out)
    print(f"loud {route} -5: I {integrated} LUFS, true peak {peak} dBTP")
    assert peak <= -1.0, f"loud {route} to -5: true peak {peak} dBTP"
    assert integrated > nsrv.by_title["loud"]["loudness"]["integrated_lufs"], integrated


def test_hls_with_a_token_carries_both(talas_server, library, tmp_path):
    """With auth.required, the playlists list every URL with the token and
    the target; a player given the master playlist's URL alone plays the
    normalized rendition."""
    keys = ak.Keys(tmp_path / "keys")
    srv = talas_server([library], start=False)
    srv.write_config(text=ak.config_with_auth(srv, ak.auth_yaml(keys, extra_keys=False)))
    srv.start(wait_scan=True)
    key = {"Authorization": "Bearer " + keys.backend_key}
    st, _, body = srv.get("/api/tracks?limit=100", headers=key)
    tid = next(t["id"] for t in json.loads(body)["tracks"] if t["title"] == "quiet")
    token = ak.pyjwt_token(keys, "HS256", ak.claims(tid, scope="hls"), kid="k2")
    st, _, master = srv.get(f"/hls/{tid}/master.m3u8?normalize=-23&token={token}")
    assert st == 200, master[:300]
    uris = [line for line in master.decode().split("\n") if line and not line.startswith("#")]
    assert uris and all(u.endswith(f"?token={token}&normalize=-23.0") for u in uris), master
    st, _, pl = srv.get(f"/hls/{tid}/{uris[0]}")
    assert st == 200, pl[:300]
    segs = [line for line in pl.decode().split("\n") if line and not line.startswith("#")]
    assert all(u.endswith(f"?token={token}&normalize=-23.0") for u in segs), pl
    out = tmp_path / "played.wav"
    tf.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i",
            f"{srv.base_url}/hls/{tid}/master.m3u8?token={token}&normalize=-23", str(out)], timeout=120)
    integrated, peak = ebur128(out)
    assert abs(integrated - -23) <= 0.5 and peak <= -1.0, (integrated, peak)
