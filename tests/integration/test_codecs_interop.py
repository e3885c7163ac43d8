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
