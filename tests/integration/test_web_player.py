"""The web player (web/, built into web/dist) in a real browser.

A talas-master serves the built player at / (http.www_root), over a small
library made for it: a long MP3 (big enough that a seek needs a new Range
request), a FLAC for the HLS ladder, and three short tracks of one artist
for search and continuous play. Headless Chromium (Debian's
/usr/bin/chromium, driven by playwright-core: browser/webplayer.mjs) uses
the page as a listener would, once at a desktop viewport and once emulating
a phone (playwright's 'Pixel 5'): list, search, play (first timeupdate in
under a second), seek, keyboard, pause, the live panel (its own
PlaybackStarted, a ServerMessage and a TrackLiked injected with
POST /api/events), a 30 s preview, continuous play with next/previous, the
adaptive mode through hls.js and its fallback to the progressive stream
when the ladder fails to load, and, on the desktop, a reload of the server
that the realtime connection survives by reconnecting.

The player must have been built (scripts/build-web; scripts/check does it);
when it has not, the tests fail and say so. TALAS_WEB_DIST names a built
player elsewhere (the sanitizer run of scripts/check).
TALAS_SKIP_BROWSER=1 skips them, as it does the other browser tests.
Screenshots and the JSON summaries go to $TALAS_BUILDDIR/tests/artifacts/web/.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import talas_fixtures as tf
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "web"
BACKEND_KEY = "web-player-test-backend-key-0123456789abcdef"
LONG_TITLE = "Long Drive"
HLS_TITLE = "Ladder Song"
SHORT_TITLES = ["Alpha One", "Beta Two", "Gamma Three"]
SHORT_ARTIST = "Short Band"


def web_dist():
    """The built player: TALAS_WEB_DIST, else web/dist of the build tree or
    of the source tree; fails the test with what to run when none is built."""
    candidates = []
    if os.environ.get("TALAS_WEB_DIST"):
        candidates.append(Path(os.environ["TALAS_WEB_DIST"]))
    candidates += [tf.BUILDDIR / "web" / "dist", tf.SRCDIR / "web" / "dist"]
    for c in candidates:
        if (c / "index.html").is_file() and any((c / "assets").glob("*.js")):
            return c
    pytest.fail("the web player is not built: run scripts/build-web (scripts/check does), "
                "or set TALAS_WEB_DIST to a built web/dist; looked in "
                + ", ".join(str(c) for c in candidates))


@pytest.fixture(scope="module")
def web_library(tmp_path_factory):
    d = tmp_path_factory.mktemp("weblib")
    # 480 s at 320 kbit/s: ~19 MB, more than Chromium buffers after a
    # few seconds, so the seek to 70% needs a Range request of its own
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=480", "-ac", "2",
            "-c:a", "libmp3lame", "-b:a", "320k", "-metadata", f"title={LONG_TITLE}",
            "-metadata", "artist=Night Shift", "-metadata", "album=Highway",
            str(d / "a-long.mp3")], timeout=120)
    tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", "sine=frequency=523:duration=40",
            "-f", "lavfi", "-i", "anoisesrc=d=40:c=pink:a=0.1:r=44100",
            "-filter_complex", "amix=inputs=2", "-ac", "2", "-c:a", "flac",
            "-metadata", f"title={HLS_TITLE}", "-metadata", "artist=HLS Band",
            "-metadata", "album=Rungs", str(d / "b-ladder.flac")], timeout=120)
    for i, title in enumerate(SHORT_TITLES):
        tf.make_track(d / f"c-short-{i}.mp3", title, artist=SHORT_ARTIST, album="Shorts",
                      seconds=4, freq=300 + 100 * i)
    return d


@pytest.fixture(scope="module")
def web_server(tmp_path_factory, web_library):
    dist = web_dist()
    work = tmp_path_factory.mktemp("websrv")
    key = work / "backend.key"
    key.write_text(BACKEND_KEY + "\n")
    srv = tf.TalasServer(work, [web_library], workers=2)
    text = srv.config_text().replace(
        "auth:\n  required: false\n",
        f"auth:\n  required: false\n  backend_key_file: {json.dumps(str(key))}\n")
    text += (f"http:\n  www_root: {json.dumps(str(dist))}\n"
             "ws:\n  live_stats_interval: 1s\n")
    srv.write_config(text=text)
    srv.start(wait_scan=True)
    try:
        yield srv
    finally:
        srv.kill()


def run_webplayer(player, srv, mode, reconnect):  # noqa: F811
    out = ARTIFACTS / mode
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    script = player.parent / "webplayer.mjs"
    env = dict(os.environ, CHROMIUM=CHROMIUM, BACKEND_KEY=BACKEND_KEY, LONG_TITLE=LONG_TITLE,
               HLS_TITLE=HLS_TITLE, SHORT_TITLES=",".join(SHORT_TITLES), SEARCH=SHORT_ARTIST)
    if reconnect:
        env["MASTER_PID"] = str(srv.master_pid)
    try:
        cp = subprocess.run(["node", str(script), srv.base_url, str(out), mode],
                            capture_output=True, text=True, timeout=300,
                            cwd=str(script.parent), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"webplayer.mjs did not finish in 300 s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    (out / "webplayer.json").write_text(cp.stdout)
    (out / "webplayer.stderr").write_text(cp.stderr)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"webplayer.mjs exited {cp.returncode} without a JSON summary\n"
                    f"stdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}")
    assert cp.returncode == 0 and summary["ok"], (
        f"the web player failed ({mode}): {summary.get('failure')}\n"
        f"steps: {summary.get('steps')}\nstderr:\n{cp.stderr[-2000:]}\n"
        f"summary: {json.dumps(summary)[:6000]}")
    return summary


def access_log(srv):
    out = []
    for line in tf.read_text(srv.access_log, limit=1 << 24).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


@pytest.mark.parametrize("mode", ["desktop", "mobile"])
def test_web_player(player, web_server, web_library, mode, record_property):  # noqa: F811
    srv = web_server
    tracks = {t["title"]: t for t in srv.tracks()}
    long_track = tracks[LONG_TITLE]
    long_size = (web_library / "a-long.mp3").stat().st_size
    s = run_webplayer(player, srv, mode, reconnect=(mode == "desktop"))

    # the page, the list, the search
    assert s["tracks_listed"] == len(tracks), s["tracks_listed"]
    assert s["ws_connected"]
    assert sorted(s["search"]["titles"]) == sorted(SHORT_TITLES), s["search"]
    assert s["search"]["count_text"].startswith("3 tracks"), s["search"]

    # play: from the original file, first timeupdate within the budget
    played = s["played"]
    assert f"/stream/{long_track['id']}" in played["src"], played
    assert LONG_TITLE in played["now"] and "Night Shift" in played["now"], played
    assert played["total_text"] == "8:00", played
    # played: the time it took is a figure, kept in the report, not a pass
    # mark (a sanitizer build on a busy machine is several times slower)
    assert s["first_play_ms"] is not None, "no timeupdate after the first play"
    record_property("first_play_ms", s["first_play_ms"])

    # the seek bar is the track's waveform: its peaks were asked for and drawn
    wave = s["waveform"]
    assert wave and wave["points"] == 600 and wave["path_commands"] >= 4 * 600, wave
    assert wave["width"] > 100 and wave["height"] >= 20, wave
    assert {"query": "?points=600", "status": 200} in wave["requests"], wave
    st, _, body = srv.get(f"/api/tracks/{long_track['id']}/peaks?points=600")
    doc = json.loads(body)
    assert st == 200 and max(doc["max"]) > 0.05 and min(doc["min"]) < -0.05, "a flat waveform"

    # the seek (a click or tap on the waveform) went to ~70% and the server
    # saw a Range request that far
    seek = s["seek"]
    assert seek["to"] > 0.65 * seek["duration"], seek
    ranges = []
    for e in access_log(srv):
        if str(e.get("uri", "")).split("?")[0] == f"/stream/{long_track['id']}" and \
                str(e.get("range", "-")).startswith("bytes="):
            ranges.append((e["range"], e.get("status")))
    far = [r for r in ranges if int(r[0][6:].split("-")[0] or 0) > 0.3 * long_size]
    assert far and all(st == 206 for _, st in far), (
        f"no Range request beyond 30% of the {long_size}-byte file after the seek: {ranges}")

    if mode == "desktop":
        k = s["keyboard"]
        assert k["after_right"] >= k["before"] + 4, k
        assert k["after_left"] < k["after_right"], k
    assert s["paused"]["button"] == "Play", s["paused"]

    # live panel: our own playback, a server message and a like
    live = s["live"]
    kinds = {e["event"] for e in live["events"]}
    assert {"PlaybackStarted", "ServerMessage", "TrackLiked"} <= kinds, live["events"]
    assert "You" in live["listeners"], live
    assert any(live["message"] in e["text"] for e in live["events"]), live["events"]

    # the preview
    assert f"/preview/{long_track['id']}" in s["preview"]["src"], s["preview"]
    assert s["preview"]["source"].startswith("Preview"), s["preview"]

    # continuous play, next, previous
    assert s["continuous"]["followed_by"] == SHORT_TITLES[1], s["continuous"]

    # adaptive: hls.js on the ladder, a rung shown, segments fetched
    a = s["adaptive"]
    assert a["master"] and a["session"] and a["metrics_reported"] and a["segments"] >= 1, a
    assert a["source"].startswith("HLS"), a
    assert "kbit/s" in (a["rung"] or ""), a
    log = access_log(srv)
    assert any(str(e.get("uri", "")).endswith(".m4s") and e.get("status") == 200 for e in log)
    stats = srv.get_json("/api/streaming/stats")
    assert stats["totals"]["sessions_created"] >= 1, stats

    # HLS that fails falls back to the progressive original
    fb = s["fallback"]
    assert f"/stream/{tracks[HLS_TITLE]['id']}" in fb["src"] and fb["fallback"], fb
    assert s["quality_change_paused"]["paused"], s["quality_change_paused"]

    if mode == "desktop":
        states = s["reconnect"]["states"]
        assert "reconnecting" in states and states[-1] == "connected", states

    # a phone: no sideways scrolling, touch targets of 44 px at least
    assert s["horizontal_overflow"] == [], s["horizontal_overflow"]
    if mode == "mobile":
        assert s["small_targets"] == [], s["small_targets"]
    assert s["page_errors"] == [], s["page_errors"]
    for name in ("list", "playing", "live", "adaptive"):
        assert (ARTIFACTS / mode / f"{mode}-{name}.png").is_file(), name


def test_web_player_assets_are_small_and_served(web_server):
    """The page's own JavaScript stays small (issue 7, acceptance 4): React
    and hls.js are chunks of their own, hls.js loaded only by the adaptive
    mode. Sizes go to the artifacts (web/sizes.json)."""
    dist = web_dist()
    st, _, body = web_server.get("/")
    assert st == 200 and b'<div id="root">' in body
    html = body.decode()
    sizes = {p.name: p.stat().st_size for p in (dist / "assets").iterdir()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sizes.json").write_text(json.dumps(sizes, indent=1) + "\n")
    own = [n for n in sizes if n.startswith("index-") and n.endswith(".js")]
    assert len(own) == 1, sizes
    assert sizes[own[0]] < 64 * 1024, f"the player's own JavaScript grew to {sizes[own[0]]} bytes"
    assert own[0] in html                      # loaded by the page itself
    hls = [n for n in sizes if n.startswith("hls") and n.endswith(".js")]
    assert hls and hls[0] not in html, "hls.js must load on demand, not with the page"
    for n in sizes:
        st, _, b = web_server.get(f"/assets/{n}")
        assert st == 200 and len(b) == sizes[n], n


def test_web_lock_file_names_no_registry():
    """npm ci uses the registry the machine is configured with: the lock
    file records no registry address (web/.npmrc)."""
    lock = json.loads((tf.SRCDIR / "web" / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    for name, pkg in lock["packages"].items():
        assert "resolved" not in pkg, name
        assert pkg.get("integrity", "sha512-").startswith("sha512-"), name
    assert "omit-lockfile-registry-resolved=true" in (tf.SRCDIR / "web" / ".npmrc").read_text()
