"""The web player's loudness features (issue 17) in a real browser.

A talas-master serves the built player over a library of drum loops made
here from Debian's hydrogen-data samples at known tempos (so the scan finds
their BPM) and measured by its scanner. Headless Chromium
(browser/loudness.mjs through playwright-core), at a desktop size and as a
phone: the playing track's LUFS, true peak and BPM shown as /api/tracks
gives them; Loudness match -14, -23 and off switch the <audio> element to
the normalized stream (?normalize=) and back at the same position (within
250 ms, read before and after) and playback goes on; the BPM filter
narrows the track list. Screenshots go to
$TALAS_BUILDDIR/tests/artifacts/web/loudness-{desktop,mobile}/.
"""

import json
import os
import shutil
import subprocess

import pytest

import talas_fixtures as tf
from test_analysis import make_drum_loop
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)
from test_web_player import web_dist

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "web"
LOOPS = {"Loop 120": 120, "Loop 95": 95, "Loop 140": 140}


@pytest.fixture(scope="module")
def loudness_server(tmp_path_factory):
    dist = web_dist()
    lib = tmp_path_factory.mktemp("loudlib")
    for title, bpm in LOOPS.items():
        wav = lib.parent / f"{bpm}.wav"
        make_drum_loop(wav, bpm, 30)
        tf.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(wav), "-metadata", f"title={title}",
                str(lib / f"loop-{bpm}.flac")], timeout=60)
        wav.unlink()
    srv = tf.TalasServer(tmp_path_factory.mktemp("loudsrv"), [lib], workers=2,
                         extra_yaml=f"http:\n  www_root: {json.dumps(str(dist))}\n")
    srv.start(wait_scan=True)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize("mode", ["desktop", "mobile"])
def test_loudness_in_the_web_player(player, loudness_server, mode):  # noqa: F811
    srv = loudness_server
    tracks = {t["title"]: t for t in srv.tracks()}
    for title, bpm in LOOPS.items():
        assert tracks[title]["tempo"] and abs(tracks[title]["tempo"]["bpm"] - bpm) <= 1, tracks[title]
    out = ARTIFACTS / f"loudness-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    script = player.parent / "loudness.mjs"
    env = dict(os.environ, CHROMIUM=CHROMIUM, TRACK_TITLE="Loop 120", BPM_MIN="110", BPM_MAX="130",
               IN_RANGE="Loop 120")
    cp = subprocess.run(["node", str(script), srv.base_url, str(out), mode], capture_output=True, text=True,
                        timeout=240, cwd=str(script.parent), env=env)
    (out / "loudness.json").write_text(cp.stdout)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"loudness.mjs exited {cp.returncode} without a JSON summary\n"
                    f"stdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}")
    assert cp.returncode == 0 and summary["ok"], (
        f"the web player failed ({mode}): {summary.get('failure')}\nsteps: {summary.get('steps')}\n"
        f"switches: {summary.get('switches')}\nstderr:\n{cp.stderr[-2000:]}")
    # the original file, then the mp3 transcode at each target, then the file again
    tid = tracks["Loop 120"]["id"]
    srcs = [s["src"].split("/", 3)[-1] for s in summary["switches"]]
    assert srcs == [f"stream/{tid}?profile=mp3&normalize=-14", f"stream/{tid}?profile=mp3&normalize=-23",
                    f"stream/{tid}"], srcs
    for s in summary["switches"]:
        assert abs(s["after"] - s["before"]) <= 0.25 and s["resumed"] > s["after"], s
    assert len(summary["screenshots"]) == 3
