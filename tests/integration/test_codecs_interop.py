"""Our token and envelope codecs checked against independent implementations (PyJWT, jsonschema)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fixtures.daemons import BIN_DIR, REPO

CODEC = BIN_DIR / "canopy-codec"
SCHEMA = json.loads((REPO / "schemas" / "uplink-envelope.schema.json").read_text())


def codec(*args, stdin: str):
    return subprocess.run([str(CODEC), *args], input=stdin, capture_output=True, text=True,
                          timeout=10)


@pytest.fixture
def keys(tmp_path):
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    r = subprocess.run([str(CODEC), "keygen", str(priv), str(pub)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return priv, pub


def claims(**over):
    now = int(time.time())
    c = {"sub": "user:alice", "tenant": "t-acme", "jti": "j-1", "scope": "camera:view",
         "iat": now, "nbf": now, "exp": now + 900}
    c.update(over)
    return c


def test_our_token_verifies_with_pyjwt(keys):
    priv, pub = keys
    r = codec("jwt-sign", str(priv), stdin=json.dumps(claims(archive_depth_s=3600)))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "JWT"}
    decoded = jwt.decode(token, pub.read_bytes(), algorithms=["EdDSA"])
    assert decoded["sub"] == "user:alice"
    assert decoded["tenant"] == "t-acme"
    assert decoded["archive_depth_s"] == 3600
    # And PyJWT refuses it with another key: the signature is real.
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["EdDSA"])


def test_pyjwt_token_verifies_with_ours(keys):
    priv, pub = keys
    key = serialization.load_pem_private_key(priv.read_bytes(), password=None)
    token = jwt.encode(claims(), key, algorithm="EdDSA")
    r = codec("jwt-verify", str(pub), stdin=token)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["jti"] == "j-1"


@pytest.mark.parametrize("alg,keyfn", [
    # The classic attack: the verifier's public key used as an HMAC secret.
    ("HS256", lambda pub: serialization.load_pem_public_key(pub.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
    ("none", lambda pub: None),
])
def test_other_algorithms_are_refused(keys, alg, keyfn):
    priv, pub = keys
    token = jwt.encode(claims(), keyfn(pub), algorithm=alg)
    r = codec("jwt-verify", str(pub), stdin=token)
    assert r.returncode == 1
    assert ("not accepted" in r.stderr) or ("empty segment" in r.stderr), r.stderr


def test_expired_and_future_tokens_are_refused(keys):
    priv, pub = keys
    key = serialization.load_pem_private_key(priv.read_bytes(), password=None)
    now = int(time.time())
    expired = jwt.encode(claims(iat=now - 1000, nbf=now - 1000, exp=now - 100), key, algorithm="EdDSA")
    r = codec("jwt-verify", str(pub), stdin=expired)
    assert r.returncode == 1 and "expired" in r.stderr
    future = jwt.encode(claims(nbf=now + 600), key, algorithm="EdDSA")
    r = codec("jwt-verify", str(pub), stdin=future)
    assert r.returncode == 1 and "not valid for another" in r.stderr


def _envelope(**over):
    e = {"v": 1, "type": "event.batch", "id": "e-1", "seq": 3,
         "time": "2026-11-21T08:47:00.123Z", "body": {"events": []}}
    e.update(over)
    return e


# Cases the schema can express; the decoder must agree with jsonschema on every one.
ENVELOPES = [
    _envelope(),
    _envelope(type="heartbeat", body={}),
    _envelope(seq=9007199254740991),
    _envelope(time="2026-11-21T09:47:00+01:00"),
    _envelope(v=2),
    _envelope(type="Event"),
    _envelope(type="a..b"),
    _envelope(type="x" * 65),
    _envelope(id=""),
    _envelope(id="has space"),
    _envelope(id="i" * 65),
    _envelope(seq=-1),
    _envelope(seq=1.5),
    _envelope(seq="3"),
    _envelope(seq=9007199254740992),
    _envelope(body=[]),
    _envelope(body="x"),
    _envelope(extra=True),
    {k: v for k, v in _envelope().items() if k != "body"},
    {k: v for k, v in _envelope().items() if k != "time"},
]


@pytest.mark.parametrize("env", ENVELOPES, ids=[f"case{i}" for i in range(len(ENVELOPES))])
def test_envelope_decoder_agrees_with_schema(env):
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    schema_ok = validator.is_valid(env)
    r = codec("envelope", stdin=json.dumps(env))
    assert (r.returncode == 0) == schema_ok, (env, r.stderr)
    if schema_ok:
        again = json.loads(r.stdout)
        validator.validate(again)
        assert {k: again[k] for k in ("type", "id", "seq", "body")} == \
            {k: env[k] for k in ("type", "id", "seq", "body")}
    else:
        assert r.stderr.startswith("error -1000: envelope")


def test_schema_examples_decode():
    for ex in SCHEMA["examples"]:
        r = codec("envelope", stdin=json.dumps(ex))
        assert r.returncode == 0, r.stderr


# ---- RTP packetisers against GStreamer's depayloaders and decoders ----

try:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
except (ImportError, ValueError):  # pragma: no cover - depends on the host
    Gst = None


def _missing(*elements):
    if Gst is None:
        return ["python3-gi / GStreamer"]
    return [e for e in elements if Gst.ElementFactory.find(e) is None]


def _run(desc: str, timeout_s: float = 60.0) -> list[str]:
    """Runs a pipeline ending in `fakesink name=sink`; returns a digest of every buffer."""
    import hashlib

    pipeline = Gst.parse_launch(desc)
    sink = pipeline.get_by_name("sink")
    frames: list[str] = []
    if sink is not None:
        sink.set_property("signal-handoffs", True)

        def on_handoff(_sink, buf, _pad):
            ok, info = buf.map(Gst.MapFlags.READ)
            assert ok
            frames.append(hashlib.sha1(bytes(info.data)).hexdigest())
            buf.unmap(info)

        sink.connect("handoff", on_handoff)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        int(timeout_s * Gst.SECOND), Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None, f"timeout: {desc}"
    if msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        raise AssertionError(f"{desc}: {err.message} ({dbg})")
    return frames


# (codec, encoder, frames, mtu)
RTP_CASES = [
    ("h264", "x264enc key-int-max=1", 5, 1200),       # all keyframes: FU-A heavy
    ("h264", "x264enc key-int-max=10 bframes=2", 20, 1200),
    ("h264", "x264enc key-int-max=10 option-string=slices=4", 20, 300),  # several slices
    ("h264", "x264enc key-int-max=5 tune=zerolatency", 12, 100),         # tiny MTU
    ("h265", "x265enc key-int-max=10", 20, 1200),
    ("h265", "x265enc key-int-max=5 option-string=slices=2", 10, 200),
]


@pytest.mark.parametrize("codec_name,encoder,nframes,mtu", RTP_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RTP_CASES)])
def test_rtp_packetiser_decodes_with_gstreamer(tmp_path, codec_name, encoder, nframes, mtu):
    """Our packets, read back by rtpstreamdepay + rtphNNNdepay, decode to the same frames
    as the elementary stream itself: one frame per access unit, identical pixels."""
    enc_el = encoder.split()[0]
    missing = _missing(enc_el, f"rtp{codec_name}depay", f"{codec_name}parse",
                       f"avdec_{codec_name}", "rtpstreamdepay", "videotestsrc")
    # deploy/install-deps.sh installs all of them: a missing one is a failure, not a skip.
    assert not missing, "GStreamer elements missing: " + ", ".join(missing)
    es, rtp = tmp_path / f"in.{codec_name}", tmp_path / "out.rtp"
    _run(f"videotestsrc num-buffers={nframes} pattern=ball ! "
         "video/x-raw,width=320,height=240,framerate=25/1 ! "
         f"{encoder} ! video/x-{codec_name},stream-format=byte-stream ! "
         f"filesink location={es}")
    r = subprocess.run([str(CODEC), f"rtp-{codec_name}", str(es), str(rtp), "--mtu", str(mtu)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    aus, packets = int(words[2]), int(words[4])
    assert aus == nframes, r.stdout
    assert packets >= aus

    # Every packet fits the MTU, carries our header, and only the last of an AU is marked.
    data = rtp.read_bytes()
    off, seen, marks = 0, 0, 0
    while off < len(data):
        n = int.from_bytes(data[off:off + 2], "big")
        pkt = data[off + 2:off + 2 + n]
        assert len(pkt) == n and 12 < n <= mtu
        assert pkt[0] == 0x80 and pkt[1] & 0x7f == 96
        marks += pkt[1] >> 7
        seen += 1
        off += 2 + n
    assert seen == packets and marks == aus

    direct = _run(f"filesrc location={es} ! {codec_name}parse ! avdec_{codec_name} ! "
                  "fakesink name=sink sync=false")
    via_rtp = _run(f"filesrc location={rtp} ! application/x-rtp-stream,media=video,"
                   f"clock-rate=90000,encoding-name={codec_name.upper()},payload=96 ! "
                   f"rtpstreamdepay ! rtp{codec_name}depay ! {codec_name}parse ! "
                   f"avdec_{codec_name} ! fakesink name=sink sync=false")
    assert len(direct) == nframes
    assert via_rtp == direct
