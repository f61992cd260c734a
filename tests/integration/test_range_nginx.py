"""Acceptance: Range behaviour matches nginx's, byte for byte.

The same MP3 is served by Debian's nginx (static root holding a hard link to
the file) and by Talas (/stream/ID).  For every Range header of the table
both answers must agree on status, Content-Range, Content-Length and body.

Differences that are by design, and how they are compared:
- multipart/byteranges: the boundary strings differ, so each body has its
  own boundary (from its Content-Type) replaced by a fixed token before the
  comparison, and Content-Length is compared after the same substitution.
- 416: nginx sends an HTML error page, Talas a JSON error body, so only the
  status and Content-Range ("bytes */LEN") are compared.
- ETags differ (nginx: "mtime-size" in hex), so If-Range is sent with each
  server's own ETag / Last-Modified where the case calls for "the right one".
"""

import email.utils
import os
import re
import shutil

import pytest

import talas_fixtures as tf

TOKEN = b"@@BOUNDARY@@"
WRONG_DATE = "Tue, 01 Jan 2019 00:00:00 GMT"


# (label, function(L, etag, last_modified) -> request headers)
def rng(value):
    return lambda L, etag, lm: {"Range": value(L) if callable(value) else value}


CASES = [
    ("first byte", rng("bytes=0-0")),
    ("first 100", rng("bytes=0-99")),
    ("middle", rng("bytes=1000-1999")),
    ("single byte middle", rng("bytes=10-10")),
    ("open-ended", rng("bytes=100-")),
    ("open-ended from 0", rng("bytes=0-")),
    ("last byte open-ended", rng(lambda L: f"bytes={L - 1}-")),
    ("suffix 100", rng("bytes=-100")),
    ("suffix 1", rng("bytes=-1")),
    ("suffix 0", rng("bytes=-0")),
    ("suffix longer than file", rng(lambda L: f"bytes=-{L * 2}")),
    ("end past the end", rng(lambda L: f"bytes=0-{L + 1000}")),
    ("straddling the end", rng(lambda L: f"bytes={L - 10}-{L + 10}")),
    ("start at length", rng(lambda L: f"bytes={L}-")),
    ("start past length", rng(lambda L: f"bytes={L + 5}-")),
    ("start past length closed", rng(lambda L: f"bytes={L + 5}-{L + 10}")),
    ("reversed", rng("bytes=5-3")),
    ("two ranges", rng("bytes=0-10,20-30")),
    ("overlapping", rng("bytes=0-10,5-15")),
    ("first and suffix", rng("bytes=0-0,-1")),
    ("out of order", rng("bytes=1000-2000,100-200")),
    ("four ranges", rng("bytes=0-1,3-4,5-6,7-8")),
    ("one bad one good", rng("bytes=5-3,1-2")),
    ("good then past end", rng(lambda L: f"bytes=1-2,{L + 5}-")),
    ("sum exceeds length", rng("bytes=0-,0-")),
    ("overlap sum exceeds length", rng(lambda L: f"bytes=0-{L // 2 + 10},{L // 2 - 10}-")),
    ("not numbers", rng("bytes=x-y")),
    ("empty set", rng("bytes=")),
    ("wrong unit", rng("bites=0-1")),
    ("unit case", rng("Bytes=0-1")),
    ("unit upper", rng("BYTES=0-1")),
    ("spaces around comma", rng("bytes=0-1 ,  3-4")),
    ("space after =", rng("bytes= 1-2")),
    ("space inside", rng("bytes=1 - 2")),
    ("trailing comma", rng("bytes=1-2,")),
    ("double comma", rng("bytes=0-1,,2-3")),
    ("trailing junk", rng("bytes=0-1;x")),
    ("no dash", rng("bytes=100")),
    ("double dash", rng("bytes=--1")),
    ("plus sign", rng("bytes=+1-2")),
    ("hex", rng("bytes=0x10-20")),
    ("huge start", rng("bytes=99999999999999999999999-")),
    ("max off_t start", rng("bytes=9223372036854775807-")),
    ("max off_t end", rng("bytes=0-9223372036854775807")),
    ("max suffix", rng("bytes=-9223372036854775807")),
    ("If-Range right ETag", lambda L, etag, lm: {"Range": "bytes=0-99", "If-Range": etag}),
    ("If-Range right ETag multi", lambda L, etag, lm: {"Range": "bytes=0-9,20-29",
                                                        "If-Range": etag}),
    ("If-Range wrong ETag", lambda L, etag, lm: {"Range": "bytes=0-99",
                                                  "If-Range": '"0-wrong"'}),
    ("If-Range weak ETag", lambda L, etag, lm: {"Range": "bytes=0-99",
                                                 "If-Range": "W/" + etag}),
    ("If-Range right date", lambda L, etag, lm: {"Range": "bytes=0-99", "If-Range": lm}),
    ("If-Range wrong date", lambda L, etag, lm: {"Range": "bytes=0-99",
                                                  "If-Range": WRONG_DATE}),
    ("If-Range garbage", lambda L, etag, lm: {"Range": "bytes=0-99", "If-Range": "garbage"}),
    ("If-Range right ETag unsatisfiable", lambda L, etag, lm: {"Range": f"bytes={L}-",
                                                                "If-Range": etag}),
]
assert len(CASES) >= 20


@pytest.fixture(scope="module")
def pair(server, library, tmp_path_factory):
    """(nginx, its path, talas server, its path, file length)."""
    src = library["mp3"]
    root = tmp_path_factory.mktemp("nginx-root")
    dst = root / "tone.mp3"
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    ngx = tf.NginxServer(tmp_path_factory.mktemp("nginx"), root).start()
    try:
        t = server.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])
        assert t is not None
        yield ngx, "/tone.mp3", server, f"/stream/{t['id']}", src.stat().st_size
    finally:
        ngx.stop()


def boundary_of(ctype):
    m = re.match(r'^multipart/byteranges;\s*boundary="?([^";]+)"?$', ctype or "")
    return m.group(1).encode() if m else None


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b)) if len(a) != len(b) else None


def describe(label, headers, n, t, extra=""):
    (ns, nh, nb), (ts, th, tb) = n, t
    i = first_difference(nb, tb)
    where = "" if i is None else (f"\nfirst differing byte at offset {i}: "
                                  f"nginx {nb[i:i + 16]!r} talas {tb[i:i + 16]!r}")
    return (f"[{label}] request headers {headers!r}\n"
            f"  nginx: {ns} Content-Range={nh['Content-Range']!r} "
            f"Content-Length={nh['Content-Length']!r} Content-Type={nh['Content-Type']!r} "
            f"body {len(nb)} bytes\n"
            f"  talas: {ts} Content-Range={th['Content-Range']!r} "
            f"Content-Length={th['Content-Length']!r} Content-Type={th['Content-Type']!r} "
            f"body {len(tb)} bytes{where}{extra}")


def compare(label, headers, n, t, method="GET"):
    (ns, nh, nb), (ts, th, tb) = n, t
    msg = describe(label, headers, n, t)
    assert ns == ts, "status differs\n" + msg
    assert nh["Content-Range"] == th["Content-Range"], "Content-Range differs\n" + msg
    if ns == 416:
        return  # bodies differ by design (HTML vs JSON); see the module docstring
    nbnd, tbnd = boundary_of(nh["Content-Type"]), boundary_of(th["Content-Type"])
    if nbnd or tbnd:
        assert nbnd and tbnd, "only one side sent multipart\n" + msg
        assert nbnd != TOKEN and tbnd != TOKEN
        nn, tn = nb.replace(nbnd, TOKEN), tb.replace(tbnd, TOKEN)
        ncl = int(nh["Content-Length"]) - nb.count(nbnd) * (len(nbnd) - len(TOKEN))
        tcl = int(th["Content-Length"]) - tb.count(tbnd) * (len(tbnd) - len(TOKEN))
        nmsg = describe(label, headers, (ns, nh, nn), (ts, th, tn),
                        f"\n  (boundaries {nbnd!r} / {tbnd!r} replaced by {TOKEN!r})")
        assert ncl == tcl, "Content-Length differs after boundary substitution\n" + nmsg
        assert nn == tn, "multipart body differs\n" + nmsg
    else:
        assert nh["Content-Type"] == th["Content-Type"], "Content-Type differs\n" + msg
        assert nh["Content-Length"] == th["Content-Length"], "Content-Length differs\n" + msg
        assert nb == tb, "body differs\n" + msg
    if method == "GET":
        assert int(th["Content-Length"]) == len(tb), "talas Content-Length != body\n" + msg


def validators(srv, path):
    st, h, _ = srv.get(path, method="HEAD")
    assert st == 200
    return h["ETag"], h["Last-Modified"]


@pytest.mark.parametrize("label,make", CASES, ids=[c[0] for c in CASES])
def test_range_matches_nginx(pair, label, make):
    ngx, npath, tal, tpath, L = pair
    ne, nlm = validators(ngx, npath)
    te, tlm = validators(tal, tpath)
    # Same file, same mtime: both must announce the same Last-Modified.
    assert nlm == tlm
    nhdrs, thdrs = make(L, ne, nlm), make(L, te, tlm)
    n = ngx.get(npath, nhdrs)
    t = tal.get(tpath, thdrs)
    compare(label, thdrs, n, t)


@pytest.mark.parametrize("value", ["bytes=0-99", "bytes=0-1,5-6", "bytes=-0", "bytes=0-,0-"])
def test_range_head_matches_nginx(pair, value):
    ngx, npath, tal, tpath, L = pair
    hdrs = {"Range": value}
    n = ngx.get(npath, hdrs, method="HEAD")
    t = tal.get(tpath, hdrs, method="HEAD")
    assert t[2] == b""
    compare("HEAD " + value, hdrs, n, t, method="HEAD")


def test_range_ignored_with_matching_if_none_match(pair):
    """If-None-Match that matches wins over Range: 304, no body."""
    ngx, npath, tal, tpath, L = pair
    te, _ = validators(tal, tpath)
    st, h, body = tal.get(tpath, {"Range": "bytes=0-99", "If-None-Match": te})
    assert (st, body) == (304, b"")


def test_if_range_date_rfc850_forms(pair):
    """nginx parses If-Range dates in every HTTP date form; so must Talas."""
    ngx, npath, tal, tpath, L = pair
    _, lm = validators(tal, tpath)
    ts = email.utils.parsedate_to_datetime(lm)
    rfc850 = ts.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    asctime = ts.strftime("%a %b ") + f"{ts.day:2d}" + ts.strftime(" %H:%M:%S %Y")
    for form in (rfc850, asctime):
        hdrs = {"Range": "bytes=0-99", "If-Range": form}
        compare("If-Range " + form, hdrs, ngx.get(npath, hdrs), tal.get(tpath, hdrs))


@pytest.mark.parametrize("value", ["bytes=0-18446744073709551616", "bytes=0-9223372036854775808",
                                   "bytes=-9223372036854775808", "bytes=10-99999999999999999999999999"])
def test_range_past_off_t_is_clamped(pair, value):
    """The one deliberate difference from nginx (416): a last position or a
    suffix too large for off_t is only "past the end", which RFC 9110
    (14.1.1) clamps to the representation: 206 and the bytes to the end."""
    ngx, npath, tal, tpath, L = pair
    start = 10 if value.startswith("bytes=10-") else 0
    st, h, body = tal.get(tpath, {"Range": value})
    assert st == 206, (value, st)
    assert h["Content-Range"] == f"bytes {start}-{L - 1}/{L}"
    assert int(h["Content-Length"]) == len(body) == L - start
    assert ngx.get(npath, {"Range": value})[0] == 416  # the reference differs here
