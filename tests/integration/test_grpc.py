"""gRPC: talas.v1.StreamService/GetStreamURL on grpc.listen.

A real talas-master with HS256 keys and a backend key, called by Debian's
python3-grpcio through stubs generated here, at test time, from the shipped
proto/talas/v1/stream.proto (python3-grpc-tools).  The URLs it hands out are
then fetched over HTTP and compared byte for byte with the library file.
Hostile clients (garbage, HTTP/1.1, raw HTTP/2 frames) must not take a
worker down: worker pids are compared before and after.
"""

import base64
import calendar
import json
import re
import socket
import struct
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import talas_fixtures as tf

BACKEND_KEY = "backend-key-for-tests-0123456789"
SECRET = "an-hs256-secret-of-at-least-32-bytes!!"
METHOD = "/talas.v1.StreamService/GetStreamURL"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# ---------------------------------------------------------------- helpers

def grpc_modules(stub_dir):
    """grpc and the stubs generated from the shipped .proto into STUB_DIR."""
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError:
        pytest.skip("python3-grpcio and python3-grpc-tools are needed (Debian packages)")
    proto_root = tf.SRCDIR / "proto"
    Path(stub_dir).mkdir(parents=True, exist_ok=True)
    tf.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}",
            f"--python_out={stub_dir}", f"--grpc_python_out={stub_dir}",
            proto_root / "talas/v1/stream.proto"], timeout=60)
    if str(stub_dir) not in sys.path:
        sys.path.insert(0, str(stub_dir))
    import grpc
    from talas.v1 import stream_pb2, stream_pb2_grpc
    return grpc, stream_pb2, stream_pb2_grpc


def auth_yaml(workdir, sign=True):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "backend.key").write_text(BACKEND_KEY + "\n")
    lines = ["auth:", "  required: false",
             f"  backend_key_file: {tf._q(workdir / 'backend.key')}"]
    if sign:
        (workdir / "secret").write_text(SECRET + "\n")
        lines += ["  algorithm: HS256", f"  secret_file: {tf._q(workdir / 'secret')}"]
    return "\n".join(lines) + "\n"


def grpc_server(workdir, library_dir, sign=True, tls=None, workers=2):
    """A TalasServer with auth keys and a grpc.listen entry; not started.
    Returns (server, grpc_port)."""
    gport = tf.free_port()
    srv = tf.TalasServer(workdir, [library_dir], workers=workers)
    grpc_listen = ["grpc:", "  listen:", "    - host: 127.0.0.1", f"      port: {gport}"]
    if tls:
        grpc_listen.append(f"      tls: {{certificate: {tf._q(tls[0])}, key: {tf._q(tls[1])}}}")
    text = srv.config_text().replace("auth:\n  required: false\n", auth_yaml(workdir, sign))
    assert "backend_key_file" in text
    srv.write_config(text=text + "\n".join(grpc_listen) + "\n")
    return srv, gport


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def rfc3339_to_epoch(s):
    assert RFC3339.match(s), f"expires_at {s!r} is not RFC 3339 UTC"
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture(scope="module")
def g(tmp_path_factory, library_dir, library):
    work = tmp_path_factory.mktemp("grpc")
    grpc, pb, pbg = grpc_modules(work / "stubs")
    srv, gport = grpc_server(work / "talas", library_dir)
    try:
        srv.start(wait_scan=True)
        track = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])
        assert track is not None
        chan = grpc.insecure_channel(f"127.0.0.1:{gport}")
        yield type("G", (), dict(grpc=grpc, pb=pb, pbg=pbg, srv=srv, port=gport, chan=chan,
                                  stub=pbg.StreamServiceStub(chan), track=track,
                                  data=library["mp3"].read_bytes()))
        chan.close()
    finally:
        srv.kill()


def call(g, key=BACKEND_KEY, stub=None, **req):
    md = [("authorization", f"Bearer {key}")] if key is not None else []
    return (stub or g.stub).GetStreamURL(g.pb.GetStreamURLRequest(**req), metadata=md, timeout=10)


def call_code(g, key=BACKEND_KEY, **req):
    with pytest.raises(g.grpc.RpcError) as ei:
        call(g, key, **req)
    return ei.value.code(), ei.value.details()


# ------------------------------------------------------------------ calls

def test_grpc_url_streams_the_file(g):
    before = time.time()
    r = call(g, audio_id=g.track["id"], user_id="user-42", ttl_seconds=120)
    u = urlsplit(r.url_signed)
    assert f"{u.scheme}://{u.netloc}" == g.srv.base_url
    assert u.path == f"/stream/{g.track['id']}"
    assert u.query.startswith("token=")
    exp = rfc3339_to_epoch(r.expires_at)
    assert before + 120 - 2 <= exp <= time.time() + 120 + 1
    claims = b64json(u.query[len("token="):].split(".")[1])
    assert claims["track"] == g.track["id"] and claims["sub"] == "user-42"
    assert claims["exp"] == exp
    st, hdrs, body = g.srv.get(f"{u.path}?{u.query}")
    assert st == 200 and body == g.data
    st, hdrs, body = g.srv.get(f"{u.path}?{u.query}", headers={"Range": "bytes=1000-4999"})
    assert st == 206 and body == g.data[1000:5000]


def test_grpc_default_ttl_and_kinds(g):
    tid = g.track["id"]
    before = time.time()
    r = call(g, audio_id=tid)
    assert before + 300 - 2 <= rfc3339_to_epoch(r.expires_at) <= time.time() + 300 + 1  # auth.default_ttl 5m
    for kind, path in (("stream", f"/stream/{tid}"), ("preview", f"/preview/{tid}"),
                       ("hls", f"/hls/{tid}/master.m3u8")):
        r = call(g, audio_id=tid, kind=kind, ttl_seconds=60)
        u = urlsplit(r.url_signed)
        assert u.path == path, (kind, r.url_signed)
        assert b64json(u.query[len("token="):].split(".")[1]).get("scope") == kind
    r = call(g, audio_id=tid, ttl_seconds=86400)  # auth.max_ttl 24h is allowed
    assert rfc3339_to_epoch(r.expires_at) >= before + 86400 - 2


def test_grpc_unauthenticated(g):
    tid = g.track["id"]
    assert call_code(g, key=None, audio_id=tid)[0] == g.grpc.StatusCode.UNAUTHENTICATED
    assert call_code(g, key="wrong", audio_id=tid)[0] == g.grpc.StatusCode.UNAUTHENTICATED
    assert call_code(g, key=BACKEND_KEY + "x", audio_id=tid)[0] == g.grpc.StatusCode.UNAUTHENTICATED
    md = [("authorization", f"Basic {BACKEND_KEY}")]
    with pytest.raises(g.grpc.RpcError) as ei:
        g.stub.GetStreamURL(g.pb.GetStreamURLRequest(audio_id=tid), metadata=md, timeout=10)
    assert ei.value.code() == g.grpc.StatusCode.UNAUTHENTICATED


def test_grpc_not_found_and_invalid_arguments(g):
    sc = g.grpc.StatusCode
    tid = g.track["id"]
    assert call_code(g, audio_id="AAAAAAAAAAAAAAAA")[0] == sc.NOT_FOUND
    for bad in ("", "../../etc/passwd", tid + "A", tid[:-1], "AAAAAAAAAAAAAAA/"):
        assert call_code(g, audio_id=bad)[0] == sc.INVALID_ARGUMENT, bad
    assert call_code(g, audio_id=tid, kind="video")[0] == sc.INVALID_ARGUMENT
    assert call_code(g, audio_id=tid, kind="STREAM")[0] == sc.INVALID_ARGUMENT
    assert call_code(g, audio_id=tid, ttl_seconds=-1)[0] == sc.INVALID_ARGUMENT
    assert call_code(g, audio_id=tid, ttl_seconds=86401)[0] == sc.INVALID_ARGUMENT
    assert call_code(g, audio_id=tid, ttl_seconds=2**31 - 1)[0] == sc.INVALID_ARGUMENT


# ------------------------------------------ the request's exact bytes
# A message is built by hand here, so that it can hold what grpcio's own
# serializer never writes (a NUL byte inside a string, invalid UTF-8, a
# field sent twice), and sent as it is with request_serializer=None.

def varint(n):
    n &= (1 << 64) - 1  # negative int32: sign-extended to 10 bytes, as protobuf does
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_string(number, value):
    value = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(value)) + value


def pb_varint(number, value):
    return varint(number << 3) + varint(value)


FIELD_NUMBERS = {"audio_id": 1, "user_id": 2, "kind": 3}


def request_bytes(**fields):
    """GetStreamURLRequest on the wire, fields in the order given (ttl_seconds
    as a varint, everything else as a string)."""
    return b"".join(pb_varint(4, v) if k == "ttl_seconds" else pb_string(FIELD_NUMBERS[k], v)
                    for k, v in fields.items())


def raw_call(g, msg):
    rpc = g.chan.unary_unary(METHOD, request_serializer=None,
                             response_deserializer=g.pb.GetStreamURLResponse.FromString)
    return rpc(msg, metadata=[("authorization", f"Bearer {BACKEND_KEY}")], timeout=10)


def raw_call_code(g, msg):
    """The status of a call that must fail: (code, details); a call that
    succeeds fails the test with the URL it got."""
    try:
        r = raw_call(g, msg)
    except g.grpc.RpcError as e:
        return e.code(), e.details()
    pytest.fail(f"minted {r.url_signed} for {msg!r}")


def token_claims(url):
    return b64json(urlsplit(url).query[len("token="):].split(".")[1])


def http_stream_url(g, body):
    return g.srv.get("/api/stream-url", method="POST", body=body,
                     headers={"Authorization": f"Bearer {BACKEND_KEY}",
                              "Content-Type": "application/json"})


def json_string(value):
    """VALUE (bytes) as a JSON string literal: NUL as \u0000, other bytes
    as they are (so invalid UTF-8 stays invalid)."""
    out = b'"'
    for c in value:
        if c == 0:
            out += b"\\u0000"
        elif c in b'"\\':
            out += b"\\" + bytes([c])
        else:
            out += bytes([c])
    return out + b'"'


def good_fields(g):
    return {"audio_id": g.track["id"].encode(), "user_id": b"user-42", "kind": b"stream"}


# Each string field of GetStreamURLRequest with a value that must be
# refused: (why, what the message says, how to spoil the good value).
SPOILERS = [
    ("nul-appended", "NUL", lambda v: v + b"\0zz"),
    ("nul-inside", "NUL", lambda v: v[:2] + b"\0" + v[2:]),
    ("nul-alone", "NUL", lambda v: b"\0"),
    ("bad-utf8", "UTF-8", lambda v: v + b"\xff"),
    ("overlong-nul-utf8", "UTF-8", lambda v: v[:2] + b"\xc0\x80"),
    ("surrogate-utf8", "UTF-8", lambda v: b"\xed\xa0\x80" + v),
    ("too-long", None, lambda v: v + b"x" * (200 - len(v))),
]


@pytest.mark.parametrize("field", ["audio_id", "user_id", "kind"])
@pytest.mark.parametrize("why,says,spoil", SPOILERS, ids=[s[0] for s in SPOILERS])
def test_grpc_refuses_what_http_refuses(g, field, why, says, spoil):
    """A NUL byte, invalid UTF-8 or an over-long value in any string field:
    INVALID_ARGUMENT naming the field, no URL; and POST /api/stream-url
    refuses the same value (400)."""
    fields = good_fields(g)
    fields[field] = spoil(fields[field])
    code, details = raw_call_code(g, request_bytes(**fields))
    assert code == g.grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert details.startswith(field + ": "), details
    if says:
        assert says in details, details
    # the same value through the HTTP API
    body = b"{" + b", ".join(json_string(k.encode()) + b": " + json_string(v) for k, v in fields.items()) + b"}"
    st, _, resp = http_stream_url(g, body)
    assert st == 400 and b"url_signed" not in resp, resp


def test_grpc_nul_does_not_shorten_the_user(g):
    """The attack: user_id "adm\0in" must not mint a token for "adm", nor an
    audio_id with "\0zz" appended one for the shorter id, nor a kind
    "hls\0" an HLS URL."""
    tid = g.track["id"].encode()
    for msg in (request_bytes(audio_id=tid, user_id=b"adm\0in"),
                request_bytes(audio_id=tid + b"\0zz", user_id=b"admin"),
                request_bytes(audio_id=tid, kind=b"hls\0"),
                request_bytes(audio_id=tid, user_id=b"admin\0")):
        code, details = raw_call_code(g, msg)
        assert code == g.grpc.StatusCode.INVALID_ARGUMENT and "NUL" in details, (msg, details)
    # without the NUL, the same bytes are fine
    r = raw_call(g, request_bytes(audio_id=tid, user_id=b"adm"))
    assert token_claims(r.url_signed)["sub"] == "adm"


def test_grpc_exact_bytes_and_limits(g):
    tid = g.track["id"].encode()
    # UTF-8 beyond ASCII reaches the token unchanged
    user = "jörg 🎵 ünïcødé"
    r = raw_call(g, request_bytes(audio_id=tid, user_id=user.encode(), kind=b"preview", ttl_seconds=60))
    claims = token_claims(r.url_signed)
    assert claims["sub"] == user and claims["scope"] == "preview"
    # user_id: 127 bytes are allowed, 128 are not (the limit of POST /api/stream-url)
    r = raw_call(g, request_bytes(audio_id=tid, user_id=b"u" * 127))
    assert token_claims(r.url_signed)["sub"] == "u" * 127
    code, details = raw_call_code(g, request_bytes(audio_id=tid, user_id=b"u" * 128))
    assert code == g.grpc.StatusCode.INVALID_ARGUMENT and details == "user_id: is longer than 127 bytes"
    st, _, _ = http_stream_url(g, json.dumps({"track_id": tid.decode(), "user_id": "u" * 128}).encode())
    assert st == 400
    # a 4-byte character that would cross the limit does not get cut in two
    code, details = raw_call_code(g, request_bytes(audio_id=tid, user_id=b"u" * 125 + "🎵".encode()))
    assert code == g.grpc.StatusCode.INVALID_ARGUMENT and details.startswith("user_id: ")
    # proto3: an empty string is a field left out
    r = raw_call(g, request_bytes(audio_id=tid, user_id=b"", kind=b""))
    claims = token_claims(r.url_signed)
    assert "sub" not in claims and claims["scope"] == "stream"
    code, details = raw_call_code(g, request_bytes(audio_id=b"", user_id=b"u"))
    assert code == g.grpc.StatusCode.INVALID_ARGUMENT and details == "audio_id: required"


def test_grpc_wire_format_rules(g):
    """Fields sent twice: the last counts (protobuf's rule, so the check is
    on the value used); unknown fields are skipped; a message that is not
    a GetStreamURLRequest on the wire is refused without a URL."""
    sc = g.grpc.StatusCode
    tid = g.track["id"].encode()
    r = raw_call(g, pb_string(2, b"admin") + pb_string(1, b"x") + pb_string(2, b"bob") + pb_string(1, tid))
    assert token_claims(r.url_signed)["sub"] == "bob"
    # a good value first does not let a bad last one through
    code, details = raw_call_code(g, pb_string(1, tid) + pb_string(2, b"bob") + pb_string(2, b"adm\0in"))
    assert code == sc.INVALID_ARGUMENT and details.startswith("user_id: "), details
    r = raw_call(g, pb_varint(9, 7) + pb_string(15, b"\0\xff") + b"\x39" + b"\0" * 8 + b"\x45" + b"\0" * 4
                 + pb_string(1, tid) + pb_varint(4, 30))
    assert urlsplit(r.url_signed).path == f"/stream/{tid.decode()}"
    # negative int32 (10-byte varint) is still refused as a lifetime
    code, details = raw_call_code(g, pb_string(1, tid) + pb_varint(4, -5))
    assert code == sc.INVALID_ARGUMENT and details.startswith("ttl_seconds: "), details
    for msg, says in ((pb_string(1, tid) + b"\x12\x10adm", "length past the end"),
                      (pb_string(1, tid) + b"\x12", "truncated varint"),
                      (pb_string(1, tid) + b"\x20" + b"\xff" * 9 + b"\x02", "above 64 bits"),
                      (pb_string(1, tid) + pb_varint(2, 1), "user_id: wrong wire type"),
                      (pb_string(1, tid) + b"\x2b\x2c", "group"),
                      (pb_string(1, tid) + b"\x2e", "wire type"),
                      (b"\x02\x00" + pb_string(1, tid), "field number 0")):
        code, details = raw_call_code(g, msg)
        assert code == sc.INTERNAL and details.startswith("cannot decode GetStreamURLRequest: "), (msg, details)
        assert says in details, (msg, details)
    # and the connection still serves
    assert raw_call(g, request_bytes(audio_id=tid)).url_signed


def test_grpc_unimplemented(g):
    sc = g.grpc.StatusCode
    md = [("authorization", f"Bearer {BACKEND_KEY}")]
    for path in ("/talas.v1.StreamService/GetStreamUrl", "/talas.v1.Other/GetStreamURL",
                 "/grpc.health.v1.Health/Check", "/" + "x" * 300):
        with pytest.raises(g.grpc.RpcError) as ei:
            g.chan.unary_unary(path)(b"", metadata=md, timeout=10)
        assert ei.value.code() == sc.UNIMPLEMENTED, path


def test_grpc_oversized_and_compressed(g):
    sc = g.grpc.StatusCode
    code, _ = call_code(g, audio_id=g.track["id"], user_id="u" * (70 * 1024))
    assert code == sc.RESOURCE_EXHAUSTED
    with pytest.raises(g.grpc.RpcError) as ei:
        g.stub.GetStreamURL(g.pb.GetStreamURLRequest(audio_id=g.track["id"], user_id="u" * 2000),
                            metadata=[("authorization", f"Bearer {BACKEND_KEY}")], timeout=10,
                            compression=g.grpc.Compression.Gzip)
    assert ei.value.code() == sc.UNIMPLEMENTED
    # and the connection still serves
    assert call(g, audio_id=g.track["id"]).url_signed


def test_grpc_many_concurrent_calls(g):
    chans = [g.grpc.insecure_channel(f"127.0.0.1:{g.port}") for _ in range(8)]
    try:
        stubs = [g.pbg.StreamServiceStub(c) for c in chans]
        md = [("authorization", f"Bearer {BACKEND_KEY}")]
        futures = [stubs[i % 8].GetStreamURL.future(
            g.pb.GetStreamURLRequest(audio_id=g.track["id"], user_id=f"user-{i}", ttl_seconds=60),
            metadata=md, timeout=30) for i in range(200)]
        results = [f.result() for f in futures]
    finally:
        for c in chans:
            c.close()
    assert len(results) == 200
    for i, r in enumerate(results):
        claims = b64json(urlsplit(r.url_signed).query[len("token="):].split(".")[1])
        assert claims["sub"] == f"user-{i}" and claims["track"] == g.track["id"]


def test_grpc_failed_precondition_without_signing_key(tmp_path, library_dir):
    grpc, pb, pbg = grpc_modules(tmp_path / "stubs")
    srv, gport = grpc_server(tmp_path / "nosign", library_dir, sign=False, workers=1)
    try:
        srv.start(wait_scan=True)
        tid = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])["id"]
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as chan:
            stub = pbg.StreamServiceStub(chan)
            with pytest.raises(grpc.RpcError) as ei:
                stub.GetStreamURL(pb.GetStreamURLRequest(audio_id=tid),
                                  metadata=[("authorization", f"Bearer {BACKEND_KEY}")], timeout=10)
            assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "sign" in ei.value.details()
            with pytest.raises(grpc.RpcError) as ei:
                stub.GetStreamURL(pb.GetStreamURLRequest(audio_id=tid), timeout=10)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        srv.kill()


# ------------------------------------------------------- hostile clients

def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def read_frames(sock, until, timeout=5):
    """Reads frames until UNTIL(type, flags, payload) is true or the peer
    closes; returns the list of (type, flags, stream, payload) and whether
    the peer closed."""
    buf, frames = b"", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n])
            buf = buf[9 + n:]
            frames.append(f)
            if until(*f[:2], f[3]):
                return frames, False
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return frames, True
        if not chunk:
            return frames, True
        buf += chunk
    return frames, False


def test_grpc_ping_and_protocol_errors(g):
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(PREFACE + frame(4, 0, 0) + frame(6, 0, 0, b"12345678"))
        frames, _ = read_frames(s, lambda t, fl, p: t == 6 and fl & 1)
        assert any(t == 6 and fl & 1 and p == b"12345678" for t, fl, _, p in frames), frames
        # a DATA frame on stream 0 is a connection error: GOAWAY, then close
        s.sendall(frame(0, 0, 0, b"xx"))
        frames, closed = read_frames(s, lambda t, fl, p: False)
        assert any(t == 7 for t, *_ in frames) and closed, frames


def test_grpc_port_survives_garbage_and_http1(g):
    tf.require_tool("curl", "curl")
    pids = g.srv.worker_pids()
    assert len(pids) == 2
    for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100, bytes(range(256)) * 64,
                 PREFACE + b"\xff" * 64, PREFACE[:10], b"\x16\x03\x01\x00\x05hello",
                 PREFACE + frame(1, 4, 1, b"\xff\xff\xff\xff"),          # bad HPACK
                 PREFACE + frame(4, 0, 0, b"\x00\x03\xff\xff\xff\xff"),  # 4G streams: legal
                 PREFACE + frame(8, 0, 0, b"\x7f\xff\xff\xff") * 4):     # window overflow
        out, how = tf.raw_exchange_ex(g.port, data, timeout=3, shutdown_write=True)
        assert not out.startswith(b"HTTP/1.1 200"), data[:20]
    # non-gRPC HTTP/2 requests get plain HTTP errors
    cp = tf.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge",
                 "--max-time", "5", f"http://127.0.0.1:{g.port}/"], check=False)
    assert cp.stdout == "405", cp.stdout
    cp = tf.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge",
                 "--max-time", "5", "-H", "content-type: text/plain", "-d", "x",
                 f"http://127.0.0.1:{g.port}{METHOD}"], check=False)
    assert cp.stdout == "415", cp.stdout
    # a message prefix that announces 4 GiB, and a body cut before its end
    hdrs = (b"\x83\x86\x44" + bytes([len(METHOD)]) + METHOD.encode()      # POST, http, :path
            + b"\x41\x09127.0.0.1"                                          # :authority
            + b"\x5f\x10application/grpc"                                   # content-type
            + b"\x40\x0dauthorization" + bytes([7 + len(BACKEND_KEY)]) + b"Bearer " + BACKEND_KEY.encode())
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 4, 1, hdrs) + frame(0, 0, 1, b"\x00\xff\xff\xff\xff")
                  + frame(1, 4, 3, hdrs) + frame(0, 1, 3, b"\x00\x00\x00\x00\x10ab"))
        frames, _ = read_frames(s, lambda t, fl, p: False, timeout=2)
        grpc_statuses = [p for t, fl, sid, p in frames if t == 1]
        assert len(grpc_statuses) == 2, frames  # two trailers-only answers (HPACK-coded)
    assert g.srv.worker_pids() == pids
    assert call(g, audio_id=g.track["id"]).url_signed


def test_grpc_slow_and_idle_clients_do_not_block(g):
    """Many connections that send half a preface and stay: calls still work."""
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
            s.sendall(PREFACE[:5])
            socks.append(s)
        t0 = time.monotonic()
        assert call(g, audio_id=g.track["id"]).url_signed
        assert time.monotonic() - t0 < 2
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------ TLS, stop

def test_grpc_tls(tmp_path, library_dir):
    tf.require_tool("openssl", "openssl")
    grpc, pb, pbg = grpc_modules(tmp_path / "stubs")
    cert, key = tf.make_tls_cert(tmp_path)
    srv, gport = grpc_server(tmp_path / "tls", library_dir, tls=(cert, key), workers=1)
    try:
        srv.start(wait_scan=True)
        tid = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])["id"]
        creds = grpc.ssl_channel_credentials(root_certificates=Path(cert).read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{gport}", creds) as chan:
            r = pbg.StreamServiceStub(chan).GetStreamURL(
                pb.GetStreamURLRequest(audio_id=tid), metadata=[("authorization", f"Bearer {BACKEND_KEY}")],
                timeout=10)
            assert urlsplit(r.url_signed).path == f"/stream/{tid}"
        # cleartext HTTP/2 on the TLS port is refused, and does not hurt
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as chan:
            with pytest.raises(grpc.RpcError):
                pbg.StreamServiceStub(chan).GetStreamURL(pb.GetStreamURLRequest(audio_id=tid), timeout=3)
        # ALPN without h2 is refused
        cp = tf.run(["openssl", "s_client", "-connect", f"127.0.0.1:{gport}", "-alpn", "http/1.1"],
                    check=False, input="", timeout=20)
        assert "ALPN protocol: http/1.1" not in cp.stdout
        assert srv.worker_pids()
    finally:
        srv.kill()


def test_grpc_graceful_stop(tmp_path, library_dir):
    """SIGTERM with an open gRPC channel: GOAWAY, the connection ends, and the
    master exits well before shutdown_timeout (10 s)."""
    grpc, pb, pbg = grpc_modules(tmp_path / "stubs")
    srv, gport = grpc_server(tmp_path / "stop", library_dir, workers=1)
    try:
        srv.start(wait_scan=True)
        tid = srv.track_by_title(tf.LIBRARY_TRACKS["mp3"][1])["id"]
        chan = grpc.insecure_channel(f"127.0.0.1:{gport}")
        stub = pbg.StreamServiceStub(chan)
        md = [("authorization", f"Bearer {BACKEND_KEY}")]
        assert stub.GetStreamURL(pb.GetStreamURLRequest(audio_id=tid), metadata=md, timeout=10).url_signed
        # a raw connection that stays open too
        raw = socket.create_connection(("127.0.0.1", gport), timeout=5)
        raw.sendall(PREFACE + frame(4, 0, 0))
        read_frames(raw, lambda t, fl, p: t == 4 and not fl & 1)
        t0 = time.monotonic()
        assert srv.stop(timeout=15) == 0
        assert time.monotonic() - t0 < 5
        frames, closed = read_frames(raw, lambda t, fl, p: False, timeout=2)
        assert any(t == 7 for t, *_ in frames) and closed, frames
        raw.close()
        chan.close()
    finally:
        srv.kill()
