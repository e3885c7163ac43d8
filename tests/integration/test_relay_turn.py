"""canopy-relay's TURN server (RFC 8656) against independent clients: coturn's
turnutils_uclient (UDP and TCP, channels and Send indications, client-to-client and via
an echo peer), a small TURN client written here on the standard library only (peer
policy, credentials, nonces, quotas, malformed input), and libnice in canopy-edge
relaying a live view to aiortc.

Contract under test: REST credentials (username "<expiry>:<tenant>/<user>", password
base64(HMAC-SHA1(turn_secret, username))) under the long-term mechanism with nonces;
401 for missing, wrong or expired credentials, 438 for stale nonces; 403 for peers the
policy refuses (loopback, unspecified, link-local, private, their IPv4-mapped and NAT64
forms) unless turn_allow_peers lists them; 486 past turn_user_quota/turn_tenant_quota;
metrics labelled by tenant, never by username.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import zlib

import pytest

from fixtures.edge import camera_entry
from fixtures.netutil import free_port
from fixtures.whep import WhepClient, close_all

SECRET = "north-wind"
MAGIC = 0x2112A442
UCLIENT = shutil.which("turnutils_uclient") or "/usr/bin/turnutils_uclient"
PEER = shutil.which("turnutils_peer") or "/usr/bin/turnutils_peer"

# methods, classes, attributes (RFC 8489 / 8656)
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
A_USERNAME, A_MI, A_ERROR, A_UNKNOWN, A_CHANNEL, A_LIFETIME = 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x0D
A_PEER, A_DATA, A_REALM, A_NONCE, A_RELAYED, A_TRANSPORT = 0x12, 0x13, 0x14, 0x15, 0x16, 0x19
A_MAPPED, A_FINGERPRINT = 0x20, 0x8028


# ---- a minimal, independent STUN/TURN client --------------------------------------------

def rest_credentials(subject: str, ttl_s: int = 600, secret: str = SECRET) -> tuple[str, str]:
    user = f"{int(time.time()) + ttl_s}:{subject}"
    pw = base64.b64encode(hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
    return user, pw


def xor_addr(ip: str, port: int, tid: bytes) -> bytes:
    a = ipaddress.ip_address(ip)
    xport = port ^ (MAGIC >> 16)
    if a.version == 4:
        return struct.pack("!BBH", 0, 1, xport) + (int(a) ^ MAGIC).to_bytes(4, "big")
    mask = struct.pack("!I", MAGIC) + tid
    return struct.pack("!BBH", 0, 2, xport) + bytes(x ^ y for x, y in zip(a.packed, mask))


def unxor_addr(v: bytes, tid: bytes) -> tuple[str, int]:
    port = struct.unpack("!H", v[2:4])[0] ^ (MAGIC >> 16)
    if v[1] == 1:
        return str(ipaddress.IPv4Address(struct.unpack("!I", v[4:8])[0] ^ MAGIC)), port
    mask = struct.pack("!I", MAGIC) + tid
    return str(ipaddress.IPv6Address(bytes(x ^ y for x, y in zip(v[4:20], mask)))), port


def attr(t: int, v: bytes) -> bytes:
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def encode(method: int, cls: int, attrs: list, tid: bytes, key: bytes | None = None,
           fingerprint: bool = False) -> bytes:
    mtype = ((method & 0xF) | (method & 0x70) << 1 | (method & 0xF80) << 2 |
             (cls & 1) << 4 | (cls & 2) << 7)
    body = b"".join(attr(t, v) for t, v in attrs)
    if key is not None:
        hdr = struct.pack("!HHI", mtype, len(body) + 24, MAGIC) + tid
        body += attr(A_MI, hmac.new(key, hdr + body, hashlib.sha1).digest())
    if fingerprint:
        hdr = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + tid
        crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(A_FINGERPRINT, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), MAGIC) + tid + body


class Msg:
    def __init__(self, data: bytes):
        mtype, mlen, cookie = struct.unpack("!HHI", data[:8])
        assert cookie == MAGIC and mlen + 20 == len(data), data
        self.raw = data
        self.method = (mtype & 0xF) | (mtype & 0xE0) >> 1 | (mtype & 0x3E00) >> 2
        self.cls = (mtype >> 4 & 1) | (mtype >> 7 & 2)
        self.tid = data[8:20]
        self.attrs: list[tuple[int, bytes, int]] = []
        pos = 20
        while pos < len(data):
            t, n = struct.unpack("!HH", data[pos:pos + 4])
            self.attrs.append((t, data[pos + 4:pos + 4 + n], pos))
            pos += 4 + n + (-n % 4)

    def get(self, t: int) -> bytes | None:
        return next((v for at, v, _ in self.attrs if at == t), None)

    @property
    def error(self) -> int | None:
        v = self.get(A_ERROR)
        return v[2] * 100 + v[3] if v else None

    def integrity_ok(self, key: bytes) -> bool:
        for t, v, pos in self.attrs:
            if t == A_MI:
                hdr = self.raw[:2] + struct.pack("!H", pos + 24 - 20) + self.raw[4:20]
                return hmac.compare_digest(
                    hmac.new(key, hdr + self.raw[20:pos], hashlib.sha1).digest(), v)
        return False


class TurnClient:
    """One UDP (or TCP) 5-tuple to the server; long-term auth with REST credentials."""

    def __init__(self, port: int, user: str, password: str, tcp: bool = False,
                 realm: str = "canopy"):
        self.server = ("127.0.0.1", port)
        self.tcp = tcp
        if tcp:
            self.sock = socket.create_connection(self.server, timeout=3)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.settimeout(3)
        self.user, self.password = user, password
        self.realm = realm
        self.key = hashlib.md5(f"{user}:{realm}:{password}".encode()).digest()
        self.nonce: bytes | None = None
        self.relayed: tuple[str, int] | None = None
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data: bytes):
        if self.tcp:
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, self.server)

    def recv_raw(self) -> bytes:
        if not self.tcp:
            return self.sock.recv(65536)
        while True:
            if len(self.buf) >= 4:
                first = self.buf[0] >> 6
                n = struct.unpack("!H", self.buf[2:4])[0]
                total = 20 + n if first == 0 else 4 + n + (-n % 4)
                if len(self.buf) >= total:
                    frame, self.buf = self.buf[:total], self.buf[total:]
                    return frame
            chunk = self.sock.recv(65536)
            assert chunk, "server closed the connection"
            self.buf += chunk

    def recv_msg(self) -> Msg:
        while True:
            data = self.recv_raw()
            if data[0] >> 6 == 0:
                return Msg(data)

    def transact(self, method: int, attrs: list, auth: bool = True, nonce: bytes | None = None,
                 fingerprint: bool = True) -> Msg:
        """One request; answers a 401 challenge once (and a 438 once) with new credentials."""
        for _ in range(3):
            tid = os.urandom(12)
            a = list(attrs)
            if auth and (nonce or self.nonce):
                a += [(A_USERNAME, self.user.encode()), (A_REALM, self.realm.encode()),
                      (A_NONCE, nonce or self.nonce)]
            self.send_raw(encode(method, REQUEST, a, tid,
                                 key=self.key if auth and (nonce or self.nonce) else None,
                                 fingerprint=fingerprint))
            resp = self.recv_msg()
            assert resp.tid == tid and resp.method == method, resp.raw
            if resp.cls == ERROR and resp.error in (401, 438) and auth and nonce is None:
                assert resp.get(A_REALM) == self.realm.encode(), resp.raw
                new = resp.get(A_NONCE)
                assert new, resp.raw
                if self.nonce is not None and resp.error == 401:
                    return resp  # credentials were sent and refused
                self.nonce = new
                continue
            if resp.cls == SUCCESS and auth:
                # our own check of the server's MESSAGE-INTEGRITY and FINGERPRINT
                assert resp.integrity_ok(self.key), f"bad MESSAGE-INTEGRITY in {resp.raw.hex()}"
            if fingerprint:
                assert resp.get(A_FINGERPRINT) is not None, resp.raw
            return resp
        return resp

    def allocate(self) -> Msg:
        r = self.transact(ALLOCATE, [(A_TRANSPORT, bytes([17, 0, 0, 0]))])
        if r.cls == SUCCESS:
            self.relayed = unxor_addr(r.get(A_RELAYED), r.tid)
        return r

    def permission(self, ip: str, port: int = 9) -> Msg:
        return self._with_peer(CREATE_PERMISSION, ip, port, [])

    def channel_bind(self, ip: str, port: int, ch: int) -> Msg:
        return self._with_peer(CHANNEL_BIND, ip, port, [(A_CHANNEL, struct.pack("!HH", ch, 0))])

    def _with_peer(self, method: int, ip: str, port: int, extra: list) -> Msg:
        # XOR-PEER-ADDRESS of an IPv6 peer depends on the transaction id, so the request
        # is built here rather than through transact's loop.
        for _ in range(2):
            tid = os.urandom(12)
            a = [(A_PEER, xor_addr(ip, port, tid))] + extra + [
                (A_USERNAME, self.user.encode()), (A_REALM, self.realm.encode()),
                (A_NONCE, self.nonce)]
            self.send_raw(encode(method, REQUEST, a, tid, key=self.key, fingerprint=True))
            resp = self.recv_msg()
            assert resp.tid == tid
            if resp.error == 438:
                self.nonce = resp.get(A_NONCE)
                continue
            return resp
        return resp

    def send_indication(self, ip: str, port: int, data: bytes):
        tid = os.urandom(12)
        self.send_raw(encode(SEND, INDICATION, [(A_PEER, xor_addr(ip, port, tid)),
                                                (A_DATA, data)], tid))

    def refresh(self, lifetime: int) -> Msg:
        return self.transact(REFRESH, [(A_LIFETIME, struct.pack("!I", lifetime))])


# ---- fixtures ----------------------------------------------------------------------------

def start_relay(daemon_factory, **conf):
    """canopy-relay with TURN on a port it picks itself (read back from its log), so it
    cannot collide with relayed sockets of other servers."""
    conf = {"turn_listen": "127.0.0.1:0", "turn_secret": SECRET, **conf}
    d = daemon_factory("relay", **conf)
    m = re.search(r"TURN on (?:127\.0\.0\.1|\[::1\]):(\d+) ", d.log())
    assert m, d.log()
    d.turn_port = int(m.group(1))
    return d


def metric(d, name: str, **labels) -> float:
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in d.get("/metrics").text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def wait_metric(d, name: str, pred, timeout: float = 5.0, **labels) -> float:
    deadline = time.monotonic() + timeout
    while True:
        v = metric(d, name, **labels)
        if pred(v) or time.monotonic() > deadline:
            return v
        time.sleep(0.2)


def uclient(port: int, *args: str, user: str = "acme/cam1", secret: str = SECRET,
            timeout: float = 60, host: str = "127.0.0.1") -> str:
    """Runs turnutils_uclient; its output (also when it had to be killed at timeout)."""
    cmd = [UCLIENT, "-p", str(port), "-W", secret, "-u", user, *args, host]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return (out.decode(errors="replace") if isinstance(out, bytes) else out) + "\nTIMEOUT"


def uclient_passed(out: str, min_msgs: int) -> bool:
    """Its final tally: every message sent came back, at least min_msgs of them, none lost."""
    m = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
    lost = re.search(r"Total lost packets (\d+)", out)
    return bool(m and lost and int(lost.group(1)) == 0 and int(m[-1][0]) >= min_msgs
                and int(m[-1][1]) == int(m[-1][0]) and "ERROR" not in out)


@pytest.fixture
def echo_peer():
    port = free_port()
    p = subprocess.Popen([PEER, "-p", str(port), "-L", "127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    yield port
    p.terminate()
    p.wait(timeout=5)


# ---- turnutils_uclient -------------------------------------------------------------------

# (flags, messages the run must send and get back: n x m, twice without -c): -y
# client-to-client, -s Send indications instead of channels, -t TCP to the server, -c no
# RTCP allocation (without it, EVEN-PORT with a reservation and RESERVATION-TOKEN are
# exercised).
UCLIENT_CASES = {
    "udp-channels": (["-y", "-n", "30", "-m", "2"], 120),
    "udp-send-indications": (["-y", "-s", "-n", "30", "-m", "2"], 120),
    "udp-no-rtcp-1000-bytes": (["-y", "-c", "-n", "30", "-m", "4", "-l", "1000"], 120),
    "tcp-channels": (["-t", "-y", "-n", "30", "-m", "2"], 120),
    "tcp-send-indications": (["-t", "-y", "-s", "-n", "30", "-m", "2"], 120),
}


@pytest.mark.parametrize("case", list(UCLIENT_CASES))
def test_uclient_passes(daemon_factory, case):
    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8")
    args, want = UCLIENT_CASES[case]
    out = uclient(d.turn_port, *args)
    assert uclient_passed(out, want), out[-3000:]
    # metrics by tenant; the ephemeral username appears nowhere
    assert wait_metric(d, "canopy_turn_relayed_packets_total", lambda v: v >= want,
                       tenant="acme", direction="to_client") >= want
    assert metric(d, "canopy_turn_sessions_total", tenant="acme") >= 2
    text = d.get("/metrics").text
    assert "cam1" not in text and not re.search(r"\d{10}:", text)


@pytest.mark.parametrize("args", [["-x", "-y"], ["-x", "-y", "-t", "-s"]], ids=["udp", "tcp-send"])
def test_uclient_ipv6_with_two_workers(daemon_factory, args):
    # IPv6 relayed addresses (-x asks for them; without it the client wants IPv4: 440),
    # and two workers: the RTCP allocation's reservation may be taken on the other one.
    d = start_relay(daemon_factory, turn_listen="[::1]:0", turn_allow_peers="::1/128",
                    turn_threads=2)
    out = uclient(d.turn_port, *args, "-n", "30", "-m", "4", host="::1")
    assert uclient_passed(out, 120), out[-3000:]
    out = uclient(d.turn_port, "-y", "-n", "5", host="::1", timeout=20)
    assert "440" in out and not uclient_passed(out, 1), out[-2000:]


def test_uclient_through_an_echo_peer(daemon_factory, echo_peer):
    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8")
    out = uclient(d.turn_port, "-e", "127.0.0.1", "-r", str(echo_peer), "-n", "40", "-m", "3")
    assert uclient_passed(out, 120), out[-3000:]
    assert wait_metric(d, "canopy_turn_relayed_bytes_total", lambda v: v >= 12000,
                       tenant="acme", direction="to_peer") >= 12000


def test_uclient_refused_with_default_policy_and_wrong_secret(daemon_factory, echo_peer):
    d = start_relay(daemon_factory)  # default policy: loopback refused
    out = uclient(d.turn_port, "-e", "127.0.0.1", "-r", str(echo_peer), "-n", "5", timeout=30)
    assert not uclient_passed(out, 10), out[-2000:]
    assert metric(d, "canopy_turn_policy_refusals_total") >= 1
    sessions = metric(d, "canopy_turn_sessions_total", tenant="acme")
    out = uclient(d.turn_port, "-y", "-n", "5", secret="not-the-secret", timeout=30)
    assert "Cannot complete Allocation" in out or not uclient_passed(out, 1), out[-2000:]
    assert metric(d, "canopy_turn_auth_failures_total", reason="bad_integrity") >= 1
    assert metric(d, "canopy_turn_sessions_total", tenant="acme") == sessions


# ---- peer policy -------------------------------------------------------------------------

REFUSED = ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.1.1", "10.1.2.3",
           "192.168.0.10", "172.16.5.5", "100.64.0.1", "::", "fe80::1", "fd00::1",
           "64:ff9b::7f00:1", "::ffff:10.0.0.1", "224.0.0.1"]


def test_peer_policy_default_refuses_special_addresses(daemon_factory):
    d = start_relay(daemon_factory)
    c = TurnClient(d.turn_port, *rest_credentials("acme/viewer"))
    assert c.allocate().cls == SUCCESS
    for ip in REFUSED:
        r = c.permission(ip)
        assert r.cls == ERROR and r.error == 403, (ip, r.error)
        assert r.integrity_ok(c.key), ip
        r = c.channel_bind(ip, 5000, 0x4001)
        assert r.cls == ERROR and r.error == 403, (ip, r.error)
    # An ordinary public address is fine (only a permission: nothing is sent there).
    assert c.permission("8.8.8.8").cls == SUCCESS
    assert c.channel_bind("8.8.8.8", 53, 0x4001).cls == SUCCESS
    assert metric(d, "canopy_turn_policy_refusals_total") == 2 * len(REFUSED)
    # A refused peer got no permission: a Send indication to it goes nowhere.
    c.send_indication("127.0.0.1", 9, b"x")
    assert wait_metric(d, "canopy_turn_dropped_total", lambda v: v >= 1) >= 1
    c.close()


def test_peer_policy_allow_and_deny_lists(daemon_factory):
    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8, 10.1.0.0/16",
                    turn_deny_peers="8.8.8.0/24")
    c = TurnClient(d.turn_port, *rest_credentials("acme/viewer"))
    assert c.allocate().cls == SUCCESS
    assert c.permission("127.0.0.1").cls == SUCCESS
    assert c.permission("::ffff:127.0.0.2").cls == SUCCESS  # normalised, then allowed
    assert c.permission("10.1.2.3").cls == SUCCESS
    assert c.permission("10.2.0.1").error == 403
    assert c.permission("::1").error == 403
    assert c.permission("8.8.8.8").error == 403
    assert c.permission("1.1.1.1").cls == SUCCESS
    assert c.permission("2001:db8::1").error == 443  # an IPv4 allocation
    c.close()


def test_relays_between_two_allocations_by_send_and_channel(daemon_factory):
    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8")
    a = TurnClient(d.turn_port, *rest_credentials("acme/a"))
    b = TurnClient(d.turn_port, *rest_credentials("globex/b"), tcp=True)
    assert a.allocate().cls == SUCCESS and b.allocate().cls == SUCCESS
    assert a.permission(*b.relayed).cls == SUCCESS
    assert b.channel_bind(*a.relayed, 0x4abc).cls == SUCCESS
    a.send_indication(*b.relayed, b"hello over send")
    frame = b.recv_raw()  # b bound a channel to a: ChannelData, padded over TCP
    ch, n = struct.unpack("!HH", frame[:4])
    assert ch == 0x4abc and frame[4:4 + n] == b"hello over send" and len(frame) % 4 == 0
    b.send_raw(struct.pack("!HH", 0x4abc, 5) + b"world" + b"\0\0\0")
    m = a.recv_msg()  # a has no channel: a Data indication
    assert m.method == DATA and m.cls == INDICATION
    assert m.get(A_DATA) == b"world" and unxor_addr(m.get(A_PEER), m.tid) == b.relayed
    # unknown channel: dropped
    b.send_raw(struct.pack("!HH", 0x4001, 1) + b"z\0\0\0")
    assert wait_metric(d, "canopy_turn_dropped_total", lambda v: v >= 1) >= 1
    assert wait_metric(d, "canopy_turn_relayed_packets_total", lambda v: v >= 1,
                       tenant="globex", direction="to_peer") == 1
    assert metric(d, "canopy_turn_allocations", tenant="acme") == 1
    # Refresh 0 deletes; then the 5-tuple has nothing (437)
    assert a.refresh(0).cls == SUCCESS
    assert wait_metric(d, "canopy_turn_allocations", lambda v: v == 0, tenant="acme") == 0
    assert a.permission(*b.relayed).error == 437
    b.close()
    assert wait_metric(d, "canopy_turn_allocations", lambda v: v == 0, tenant="globex") == 0
    a.close()


# ---- credentials and nonces ---------------------------------------------------------------

def test_wrong_and_expired_credentials(daemon_factory):
    d = start_relay(daemon_factory)
    user, _ = rest_credentials("acme/viewer")
    c = TurnClient(d.turn_port, user, "d3Jvbmc=")
    r = c.allocate()
    assert r.cls == ERROR and r.error == 401 and r.get(A_MI) is None
    assert metric(d, "canopy_turn_auth_failures_total", reason="bad_integrity") == 1
    c.close()
    c = TurnClient(d.turn_port, *rest_credentials("acme/viewer", ttl_s=-5))
    r = c.allocate()
    assert r.cls == ERROR and r.error == 401
    assert metric(d, "canopy_turn_auth_failures_total", reason="expired") == 1
    c.close()
    c = TurnClient(d.turn_port, *rest_credentials("acme/viewer", secret="other"))
    assert c.allocate().error == 401
    c.close()
    c = TurnClient(d.turn_port, "no-expiry", "x")
    assert c.allocate().error == 401
    assert metric(d, "canopy_turn_auth_failures_total", reason="bad_username") == 1
    c.close()
    # without a secret nothing authenticates
    d2 = start_relay(daemon_factory, turn_secret="")
    c = TurnClient(d2.turn_port, *rest_credentials("acme/viewer"))
    assert c.allocate().error == 401
    assert metric(d2, "canopy_turn_auth_failures_total", reason="no_secret") == 1
    c.close()
    assert metric(d, "canopy_turn_sessions_total", tenant="acme") == 0


def test_stale_nonce(daemon_factory):
    d = start_relay(daemon_factory, turn_nonce_lifetime="1s")
    c = TurnClient(d.turn_port, *rest_credentials("acme/viewer"))
    r = c.transact(BINDING, [], auth=False)
    assert r.cls == SUCCESS and unxor_addr(r.get(A_MAPPED), r.tid)[1] == c.sock.getsockname()[1]
    # first request: 401 with a nonce
    tid = os.urandom(12)
    c.send_raw(encode(ALLOCATE, REQUEST, [(A_TRANSPORT, bytes([17, 0, 0, 0]))], tid))
    first = c.recv_msg()
    assert first.error == 401
    nonce = first.get(A_NONCE)
    time.sleep(2.2)
    r = c.transact(ALLOCATE, [(A_TRANSPORT, bytes([17, 0, 0, 0]))], nonce=nonce)
    assert r.cls == ERROR and r.error == 438 and r.get(A_NONCE) not in (None, nonce)
    assert metric(d, "canopy_turn_auth_failures_total", reason="stale_nonce") == 1
    # a forged nonce is just as stale
    r = c.transact(ALLOCATE, [(A_TRANSPORT, bytes([17, 0, 0, 0]))], nonce=b"f" * 24)
    assert r.error == 438
    # the fresh nonce works
    c.nonce = None
    assert c.allocate().cls == SUCCESS
    c.close()


# ---- quotas, malformed input ---------------------------------------------------------------

def test_user_and_tenant_quotas(daemon_factory):
    d = start_relay(daemon_factory, turn_user_quota=2, turn_tenant_quota=3)
    clients = [TurnClient(d.turn_port, *rest_credentials("acme/one")) for _ in range(3)]
    assert [c.allocate().cls for c in clients[:2]] == [SUCCESS, SUCCESS]
    r = clients[2].allocate()
    assert r.error == 486 and r.integrity_ok(clients[2].key)
    other = TurnClient(d.turn_port, *rest_credentials("acme/two"))
    assert other.allocate().cls == SUCCESS  # tenant at 3 now
    fourth = TurnClient(d.turn_port, *rest_credentials("acme/three"))
    assert fourth.allocate().error == 486
    elsewhere = TurnClient(d.turn_port, *rest_credentials("globex/one"))
    assert elsewhere.allocate().cls == SUCCESS
    assert metric(d, "canopy_turn_quota_refusals_total") == 2
    assert metric(d, "canopy_turn_allocations", tenant="acme") == 3
    # freeing one makes room again
    assert clients[0].refresh(0).cls == SUCCESS
    assert fourth.allocate().cls == SUCCESS
    for c in clients + [other, fourth, elsewhere]:
        c.close()


def test_malformed_input_is_counted_and_harmless(daemon_factory):
    d = start_relay(daemon_factory)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad = [b"", b"\x00", b"\x00\x01\x00\x08" + struct.pack("!I", MAGIC) + b"\0" * 12,
           b"\x00\x01\x00\x04" + struct.pack("!I", MAGIC) + b"\0" * 12 + b"\x00\x06\x00\x40",
           b"\xff" * 40, os.urandom(100)]
    for b in bad:
        s.sendto(b, ("127.0.0.1", d.turn_port))
    # a bad FINGERPRINT is refused too
    good = encode(BINDING, REQUEST, [], os.urandom(12), fingerprint=True)
    s.sendto(good[:-1] + bytes([good[-1] ^ 1]), ("127.0.0.1", d.turn_port))
    assert wait_metric(d, "canopy_turn_malformed_total", lambda v: v >= 5) >= 5
    # unknown comprehension-required attribute: 420 naming it
    c = TurnClient(d.turn_port, *rest_credentials("acme/x"))
    r = c.transact(BINDING, [(0x0031, b"?")], auth=False)
    assert r.error == 420 and r.get(A_UNKNOWN) == b"\x00\x31"
    # TCP: a frame that is neither STUN nor ChannelData closes the connection
    t = socket.create_connection(("127.0.0.1", d.turn_port), timeout=3)
    t.sendall(b"\xc0" * 8)
    assert t.recv(10) == b""
    t.close()
    # still serving
    assert c.allocate().cls == SUCCESS
    c.close()
    s.close()


# ---- libnice (canopy-edge) through our TURN ----------------------------------------------

W, H = 640, 360


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_libnice_media_through_our_turn(daemon_factory, edge_factory, camera_factory, transport):
    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8")
    user, pw = rest_credentials("acme/edge-door")
    cam = camera_factory(width=W, height=H)
    edge = edge_factory([camera_entry(cam, "door")], webrtc_addresses="127.0.0.1",
                        webrtc_turn=f"127.0.0.1:{d.turn_port}", webrtc_turn_transport=transport,
                        webrtc_turn_user=user, webrtc_turn_password=pw, webrtc_relay_only=True)
    edge.wait_state("door", "online")
    c = WhepClient(name="turn-viewer")
    try:
        c.connect(edge.d.base_url, "door", edge.token)
        cands = [ln for ln in c.answer_sdp.splitlines() if ln.startswith("a=candidate:")]
        assert cands and all(" typ relay " in ln for ln in cands), c.answer_sdp
        # the relayed candidate is ours
        assert any(f" 127.0.0.1 " in ln for ln in cands), cands
        c.wait_frames(30, timeout=20)
        assert c.sizes == {(W, H)}
        assert wait_metric(d, "canopy_turn_relayed_bytes_total", lambda v: v > 50000,
                           tenant="acme", direction="to_peer") > 50000
        assert metric(d, "canopy_turn_allocations", tenant="acme") >= 1
    finally:
        close_all([c])


# ---- Chromium through our TURN -------------------------------------------------------------

def test_chromium_relay_only_through_our_turn(daemon_factory, edge_factory, camera_factory,
                                              tmp_path):
    from fixtures.browser import Browser

    d = start_relay(daemon_factory, turn_allow_peers="127.0.0.0/8")
    user, pw = rest_credentials("acme/browser-viewer")
    cam = camera_factory(width=W, height=H)
    edge = edge_factory([camera_entry(cam, "door")], webrtc_addresses="127.0.0.1")
    edge.wait_state("door", "online")
    b = Browser(tmp_path / "browser")
    try:
        page = b.open_whep(edge.d.base_url + "/whep/door", edge.token,
                           ice_servers=[{"urls": [f"turn:127.0.0.1:{d.turn_port}?transport=udp"],
                                         "username": user, "credential": pw}],
                           ice_policy="relay")
        before, after = page.wait_frames_growing(2.0, min_growth=15, timeout=25)
        assert (after["videoWidth"], after["videoHeight"]) == (W, H), after
        # the browser's side of the pair in use is its relayed candidate on our server
        assert after["pair"] and after["pair"]["local"].startswith("relay 127.0.0.1:"), after
        assert wait_metric(d, "canopy_turn_relayed_bytes_total", lambda v: v > 50000,
                           tenant="acme", direction="to_client") > 50000
        assert metric(d, "canopy_turn_sessions_total", tenant="acme") >= 1
        page.stop()
    finally:
        b.close()
