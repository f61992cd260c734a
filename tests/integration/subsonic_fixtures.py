"""What the Subsonic tests (test_subsonic*.py) share: the accounts, the
server with Subsonic on, raw /rest calls, the npm client (subsonic/client.mjs),
the XSD check, the WebSocket events, and test_subsonic.py's generated
library with its server as module fixtures."""

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

import pytest

import cluster_fixtures as cf
import talas_fixtures as tf

CLIENT_DIR = Path(__file__).resolve().parent / "subsonic"
NS = "{http://subsonic.org/restapi}"
PASSWORDS = {"alice": "sesame", "bob": "p@ss w&rd=+%;"}

# relative path: (title, artist, album, ffmpeg source and codec arguments)
TRACKS = {
    "Alpha/First/01.flac": ("Noise One", "Alpha", "First",
                            ["-f", "lavfi", "-i", "anoisesrc=d=6:c=white:a=0.5", "-ac", "2", "-c:a", "flac"]),
    "Alpha/First/02.mp3": ("Tone Two", "Alpha", "First",
                           ["-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:a", "libmp3lame", "-b:a", "128k"]),
    "Beta/Second/03.ogg": ("Tone Three", "Beta", "Second",
                           ["-f", "lavfi", "-i", "sine=frequency=550:duration=3", "-c:a", "libvorbis"]),
    "Beta/Third/04.mp3": ("Tone Four", "Beta", "Third",
                          ["-f", "lavfi", "-i", "sine=frequency=660:duration=3", "-c:a", "libmp3lame", "-b:a", "96k"]),
    "Gamma/05.mp3": ('Quote "x" & <y>', "Gamma & <Co>", "Ümlaut",
                     ["-f", "lavfi", "-i", "sine=frequency=770:duration=3", "-c:a", "libmp3lame", "-b:a", "128k"]),
    "loose/06.mp3": (None, None, None,
                     ["-f", "lavfi", "-i", "sine=frequency=880:duration=3", "-c:a", "libmp3lame", "-b:a", "128k"]),
}


def make_library(d):
    for rel, (title, artist, album, args) in TRACKS.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = []
        for k, v in (("title", title), ("artist", artist), ("album", album)):
            if v is not None:
                meta += ["-metadata", f"{k}={v}"]
        tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + args + meta + [str(p)])
    return d


def subsonic_server(workdir, lib, workers=2, extra=""):
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "subsonic.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv = tf.TalasServer(workdir, [lib], workers=workers,
                         extra_yaml=f"subsonic:\n  enabled: true\n  password_key_file: {json.dumps(str(key))}\n"
                         + extra)
    return srv


def add_user(srv, name, password, expect=0):
    r = subprocess.run([str(tf.TALASCTL), "-c", str(srv.config_path), "users", "add", name],
                       input=password.encode(), capture_output=True, timeout=30)
    assert r.returncode == expect, r
    return r


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return make_library(tmp_path_factory.mktemp("sslib"))


@pytest.fixture(scope="module")
def srv(tmp_path_factory, lib):
    # the wrong passwords tried here must not lock the right ones out:
    # test_failed_login_limit has a server of its own for that
    yield from serve(tmp_path_factory.mktemp("sssrv"), lib, extra="  max_failed_logins: 0\n")


def node_client(srv, auth, calls, post=False, tmp=None):
    node = shutil.which("node")
    if node is None or not (CLIENT_DIR / "node_modules" / "subsonic-api" / "package.json").is_file():
        pytest.fail("the Subsonic client is missing: node and `npm ci` in tests/integration/subsonic "
                    "(scripts/deps test installs it)")
    plan = {"url": srv.base_url, "auth": auth, "post": post, "calls": calls}
    path = srv.workdir / f"plan-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(plan))
    r = subprocess.run([node, str(CLIENT_DIR / "client.mjs"), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def rest(srv, method, params=None, post=False, headers=None):
    """A raw request: (HTTP status, headers, body bytes)."""
    q = urlencode(params or {}, doseq=True)
    if post:
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return srv.get(f"/rest/{method}", method="POST", body=q.encode(), headers=h)
    return srv.get(f"/rest/{method}?{q}", headers=headers)


def rest_json(srv, method, params):
    st, hdrs, body = rest(srv, method, dict(params, f="json"))
    assert st == 200, body
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    doc = json.loads(body)["subsonic-response"]
    for k, v in (("version", "1.16.1"), ("type", "talas"), ("serverVersion", tf.VERSION), ("openSubsonic", True)):
        assert doc[k] == v, doc
    return doc


def alice(**kw):
    return dict({"u": "alice", "p": PASSWORDS["alice"]}, **kw)


def error_code(doc):
    assert doc["status"] == "failed", doc
    return doc["error"]["code"]


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def ctl(srv, *args, input=None):
    return subprocess.run([str(tf.TALASCTL), "-c", str(srv.config_path)] + list(args),
                          input=input, capture_output=True, timeout=30)


XSD = CLIENT_DIR / "subsonic-rest-api-1.16.1.xsd"
# OpenSubsonic's additions, which the 1.16.1 XSD does not know
OPEN_SUBSONIC_ATTRS = {"type", "serverVersion", "openSubsonic", "mediaType", "samplingRate", "channelCount"}


def serve(workdir, lib, extra="", backend_key=None):
    """A generator for a module fixture: a Subsonic server on LIB (SUBSONIC's
    EXTRA settings; BACKEND_KEY as its backend key if given), alice and bob
    added, started and scanned, with tracks_by_title and ids (title: id);
    killed after."""
    s = subsonic_server(workdir, lib, extra=extra)
    if backend_key is not None:
        s.write_config(text=cf.with_backend_key(s, backend_key))
    for name, pw in PASSWORDS.items():
        add_user(s, name, pw)
    s.start(wait_scan=True)
    try:
        s.tracks_by_title = {t["title"]: t for t in s.tracks()}
        s.ids = {t: v["id"] for t, v in s.tracks_by_title.items()}
        yield s
    finally:
        s.kill()


def cluster_extra(tmp_path):
    """The subsonic section of a cluster's nodes: a password key in TMP_PATH,
    no failed-login limit."""
    key = tmp_path / "subsonic.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    return f"subsonic:\n  enabled: true\n  password_key_file: {json.dumps(str(key))}\n  max_failed_logins: 0\n"


def xsd_valid(tmp_path, name, body, strip=OPEN_SUBSONIC_ATTRS, fix=None):
    """BODY, a /rest XML answer, against the Subsonic 1.16.1 XSD once the
    attributes STRIP are removed (and FIX(element) applied to each element);
    returns the root so stripped."""
    root = ET.fromstring(body)
    for e in root.iter():
        for a in strip & set(e.attrib):
            del e.attrib[a]
        if fix is not None:
            fix(e)
    path = tmp_path / f"{name}.xml"
    path.write_bytes(ET.tostring(root, encoding="utf-8"))
    if shutil.which("xmllint") is None:
        pytest.fail("xmllint is missing: install Debian package libxml2-utils")
    r = subprocess.run(["xmllint", "--noout", "--schema", str(XSD), str(path)], capture_output=True)
    assert r.returncode == 0, (name, r.stderr.decode()[-2000:], body[:2000])
    return root


def ws_url(srv, user):
    return f"ws://127.0.0.1:{srv.port}/api/ws?user_id={user}"


async def recv_until(ws, pred, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if pred(m):
            return m
