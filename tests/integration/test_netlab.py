"""The NAT lab itself (fixtures/netlab.py): does each NAT mode behave as claimed?

Measured from inside the lab with UDP "what is my address" servers on three ports of the
wan: a cone gateway (MASQUERADE) keeps the inside port for every destination, a symmetric
one (MASQUERADE --random) gives each destination its own random port; UDP hole punching
between site and viewer works through two cone NATs and not through two symmetric ones.
The teardown leaves no namespace behind.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from fixtures.netlab import (NETNS_DIR, EchoServer, hole_punch, netlab_factory,  # noqa: F401
                             probe_mapping)


def servers(lab, n=3):
    return [EchoServer(lab) for _ in range(n)]


@pytest.mark.parametrize("mode", ["cone", "symmetric"])
def test_nat_mapping_behaviour(netlab_factory, mode):
    lab = netlab_factory(site_nat=mode, viewer_nat=mode)
    srv = servers(lab)
    try:
        for role, gw in (("site", "sgw"), ("viewer", "vgw")):
            p = probe_mapping(lab, role, srv)
            mapped = p["mapped"]
            assert all(mapped), (role, p)
            # the wan sees the gateway's outside address, never the private one
            assert {m[0] for m in mapped} == {lab.gw_ip[gw]}, (role, p)
            ports = [m[1] for m in mapped]
            if mode == "cone":
                assert ports == [p["local"][1]] * len(srv), (role, p)
            else:
                assert len(set(ports)) == len(srv), (role, p)
        # the NAT rule did the work (its packet counter moved), --random only when symmetric
        rule = [ln for ln in lab.iptables_counters("sgw").splitlines() if "MASQUERADE" in ln]
        assert len(rule) == 1 and int(rule[0].split()[0]) > 0, rule
        assert ("random" in rule[0]) == (mode == "symmetric"), rule
        # nothing leaves the lab: a gateway has no route beyond the wan
        r = lab.run("sgw", ["ip", "route", "get", "192.0.2.2"], check=False)
        assert r.returncode != 0 and "unreachable" in r.stderr, r
    finally:
        for s in srv:
            s.close()


@pytest.mark.parametrize("mode,works", [("cone", True), ("symmetric", False)])
def test_hole_punching(netlab_factory, mode, works):
    lab = netlab_factory(site_nat=mode, viewer_nat=mode)
    srv = servers(lab, 1)
    try:
        res = hole_punch(lab, srv)
    finally:
        srv[0].close()
    got = res["received"]
    if works:
        assert got["site"] and got["viewer"], res
        # from the peer's mapped address, i.e. straight through both NATs
        assert got["site"][-1][1] == res["mapped"]["viewer"], res
        assert got["viewer"][-1][1] == res["mapped"]["site"], res
    else:
        assert not got["site"] and not got["viewer"], res


def test_teardown_removes_everything(netlab_factory):
    lab = netlab_factory()
    names = list(lab.ns.values())
    assert all(os.path.exists(os.path.join(NETNS_DIR, n)) for n in names)
    lab.destroy()
    assert not any(os.path.exists(os.path.join(NETNS_DIR, n)) for n in names)


def test_stale_labs_of_dead_runs_are_swept(netlab_factory):
    from fixtures.netlab import PREFIX, sweep_stale

    lab = netlab_factory()  # ours: kept, its pid is alive
    dead = int(open("/proc/sys/kernel/pid_max").read()) + 1  # no process can have it
    name = f"{PREFIX}{dead}-0000-wan"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in sweep_stale()
        assert not os.path.exists(os.path.join(NETNS_DIR, name))
        assert all(os.path.exists(os.path.join(NETNS_DIR, n)) for n in lab.ns.values())
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
