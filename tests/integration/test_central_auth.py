"""canopy-central's authentication: passwords, lockout, tokens and sessions, from outside.

The real binary on a fresh database for each test (``central_factory``), with short
lockout, token and idle settings where a test needs them:

* password policy on every path that sets a password (length, character classes, user name);
* lockout per account and per source address (the 429 is the same for both and comes before
  the password is checked; lockouts end and failures outside the window do not count);
* the audit rows of logins (client type, user, source address, result and reason);
* access tokens (EdDSA JWT checked against the signing key central keeps in the database,
  lifetime, forged and expired tokens refused), refresh rotation, logout and revocation,
  the per-role session limit, idle expiry, password changes and disabled accounts;
* integrator API tokens: scopes narrow the owner's rights and never widen them; revoked,
  expired and disabled-owner tokens are refused.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fixtures.central import ADMIN_PASSWORD, Api, Central

PASSWORD = "Str0ng-Passw0rd!"
OTHER_PASSWORD = "An0ther-Secret#"
OPERATOR = "00000000-0000-0000-0000-00000000a002"


def client(c: Central, token: str | None = None) -> Api:
    return Api(c.url, token, verify=c.ca_file if c.daemon.tls else True)


def login(c: Central, username: str, password: str = PASSWORD, client_type: str = "test") -> Api:
    a = client(c)
    r = a.login(username, password, client_type=client_type)
    assert r.status_code == 200, f"login {username}: {r.status_code} {r.text}"
    a.session_id = r.json()["session_id"]
    a.login_body = r.json()
    return a


def logout(api: Api) -> None:
    """POST /auth/logout: 204, the session ends (a body-less POST runs once)."""
    r = api.post("/auth/logout")
    assert r.status_code == 204, r.text


def try_login(c: Central, username: str, password: str, client_type: str = "test"):
    return client(c).post("/auth/login", {"username": username, "password": password,
                                          "client_type": client_type})


def admin(c: Central) -> Api:
    return login(c, "admin", ADMIN_PASSWORD)


def make_user(adm: Api, username: str, password: str = PASSWORD, role: str | None = OPERATOR,
              **extra) -> dict:
    user = adm.ok("POST", "/users", {"username": username, "password": password, **extra}, status=201)
    if role:
        adm.ok("POST", "/grants", {"user_id": user["id"], "role_id": role}, status=201)
    return user


def sql(pg, c: Central, query: str, *args):
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def in_days(days: float) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- password policy -------------------------------------------------------------------------

POLICY_CASES = [
    # (username, password, None if accepted else the reason given)
    ("carol", "Ab1!xyz", "password must be 8 to 64 characters long (has 7)"),
    ("carol", "Aa1!" * 16 + "x", "password must be 8 to 64 characters long (has 65)"),
    ("carol", "abcdefgh1234", "password must use at least 3 of: lower case, upper case, digits, "
                              "other characters (uses 2)"),
    ("carol", "ABCDEFGH-+!?", "password must use at least 3 of: lower case, upper case, digits, "
                              "other characters (uses 2)"),
    ("carol", "my-CAROL-2024", "password must not contain the user name"),
    ("carol", "Ab1!xyzw", None),                      # 8 characters, 4 classes
    ("carol", "Aa1!" * 16, None),                     # 64 characters
    ("carol", "pässwörd-42", None),                   # lower, digit, other (non-ASCII letters count)
    ("al", "al-Secret-1", None),                      # names under 3 characters are not checked
]


@pytest.mark.parametrize("username,password,reason", POLICY_CASES,
                         ids=[f"{u}:{len(p)}:{'ok' if r is None else r[:30]}" for u, p, r in POLICY_CASES])
def test_password_policy_on_user_create(central_factory, username, password, reason):
    c = central_factory()
    adm = admin(c)
    r = adm.post("/users", {"username": username, "password": password})
    if reason is None:
        assert r.status_code == 201, r.text
        login(c, username, password)
    else:
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == reason
        assert password not in r.text
        assert [u["username"] for u in adm.ok("GET", "/users")["items"]] == ["admin"]


def test_password_policy_on_every_path(central_factory):
    c = central_factory()
    adm = admin(c)
    user = make_user(adm, "dave")
    too_weak = "dave-Pass-1"  # contains the user name
    # changing a password: the policy knows the existing user name
    r = adm.patch(f"/users/{user['id']}", {"password": too_weak})
    assert (r.status_code, r.json()["detail"]) == (400, "password must not contain the user name")
    # a user changing their own
    dave = login(c, "dave")
    r = dave.patch(f"/users/{user['id']}", {"password": "short1A"})
    assert r.status_code == 400 and "8 to 64 characters" in r.json()["detail"]
    # a new tenant's first administrator
    r = adm.post("/tenants", {"name": "t2", "username": "erin", "password": "Erin-is-me-1"})
    assert (r.status_code, r.json()["detail"]) == (400, "password must not contain the user name")
    assert [t["name"] for t in adm.ok("GET", "/tenants")["items"]] == ["system"]
    # the refused changes changed nothing: the old password still works
    login(c, "dave")
    adm.ok("PATCH", f"/users/{user['id']}", {"password": OTHER_PASSWORD})
    login(c, "dave", OTHER_PASSWORD)
    assert try_login(c, "dave", PASSWORD).status_code == 401


# ---- lockout -----------------------------------------------------------------------------------

def test_lockout_per_account_and_per_address(central_factory):
    c = central_factory(lockout_failures=3, lockout_addr_failures=6, lockout_minutes=1)
    adm = admin(c)
    for name in ("u1", "u2", "u3"):
        make_user(adm, name)

    for _ in range(3):
        assert try_login(c, "u1", "Wrong-Passw0rd").status_code == 401
    locked_account = try_login(c, "u1", PASSWORD)  # the right password, after 3 failures
    assert locked_account.status_code == 429, locked_account.text
    assert try_login(c, "U1", PASSWORD).status_code == 429  # user names are case-insensitive

    # only the account is locked: another account from the same address logs in
    login(c, "u2")

    # three more failures from this address (6 in all) lock the address
    for name in ("u3", "u3", "nobody"):
        assert try_login(c, name, "Wrong-Passw0rd").status_code == 401
    locked_address = try_login(c, "u2", PASSWORD)
    assert locked_address.status_code == 429, locked_address.text
    assert try_login(c, "admin", ADMIN_PASSWORD).status_code == 429

    # the same answer whichever lock applies: it does not tell which
    assert locked_account.json() == locked_address.json()
    assert locked_account.json()["detail"] == "too many failed logins; try again in up to 1 minutes"
    assert locked_account.headers["content-type"] == locked_address.headers["content-type"]

    # sessions that exist go on working; the tenant's audit log shows every refusal
    rows = adm.ok("GET", "/audit", params={"action": "login", "limit": 100})["items"]
    denied = [r for r in rows if r["result"] == "denied"]
    users = {u["username"]: u["id"] for u in adm.ok("GET", "/users")["items"]}
    assert sorted((r["actor"], r["actor_id"], r["detail"]["reason"]) for r in denied) == [
        ("U1", users["u1"], "locked"), ("admin", users["admin"], "locked"),
        ("u1", users["u1"], "locked"), ("u2", users["u2"], "locked")]
    failed = [r for r in rows if r["result"] == "failed"]
    assert sorted(r["actor"] for r in failed) == ["u1", "u1", "u1", "u3", "u3"]
    assert all(r["detail"] == {"reason": "bad credentials"} for r in failed)


def test_lockout_ends_and_counts_only_recent_failures(central_factory, pg):
    c = central_factory(lockout_failures=2, lockout_addr_failures=1000, lockout_minutes=1)
    adm = admin(c)
    make_user(adm, "frank")
    make_user(adm, "gina")

    # a good login clears the account's failures
    assert try_login(c, "frank", "Wrong-Passw0rd").status_code == 401
    login(c, "frank")
    assert try_login(c, "frank", "Wrong-Passw0rd").status_code == 401
    login(c, "frank")

    # failures older than the window (lockout_minutes) do not count
    assert try_login(c, "gina", "Wrong-Passw0rd").status_code == 401
    sql(pg, c, "UPDATE login_failures SET first_at = now() - interval '2 minutes' WHERE key = 'user:gina'")
    assert try_login(c, "gina", "Wrong-Passw0rd").status_code == 401
    login(c, "gina")

    # a lock lasts lockout_minutes: moved into the past, it is over
    for _ in range(2):
        assert try_login(c, "frank", "Wrong-Passw0rd").status_code == 401
    assert try_login(c, "frank", PASSWORD).status_code == 429
    (until,), = sql(pg, c, "SELECT extract(epoch FROM locked_until - now()) FROM login_failures "
                           "WHERE key = 'user:frank'")
    assert 50 < until <= 60
    sql(pg, c, "UPDATE login_failures SET locked_until = now() - interval '1 second' "
               "WHERE key = 'user:frank'")
    login(c, "frank")


# ---- login audit ---------------------------------------------------------------------------------

def test_logins_are_audited(central_factory, pg):
    c = central_factory()
    adm = admin(c)
    user = make_user(adm, "hank")
    hank = login(c, "hank", client_type="console")
    assert try_login(c, "hank", "Wrong-Passw0rd", client_type="mobile").status_code == 401
    assert try_login(c, "ghost", "Wrong-Passw0rd", client_type="mobile").status_code == 401
    r = client(c).post("/auth/login", {"username": "hank", "password": PASSWORD})
    assert r.status_code == 200

    rows = [r for r in adm.ok("GET", "/audit", params={"action": "login"})["items"]
            if r["actor"] == "hank"]
    got = [(r["result"], r["client_type"], r["actor_id"], r["source_addr"], r["object_id"], r["detail"])
           for r in reversed(rows)]  # oldest first
    assert got == [
        ("ok", "console", user["id"], "127.0.0.1", user["id"], {"session": hank.session_id}),
        ("failed", "mobile", user["id"], "127.0.0.1", user["id"], {"reason": "bad credentials"}),
        ("ok", "api", user["id"], "127.0.0.1", user["id"], {"session": r.json()["session_id"]}),
    ]
    # a name that is no user: no tenant sees it, but it is recorded
    assert sql(pg, c, "SELECT tenant_id, actor_id, actor_name, client_type, source_addr, result, "
                      "detail->>'reason' FROM audit_log WHERE actor_name = 'ghost'") == \
        [(None, None, "ghost", "mobile", "127.0.0.1", "failed", "unknown user")]
    # and the session carries the client type and address
    s = [s for s in adm.ok("GET", "/sessions")["items"] if s["id"] == hank.session_id]
    assert (s[0]["client_type"], s[0]["source_addr"]) == ("console", "127.0.0.1")
    assert adm.ok("GET", f"/users/{user['id']}")["last_login_at"] is not None


# ---- access tokens ------------------------------------------------------------------------------

def signing_key(pg, c: Central):
    (pem,), = sql(pg, c, "SELECT value FROM central_secrets WHERE name = 'token_signing_key'")
    return serialization.load_pem_private_key(pem.encode(), password=None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("ttl,seconds", [(None, 900), ("60s", 60), ("2m", 120)])
def test_access_token_is_a_short_eddsa_jwt(central_factory, pg, ttl, seconds):
    c = central_factory(**({"access_token_ttl": ttl} if ttl else {}))
    adm = admin(c)
    body = adm.login_body
    assert (body["token_type"], body["expires_in"]) == ("Bearer", seconds)
    assert body["refresh_token"].startswith("cnr_")
    header = jwt.get_unverified_header(adm.token)
    assert header["alg"] == "EdDSA" and header["kid"]
    key = signing_key(pg, c)
    claims = jwt.decode(adm.token, key.public_key(), algorithms=["EdDSA"], issuer="canopy-central")
    me = adm.ok("GET", "/me")
    assert claims["exp"] - claims["iat"] == seconds
    assert abs(claims["iat"] - time.time()) < 30
    assert (claims["sub"], claims["tenant"], claims["sid"], claims["typ"], claims["usr"]) == \
        (me["user"]["id"], me["tenant"]["id"], body["session_id"], "access", "admin")


def test_forged_and_expired_access_tokens_are_refused(central_factory, pg):
    c = central_factory()
    adm = admin(c)
    key = signing_key(pg, c)
    claims = jwt.decode(adm.token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(adm.token)["kid"]

    def call_with(token):
        r = client(c, token).get("/me")
        return r.status_code, r.headers.get("www-authenticate")

    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 1000, "nbf": now - 1000, "exp": now - 60}, key,
                         algorithm="EdDSA", headers={"kid": kid})
    assert call_with(expired) == (401, 'Bearer realm="canopy"')
    # the same claims, signed: accepted (the check above refused the expiry, not the key)
    fresh = jwt.encode({**claims, "iat": now, "nbf": now, "exp": now + 60}, key, algorithm="EdDSA",
                       headers={"kid": kid})
    assert call_with(fresh)[0] == 200
    other = jwt.encode({**claims}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    assert call_with(other)[0] == 401
    head, payload, sig = adm.token.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["usr"] = "root"
    assert call_with(f"{head}.{b64url(json.dumps(tampered).encode())}.{sig}")[0] == 401
    unsigned = b64url(b'{"alg":"none","typ":"JWT"}') + "." + payload + "."
    assert call_with(unsigned)[0] == 401
    # a token for a session that does not exist
    ghost = jwt.encode({**claims, "sid": str(uuid.uuid4())}, key, algorithm="EdDSA", headers={"kid": kid})
    assert call_with(ghost)[0] == 401
    assert call_with("")[0] == 401 and call_with("garbage")[0] == 401
    assert client(c).get("/me").status_code == 401


# ---- refresh, logout, revocation ----------------------------------------------------------------

def test_refresh_rotates_the_refresh_token(central_factory):
    c = central_factory()
    adm = admin(c)
    user = make_user(adm, "ivy")
    ivy = login(c, "ivy")
    first = ivy.refresh_token
    r = client(c).post("/auth/refresh", {"refresh_token": first})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["session_id"] == ivy.session_id
    assert new["refresh_token"] != first and new["access_token"] != ivy.token
    assert r.headers["cache-control"] == "no-store"
    # the old one is spent
    r = client(c).post("/auth/refresh", {"refresh_token": first})
    assert r.status_code == 401, r.text
    assert r.json()["detail"] == "refresh token unknown, used, revoked or expired"
    # the new tokens work, and the new refresh token can be used once
    assert client(c, new["access_token"]).get("/me").status_code == 200
    r = client(c).post("/auth/refresh", {"refresh_token": new["refresh_token"]})
    assert r.status_code == 200
    assert client(c).post("/auth/refresh", {"refresh_token": new["refresh_token"]}).status_code == 401
    assert client(c).post("/auth/refresh", {"refresh_token": "cnr_" + "A" * 43}).status_code == 401
    # one session all along
    sessions = adm.ok("GET", "/sessions", params={"user_id": user["id"]})["items"]
    assert [s["id"] for s in sessions] == [ivy.session_id]


def test_logout_and_revocation_end_sessions_at_once(central_factory):
    c = central_factory()
    adm = admin(c)
    user = make_user(adm, "jack")
    a, b, d = login(c, "jack"), login(c, "jack"), login(c, "jack")

    # logout: this session's access and refresh tokens stop at once, the others go on
    logout(a)
    assert a.get("/me").status_code == 401
    assert client(c).post("/auth/refresh", {"refresh_token": a.refresh_token}).status_code == 401
    assert b.get("/me").status_code == 200

    # an administrator ends one of jack's sessions
    adm.ok("DELETE", f"/sessions/{b.session_id}", status=204)
    r = b.get("/me")
    assert r.status_code == 401
    assert r.json()["detail"] == "session ended (logged out, revoked, expired or idle)"
    assert client(c).post("/auth/refresh", {"refresh_token": b.refresh_token}).status_code == 401
    assert d.get("/me").status_code == 200

    # jack sees and may end his own sessions, not other people's
    mine = d.ok("GET", "/sessions")["items"]
    assert [(s["id"], s["current"]) for s in mine] == [(d.session_id, True)]
    assert d.delete(f"/sessions/{adm.session_id}").status_code == 404
    assert adm.get("/me").status_code == 200
    d.ok("DELETE", f"/sessions/{d.session_id}", status=204)
    assert d.get("/me").status_code == 401
    assert adm.ok("GET", "/sessions", params={"user_id": user["id"]})["total"] == 0
    rows = adm.ok("GET", "/audit")["items"]
    actions = [r["action"] for r in rows if r["result"] == "ok"]
    assert "session.logout" in actions and actions.count("session.revoke") == 2
    # jack's try at the admin's session is in the log as denied, without its id
    denied = [r for r in rows if r["action"] == "session.revoke" and r["result"] == "denied"]
    assert len(denied) == 1 and denied[0]["actor"] == user["username"]
    assert denied[0]["object_id"] == "" and adm.session_id not in json.dumps(denied[0])


def test_session_limit_per_role(central_factory):
    c = central_factory()
    adm = admin(c)
    role = adm.ok("POST", "/roles", {"name": "kiosk", "permissions": ["cameras.read"],
                                     "max_sessions": 2}, status=201)
    user = make_user(adm, "kim", role=role["id"])
    first, second = login(c, "kim"), login(c, "kim")
    r = try_login(c, "kim", PASSWORD)
    assert r.status_code == 409, r.text
    assert r.json()["detail"].startswith("session limit reached: 2 simultaneous sessions allowed")
    logout(first)
    third = login(c, "kim")
    assert try_login(c, "kim", PASSWORD).status_code == 409
    adm.ok("DELETE", f"/sessions/{third.session_id}", status=204)
    login(c, "kim")
    assert second.get("/me").status_code == 200
    # a more generous role wins
    adm.ok("POST", "/grants", {"user_id": user["id"], "role_id": OPERATOR}, status=201)
    login(c, "kim")
    rows = adm.ok("GET", "/audit", params={"action": "login", "result": "denied"})["items"]
    assert [(r["actor"], r["detail"]) for r in rows] == [("kim", {"reason": "session limit"})] * 2


def test_idle_sessions_end(central_factory):
    """session_idle=10s: a session left alone ends (and stops counting against the limit);
    one in use every few seconds lives on."""
    c = central_factory(session_idle="10s")
    adm = admin(c)
    role = adm.ok("POST", "/roles", {"name": "single", "permissions": ["sites.read"],
                                     "max_sessions": 1}, status=201)
    make_user(adm, "lea", role=role["id"])
    idle = login(c, "lea")
    assert try_login(c, "lea", PASSWORD).status_code == 409
    busy = login(c, "admin", ADMIN_PASSWORD)
    start = time.monotonic()
    while time.monotonic() - start < 11.5:
        assert busy.get("/me").status_code == 200, "a session in use expired"
        time.sleep(2.5)
    r = idle.get("/me")
    assert r.status_code == 401, r.text
    assert client(c).post("/auth/refresh", {"refresh_token": idle.refresh_token}).status_code == 401
    assert busy.get("/me").status_code == 200
    assert busy.ok("POST", "/auth/refresh", {"refresh_token": busy.refresh_token}, token="")
    login(c, "lea")  # the idle session no longer holds the only slot


# ---- password changes and disabled accounts -------------------------------------------------------

def test_password_change_ends_the_other_sessions(central_factory):
    c = central_factory()
    adm = admin(c)
    user = make_user(adm, "mia")
    here, there = login(c, "mia"), login(c, "mia")
    here.ok("PATCH", f"/users/{user['id']}", {"display_name": "Mia"})
    assert there.get("/me").status_code == 200  # only a password change ends sessions

    here.ok("PATCH", f"/users/{user['id']}", {"password": OTHER_PASSWORD})
    assert here.get("/me").status_code == 200  # the session that changed it goes on
    assert there.get("/me").status_code == 401
    assert client(c).post("/auth/refresh", {"refresh_token": there.refresh_token}).status_code == 401
    assert try_login(c, "mia", PASSWORD).status_code == 401
    again = login(c, "mia", OTHER_PASSWORD)

    # changed by an administrator: every session of the user ends
    adm.ok("PATCH", f"/users/{user['id']}", {"password": PASSWORD})
    assert here.get("/me").status_code == 401 and again.get("/me").status_code == 401
    assert adm.get("/me").status_code == 200
    login(c, "mia")


def test_disabled_users_cannot_log_in(central_factory):
    c = central_factory()
    adm = admin(c)
    role = adm.ok("POST", "/roles", {"name": "integrator", "permissions": ["sites.read", "tokens.write"]},
                  status=201)
    user = make_user(adm, "ned", role=role["id"])
    ned = login(c, "ned")
    token = ned.ok("POST", "/api-tokens", {"name": "k", "scopes": ["sites.read"],
                                           "expires_at": in_days(10)}, status=201)["token"]
    assert client(c, token).get("/sites").status_code == 200

    adm.ok("PATCH", f"/users/{user['id']}", {"disabled": True})
    assert ned.get("/me").status_code == 401
    assert client(c).post("/auth/refresh", {"refresh_token": ned.refresh_token}).status_code == 401
    assert client(c, token).get("/sites").status_code == 401
    r = try_login(c, "ned", PASSWORD)
    assert r.status_code == 401
    assert r.json() == try_login(c, "ned", "Wrong-Passw0rd").json()  # says nothing more
    # users cannot re-enable themselves (they cannot even log in), administrators can
    adm.ok("PATCH", f"/users/{user['id']}", {"disabled": False})
    login(c, "ned")
    assert client(c, token).get("/sites").status_code == 200
    # and nobody can disable or delete themself without users.write
    assert login(c, "ned").patch(f"/users/{user['id']}", {"disabled": True}).status_code == 403


# ---- integrator API tokens ----------------------------------------------------------------------

def test_api_token_scopes_narrow_the_owner(central_factory, pg):
    c = central_factory()
    adm = admin(c)
    site = adm.ok("POST", "/sites", {"name": "s"}, status=201)
    made = adm.ok("POST", "/api-tokens", {"name": "reader", "scopes": ["sites.read"],
                                          "expires_at": in_days(30)}, status=201)
    assert made["token"].startswith("cnt_") and made["scopes"] == ["sites.read"]
    assert "token" not in adm.ok("GET", f"/api-tokens/{made['id']}")  # shown once
    tok = client(c, made["token"])

    assert [s["id"] for s in tok.ok("GET", "/sites")["items"]] == [site["id"]]
    assert tok.ok("GET", "/me")["user"]["username"] == "admin"  # acts as its owner
    for method, path, body, perm in (
            ("POST", "/sites", {"name": "t"}, "sites.write"),
            ("GET", "/cameras", None, "cameras.read"),
            ("GET", "/users", None, "users.read"),
            ("POST", "/api-tokens", {"name": "k", "scopes": ["sites.read"], "expires_at": in_days(1)},
             "tokens.write"),
            ("GET", "/sessions", None, "users.read"),
            ("DELETE", f"/sessions/{adm.session_id}", None, "users.write"),
            ("POST", "/tenants", {"name": "t", "username": "tt", "password": PASSWORD}, "tenants.manage")):
        r = tok.call(method, path, json=body)
        assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["detail"] == f"this API token's scopes do not include '{perm}'"
    assert adm.get("/me").status_code == 200  # the admin's session was not ended through the token
    assert adm.ok("GET", "/sites")["total"] == 1

    # scopes never widen: an operator's token with sites.write still cannot write sites
    role = adm.ok("POST", "/roles", {"name": "ops", "permissions": ["sites.read", "tokens.write"]},
                  status=201)
    make_user(adm, "olga", role=role["id"])
    olga = login(c, "olga")
    wide = olga.ok("POST", "/api-tokens", {"name": "wide", "scopes": ["sites.read", "sites.write"],
                                           "expires_at": in_days(1)}, status=201)["token"]
    r = client(c, wide).post("/sites", {"name": "t"})
    assert (r.status_code, r.json()["detail"]) == (403, "needs permission sites.write on the whole tenant")

    # the token's calls are audited as its owner's, with client type api-token
    writer = adm.ok("POST", "/api-tokens", {"name": "writer", "scopes": ["sites.write"],
                                            "expires_at": in_days(1)}, status=201)
    created = client(c, writer["token"]).ok("POST", "/sites", {"name": "by token"}, status=201)
    row = adm.ok("GET", "/audit", params={"object_id": created["id"]})["items"][0]
    assert (row["actor"], row["client_type"], row["action"]) == ("admin", "api-token", "site.create")
    assert adm.ok("GET", f"/api-tokens/{writer['id']}")["last_used_at"] is not None

    # revoked: refused at once
    adm.ok("DELETE", f"/api-tokens/{made['id']}", status=204)
    r = tok.get("/sites")
    assert (r.status_code, r.json()["detail"]) == (401, "API token unknown, expired or revoked")
    assert adm.ok("GET", f"/api-tokens/{made['id']}")["revoked_at"] is not None
    # expired (no API makes one: its expiry must lie ahead): refused
    sql(pg, c, "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s", writer["id"])
    assert client(c, writer["token"]).get("/sites").status_code == 401
    assert client(c, "cnt_" + "A" * 43).get("/sites").status_code == 401


def test_api_token_requests_are_checked(central_factory):
    adm = admin(central_factory())
    for body, why in (
            ({"name": "k", "scopes": ["no.such"], "expires_at": in_days(1)},
             "unknown scope no.such (scopes are permission names)"),
            ({"name": "k", "scopes": ["sites.read"], "expires_at": in_days(-1)}, "expires_at is in the past"),
            ({"name": "k", "scopes": ["sites.read"], "expires_at": in_days(400)},
             "expires_at is more than a year away")):
        r = adm.post("/api-tokens", body)
        assert (r.status_code, r.json()["detail"]) == (400, why)
    assert adm.ok("GET", "/api-tokens")["total"] == 0
