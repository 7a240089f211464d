"""Issue 13: API keys, bearer tokens, the per-container cache, failures, key management, whoami, the audit log."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import db
from chalicelib.auth.authenticator import Authenticator, set_authenticator
from chalicelib.auth.keys import ApiKeyService, prefix_of
from chalicelib.errors import AuthenticationError
from chalicelib.settings import SettingsError, load_settings, reset_settings
from conftest import new_api_key


# --- API keys ------------------------------------------------------------------------------------------
def test_a_key_is_stored_only_as_its_hash_and_found_by_its_prefix(client):
    key = new_api_key("viewer")
    assert key.startswith("cgk_") and len(key) > 50 and prefix_of(key)
    with db.transaction() as cur:
        cur.execute("SELECT * FROM api_keys WHERE prefix = %s", (prefix_of(key),))
        row = cur.fetchone()
    assert row is not None and row["role"] == "viewer" and row["tenant_id"] == "default"
    assert key.split("_")[-1] not in json.dumps({k: str(v) for k, v in row.items()})
    assert client.as_key(key).get("/api/v1/auth/whoami").json["role"] == "viewer"


@pytest.mark.parametrize("headers", [
    lambda key: {"X-API-Key": key},
    lambda key: {"Authorization": f"Bearer {key}"},
    lambda key: {"Authorization": f"bearer {key}"},
])
def test_both_headers_carry_a_key(client, headers):
    key = new_api_key("operator", tenant="acme")
    response = client.as_key(None).get("/api/v1/auth/whoami", headers=headers(key))
    assert response.status_code == 200
    assert response.json["tenant"] == "acme" and response.json["role"] == "operator" and response.json["kind"] == "key"
    assert response.json["principal"].startswith("key:key-")


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-Key": "cgk_nosuchprefix_" + "a" * 43},
    {"X-API-Key": "not-a-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer a.b.c"},
])
def test_missing_or_bad_credentials_are_401_with_a_challenge_and_the_envelope(client, headers):
    response = client.as_key(None).get("/api/v1/clusters", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="clustergenie"')
    assert set(response.json) == {"error"} and response.json["error"] in ("authentication required", "invalid credentials")


def test_a_right_prefix_with_a_wrong_secret_is_401(client):
    key = new_api_key("admin")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert client.as_key(forged).get("/api/v1/clusters").status_code == 401


def test_an_expired_key_is_401(client):
    _, key = ApiKeyService().create(tenant="default", role="admin", name="old", created_by="tests",
                                    expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert client.as_key(key).get("/api/v1/clusters").status_code == 401


def test_revocation_reaches_a_warm_container_within_the_cache_time(client):
    now = [1000.0]
    authenticator = Authenticator(ttl=5.0, clock=lambda: now[0])
    set_authenticator(authenticator)
    key = new_api_key("viewer")
    key_id = client.as_key(key).get("/api/v1/auth/whoami").json["principal"].removeprefix("key:")
    assert client.delete(f"/api/v1/auth/keys/{key_id}").status_code == 200
    now[0] += 4.0  # still within the cache time: the warm container has not looked again
    assert client.as_key(key).get("/api/v1/clusters").status_code == 200
    now[0] += 1.5  # past it: verified again, and refused
    assert client.as_key(key).get("/api/v1/clusters").status_code == 401


def test_revocation_with_the_default_cache_time_takes_effect_in_seconds(client):
    set_authenticator(Authenticator(ttl=0.3))
    key = new_api_key("viewer")
    key_id = client.as_key(key).get("/api/v1/auth/whoami").json["principal"].removeprefix("key:")
    client.delete(f"/api/v1/auth/keys/{key_id}")
    time.sleep(0.35)
    assert client.as_key(key).get("/api/v1/clusters").status_code == 401


def test_a_brute_force_loop_of_wrong_keys_is_rate_limited_per_source_address(client):
    statuses = [client.as_key("cgk_guessguessgu_" + f"{i:043d}").get("/api/v1/clusters").status_code
                for i in range(30)]
    assert statuses[:20] == [401] * 20
    assert 429 in statuses[20:]
    limited = client.as_key("cgk_guessguessgu_" + "x" * 43).get("/api/v1/clusters")
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    # A valid key is not affected: it never fails authentication.
    assert client.get("/api/v1/clusters").status_code == 200


def test_the_database_down_while_verifying_is_503_not_an_open_door(client, monkeypatch):
    key = new_api_key("admin")
    set_authenticator(None)
    monkeypatch.setenv("CG_DB_PORT", "1")  # nothing listens there
    reset_settings()
    db.reset_connection()
    try:
        response = client.as_key(key).get("/api/v1/clusters")
        assert response.status_code == 503 and set(response.json) == {"error"}
    finally:
        monkeypatch.undo()
        reset_settings()
        db.reset_connection()


def test_no_secret_reaches_a_log_line(client, capsys):
    response = client.post("/api/v1/auth/keys", {"role": "viewer", "name": "ci"})
    secret = response.json["secret"]
    client.as_key(secret).get("/api/v1/clusters")
    client.as_key(secret + "x").get("/api/v1/clusters")
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    assert secret.rsplit("_", 1)[-1] not in out.out + out.err


# --- bearer tokens (JWT) --------------------------------------------------------------------------------
@pytest.fixture
def identity_provider(tmp_path, monkeypatch):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    (tmp_path / "idp.pem").write_bytes(pem)
    monkeypatch.setenv("CG_AUTH_JWT_ISSUER", "https://idp.example.test/")
    monkeypatch.setenv("CG_AUTH_JWT_AUDIENCE", "clustergenie")
    monkeypatch.setenv("CG_AUTH_JWT_JWKS_FILE", str(tmp_path / "jwks.json"))
    reset_settings()
    set_authenticator(None)

    def token(**overrides):
        claims = {"iss": "https://idp.example.test/", "aud": "clustergenie", "sub": "alice", "tenant": "acme",
                  "role": "operator", "exp": int(time.time()) + 300, **overrides}
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": "k1"})

    token.pem_path = tmp_path / "idp.pem"
    yield token
    monkeypatch.undo()
    reset_settings()
    set_authenticator(None)


def test_a_valid_token_names_principal_tenant_and_role(client, identity_provider):
    response = client.as_key(None).get("/api/v1/auth/whoami",
                                       headers={"Authorization": f"Bearer {identity_provider()}"})
    assert response.status_code == 200
    assert response.json == {"principal": "token:alice", "tenant": "acme", "role": "operator", "kind": "token", "name": ""}


@pytest.mark.parametrize("overrides", [
    {"iss": "https://evil.example.test/"},
    {"aud": "someone-else"},
    {"exp": int(time.time()) - 10},
    {"role": "superuser"},
    {"tenant": None},
])
def test_a_token_with_a_wrong_claim_is_401(client, identity_provider, overrides):
    token = identity_provider(**overrides)
    response = client.as_key(None).get("/api/v1/clusters", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json == {"error": "invalid credentials"}


def test_a_token_signed_by_another_key_is_401(client, identity_provider):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "https://idp.example.test/", "aud": "clustergenie", "sub": "mallory", "tenant": "acme",
              "role": "admin", "exp": int(time.time()) + 300}
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned):
        response = client.as_key(None).get("/api/v1/clusters", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_a_pem_public_key_verifies_tokens_too(client, identity_provider, monkeypatch):
    monkeypatch.delenv("CG_AUTH_JWT_JWKS_FILE")
    monkeypatch.setenv("CG_AUTH_JWT_PUBLIC_KEY_FILE", str(identity_provider.pem_path))
    reset_settings()
    response = client.as_key(None).get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {identity_provider()}"})
    assert response.status_code == 200 and response.json["tenant"] == "acme"


# --- authentication off: the local stage only -----------------------------------------------------------
def test_authentication_may_be_off_only_on_the_local_stage(monkeypatch):
    monkeypatch.setenv("CG_AUTH_ENABLED", "false")
    for stage in ("prod", "dev", "test"):
        monkeypatch.setenv("CG_ENVIRONMENT", stage)
        with pytest.raises(SettingsError, match="CG_AUTH_ENABLED"):
            load_settings()
    monkeypatch.setenv("CG_ENVIRONMENT", "local")
    assert load_settings().auth_enabled is False
    monkeypatch.delenv("CG_AUTH_ENABLED")
    monkeypatch.setenv("CG_ENVIRONMENT", "prod")
    assert load_settings().auth_enabled is True  # on by default


def test_with_authentication_off_locally_the_original_clients_are_served_unchanged(client, monkeypatch, job_queue):
    """The original's clients send no credentials: on the local stage with authentication off, their calls are
    answered as before, in the v1 shapes of tests/contract/original_v1.py."""
    import jsonschema

    from tests.contract.original_v1 import RESPONSES, V1

    monkeypatch.setenv("CG_AUTH_ENABLED", "false")
    monkeypatch.setenv("CG_ENVIRONMENT", "local")
    reset_settings()
    try:
        anonymous = client.as_key(None)

        def check(method: str, route: str, response) -> None:  # noqa: ANN001
            status, schema = RESPONSES[(method, V1 + route)]
            assert response.status_code == status, response.json
            jsonschema.validate(response.json, schema)

        created = anonymous.post("/api/v1/clusters", {"name": "web", "region": "nyc3"})
        check("POST", "/clusters", created)
        cid = created.json["cluster"]["id"]
        check("GET", "/clusters", anonymous.get("/api/v1/clusters"))
        check("GET", "/clusters/{cluster_id}", anonymous.get(f"/api/v1/clusters/{cid}"))
        check("PUT", "/clusters/{cluster_id}", anonymous.put(f"/api/v1/clusters/{cid}", {"name": "web2"}))
        check("POST", "/jobs", anonymous.post("/api/v1/jobs", {"type": "monitor", "parameters": {"cluster_id": cid}},
                                              headers={"X-User-ID": "script"}))
        check("GET", "/jobs", anonymous.get("/api/v1/jobs"))
        check("GET", "/providers", anonymous.get("/api/v1/providers"))
        check("POST", "/hello", anonymous.post("/api/v1/hello", {"name": "original"}))
        assert anonymous.get("/api/v1/auth/whoami").json["kind"] == "local"
    finally:
        monkeypatch.undo()
        reset_settings()


# --- managing keys ----------------------------------------------------------------------------------------
def test_an_admin_creates_lists_and_revokes_keys_and_the_secret_is_shown_once(client):
    created = client.post("/api/v1/auth/keys", {"role": "operator", "name": "deployer"})
    assert created.status_code == 201
    secret, key = created.json["secret"], created.json["key"]
    assert key["tenant"] == "default" and key["role"] == "operator" and secret.startswith(f"cgk_{key['prefix']}_")
    listed = client.get("/api/v1/auth/keys").json["keys"]
    assert key["id"] in [k["id"] for k in listed]
    assert secret not in json.dumps(listed)
    assert client.as_key(secret).get("/api/v1/clusters").status_code == 200
    revoked = client.delete(f"/api/v1/auth/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json["key"]["revoked_at"]
    set_authenticator(None)  # a fresh container
    assert client.as_key(secret).get("/api/v1/clusters").status_code == 401


@pytest.mark.parametrize("body", [{}, {"role": "root"}, {"role": "viewer", "tenant": "has space"},
                                  {"role": "viewer", "expires_at": "tomorrow"}, {"role": "viewer", "extra": 1}])
def test_a_bad_key_request_is_400(client, body):
    response = client.post("/api/v1/auth/keys", body)
    assert response.status_code == 400 and set(response.json) == {"error"}


def test_a_tenant_admin_manages_only_its_tenant(client):
    acme_admin = client.as_key(new_api_key("admin", tenant="acme"))
    other = client.post("/api/v1/auth/keys", {"role": "viewer", "tenant": "globex"}).json["key"]
    own = acme_admin.post("/api/v1/auth/keys", {"role": "viewer"})
    assert own.status_code == 201 and own.json["key"]["tenant"] == "acme"
    assert acme_admin.post("/api/v1/auth/keys", {"role": "viewer", "tenant": "globex"}).status_code == 403
    assert {k["tenant"] for k in acme_admin.get("/api/v1/auth/keys").json["keys"]} == {"acme"}
    assert acme_admin.delete(f"/api/v1/auth/keys/{other['id']}").status_code == 404
    # The platform admin sees and may revoke every tenant's keys.
    assert {"acme", "globex"} <= {k["tenant"] for k in client.get("/api/v1/auth/keys").json["keys"]}


# --- the audit log --------------------------------------------------------------------------------------
def test_every_mutation_is_audited_and_reads_are_not(client):
    cluster = client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}).json["cluster"]
    client.get(f"/api/v1/clusters/{cluster['id']}")
    client.put(f"/api/v1/clusters/{cluster['id']}", {"name": "web2"})
    client.post("/api/v1/clusters", {"name": ""})  # refused: recorded with its outcome
    client.delete(f"/api/v1/clusters/{cluster['id']}")
    entries = client.get("/api/v1/audit").json["entries"]
    assert [(e["action"], e.get("resource_id"), e["outcome"]) for e in reversed(entries)] == [
        ("POST /api/v1/clusters", cluster["id"], 201),
        ("PUT /api/v1/clusters/{cluster_id}", cluster["id"], 200),
        ("POST /api/v1/clusters", None, 400),
        ("DELETE /api/v1/clusters/{cluster_id}", cluster["id"], 200),
    ]
    whoami = client.get("/api/v1/auth/whoami").json
    assert {e["principal"] for e in entries} == {whoami["principal"]} and {e["tenant"] for e in entries} == {"default"}
    assert all(e["request_id"] and e["occurred_at"] for e in entries)


def test_a_refused_role_is_audited_as_403(client):
    viewer = client.as_key(new_api_key("viewer"))
    assert viewer.post("/api/v1/clusters", {"name": "web", "region": "nyc3"}).status_code == 403
    entries = client.get("/api/v1/audit").json["entries"]
    assert [(e["action"], e["outcome"], e["role"]) for e in entries] == [("POST /api/v1/clusters", 403, "viewer")]


def test_the_audit_log_filters_pages_and_keeps_tenants_apart(client):
    acme = client.as_key(new_api_key("admin", tenant="acme"))
    for name in ("a", "b", "c"):
        client.post("/api/v1/clusters", {"name": name, "region": "nyc3"})
    acme.post("/api/v1/auth/keys", {"role": "viewer"})
    first = client.get("/api/v1/audit?limit=2&tenant=default").json
    assert len(first["entries"]) == 2 and first["next_before_id"]
    rest = client.get(f"/api/v1/audit?limit=2&tenant=default&before_id={first['next_before_id']}").json
    assert len(rest["entries"]) == 1 and "next_before_id" not in rest
    assert {e["tenant"] for e in acme.get("/api/v1/audit").json["entries"]} == {"acme"}
    assert acme.get("/api/v1/audit?tenant=default").status_code == 403
    cluster_id = first["entries"][0]["resource_id"]
    assert [e["resource_id"] for e in client.get(f"/api/v1/audit?resource_id={cluster_id}").json["entries"]] == [cluster_id]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert client.get(f"/api/v1/audit?since={future}").json["entries"] == []
    assert client.get("/api/v1/audit?since=yesterday").status_code == 400


def test_an_unverifiable_key_never_reaches_the_repository_lookup():
    with pytest.raises(AuthenticationError):
        Authenticator().authenticate("neither-a-key-nor-a-token")


def test_the_audit_log_is_append_only_in_the_database(client, migration_db):  # noqa: ANN001
    import pymysql

    client.post("/api/v1/clusters", {"name": "web", "region": "nyc3"})
    # Two layers: the app's user is refused (on the app's schema by issue 18's grants, error 1142; wherever it
    # holds the privilege, by the triggers), and even the schema's owner is refused by the triggers.
    for statement in ("UPDATE audit_log SET outcome = 200", "DELETE FROM audit_log"):
        with pytest.raises(pymysql.err.OperationalError, match="command denied|append-only"):
            with db.transaction() as cur:
                cur.execute(statement)
        with pytest.raises(pymysql.err.OperationalError, match="append-only"):
            with migration_db.cursor() as cur:
                cur.execute(statement)
    assert len(client.get("/api/v1/audit").json["entries"]) == 1


def test_the_public_metrics_serve_no_tenant_data(client, make_cluster):
    cluster = make_cluster()
    client.post("/api/v1/diagnosis/diagnose", {"cluster_id": cluster["id"]})  # the per-cluster limiter's gauge
    client.get(f"/api/v1/clusters/{cluster['id']}")
    scraped = client.as_key(None).get("/metrics")
    assert scraped.status_code == 200
    text = scraped.body.decode() if isinstance(scraped.body, bytes) else scraped.body
    assert "clustergenie_rate_limit_available_tokens" in text
    assert cluster["id"] not in text and "key-" not in text and "cgk_" not in text
