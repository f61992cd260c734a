"""The share page of a private link in a real browser.

A talas-master with auth.required serves the built player (web/dist, its
share.html at /s/{id}) over a library with two versions of one song. The
backend makes a private link to the song (password, stream + download +
comment). Headless Chromium (browser/share.mjs, playwright-core driving
Debian's /usr/bin/chromium), at a desktop viewport and as a phone ('Pixel
5'), opens /s/{id} with no token of its own: a wrong password is refused
on the page, the right one opens it; the title and the waveform show, the
track plays, the download button is there, a comment is posted and listed.
Every request the page made carried the link's share token and no other
(no media or API request went without one), and the link's analytics
counted the plays and the listener. Screenshots go to the test's tmp dir.
TALAS_SKIP_BROWSER=1 skips.
"""

import base64
import json
import os
import shutil
import subprocess

import pytest

import auth_keys as ak
import talas_fixtures as tf
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)
from test_web_player import web_dist

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

PASSWORD = "open sesame"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("sharebrowserkeys"))


@pytest.fixture(scope="module")
def bsrv(tmp_path_factory, keys):
    dist = web_dist()
    if not (dist / "share.html").is_file():
        pytest.fail(f"{dist} has no share.html: run scripts/build-web")
    lib = tmp_path_factory.mktemp("sharebrowserlib")
    tf.make_track(lib / "demo v1.mp3", "Demo v1", artist="Demo Band", seconds=20, freq=330)
    tf.make_track(lib / "demo v2.mp3", "Demo v2", artist="Demo Band", seconds=20, freq=440)
    srv = tf.TalasServer(tmp_path_factory.mktemp("sharebrowsersrv"), [lib], workers=2)
    ak.configure(srv, keys, f"http:\n  www_root: {json.dumps(str(dist))}\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("mode", ["desktop", "mobile"])
def test_share_page_in_the_browser(player, bsrv, mode, tmp_path):  # noqa: F811
    st, _, body = bsrv.get("/api/tracks?limit=10", headers=bsrv.backend)
    assert st == 200
    v1 = next(t for t in json.loads(body)["tracks"] if t["title"] == "Demo v1")
    st, _, body = bsrv.get(f"/api/tracks/{v1['id']}", headers=bsrv.backend)
    song = json.loads(body)["song_id"]
    assert song
    doc = {"song_id": song, "expires_in": 3600, "password": PASSWORD,
           "permissions": ["stream", "download", "comment"]}
    st, _, body = bsrv.get("/api/shares", method="POST", body=json.dumps(doc).encode(),
                           headers=dict(bsrv.backend, **{"Content-Type": "application/json"}))
    assert st == 201, body
    share = json.loads(body)

    out = tmp_path / "screens"
    script = player.parent / "share.mjs"
    if not script.exists():
        shutil.copy(tf.TESTS_DIR / "browser" / "share.mjs", script)
    comment = f"lovely chorus ({mode})"
    env = dict(os.environ, CHROMIUM=CHROMIUM, PASSWORD=PASSWORD, TITLE="Demo", COMMENT=comment)
    try:
        cp = subprocess.run(["node", str(script), bsrv.base_url, share["id"], str(out), mode],
                            capture_output=True, text=True, timeout=300, cwd=str(script.parent), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"share.mjs did not finish in 300 s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    (tmp_path / "share.json").write_text(cp.stdout)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"share.mjs exited {cp.returncode} without a summary\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}")
    assert cp.returncode == 0 and summary["ok"], f"{summary.get('failure')}\n{json.dumps(summary)[:4000]}"
    assert summary["wrong_password_shown"] and summary["played"] > 0.5
    assert not summary["page_errors"], summary["page_errors"]
    shots = [p for p in summary["screenshots"] if os.path.getsize(p) > 0]
    assert any(p.endswith("-playing.png") for p in shots), shots

    # every media and API request carried a token of this link, and only that
    tokens = set()
    for r in summary["requests"]:
        if r["path"].startswith(("/stream/", "/hls/", "/preview/", "/api/")):
            t = r["query"] or r["bearer"]
            assert t, f"a request without the share token: {r}"
            tokens.add(t)
    assert tokens, summary["requests"]
    for t in tokens:
        c = claims_of(t)
        assert c["share"] == share["id"] and "sub" not in c and "track" not in c, c
    assert "token=" in summary["download_href"]

    # the link's analytics saw the play and the listener; the comment is the link's
    st, _, body = bsrv.get(f"/api/shares/{share['id']}", headers=bsrv.backend)
    a = json.loads(body)["analytics"]
    assert a["plays"] >= 1 and a["listeners"] == 1, a
    st, _, body = bsrv.get(f"/api/tracks/{v1['id']}/comments", headers=bsrv.backend)
    mine = [t for t in json.loads(body)["threads"] if t["body"] == comment]
    assert mine and mine[0]["user_id"].startswith(f"share:{share['id']}:"), mine
