"""chalicelib/lazy_imports.py: each deferred module is the library's own once used, and stays unloaded until then.

Each check runs in a fresh interpreter (this process has long since imported everything) that installs the
finder first, as app.py does.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from chalicelib import lazy_imports

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(code: str, install: bool = True) -> dict:
    """Run `code` in a fresh interpreter (after `lazy_imports.install()` unless told not to); it sets `out`,
    which is returned (through JSON)."""
    prelude = "from chalicelib import lazy_imports\nlazy_imports.install()\n" if install else ""
    script = f"import json, sys\n{prelude}out = {{}}\n{code}\nprint(json.dumps(out))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_redis_asyncio_runs_on_first_use_and_is_redis_pys_own():
    out = run("""
import redis
out["deferred"] = type(sys.modules["redis.asyncio"]).__name__
out["client_loaded"] = "redis.asyncio.client" in sys.modules
r = redis.Redis(host="127.0.0.1", port=1)  # the synchronous client needs none of it
out["still_deferred"] = "redis.asyncio.client" not in sys.modules
from redis.asyncio import Redis, StrictRedis
import redis.asyncio.client
out["same"] = Redis is redis.asyncio.client.Redis and StrictRedis is redis.asyncio.Redis
out["names"] = sorted(n for n in vars(redis.asyncio) if not n.startswith("_"))
""")
    assert out["deferred"] == "_DeferredModule"
    assert out["client_loaded"] is False and out["still_deferred"] is True
    assert out["same"] is True
    real = run("""
import redis.asyncio
out["names"] = sorted(n for n in vars(redis.asyncio) if not n.startswith("_"))
""", install=False)
    assert out["names"] == real["names"]


def test_a_missing_attribute_of_a_used_deferred_module_is_an_attribute_error():
    out = run("""
import redis
redis.asyncio.Redis
try:
    redis.asyncio.no_such_name
except AttributeError:
    out["raised"] = True
""")
    assert out["raised"] is True


def test_the_idempotency_table_binds_what_the_packages_own_init_binds():
    """The same names, each the same object (by module and qualified name), as Powertools' `__init__`."""
    real = run(f"""
import aws_lambda_powertools.utilities.idempotency as pkg
names = {sorted(lazy_imports.IDEMPOTENCY_EXPORTS)!r}
out["all"] = sorted(pkg.__all__)
out["public"] = sorted(n for n, v in vars(pkg).items() if not n.startswith("_") and not isinstance(v, type(sys)))
out["objects"] = {{n: f"{{getattr(pkg, n).__module__}}.{{getattr(pkg, n).__qualname__}}" for n in names}}
""", install=False)
    deferred = run(f"""
import aws_lambda_powertools.utilities.idempotency as pkg
names = {sorted(lazy_imports.IDEMPOTENCY_EXPORTS)!r}
out["all"] = sorted(pkg.__all__)
out["objects"] = {{n: f"{{getattr(pkg, n).__module__}}.{{getattr(pkg, n).__qualname__}}" for n in names}}
""")
    assert real["public"] == sorted(lazy_imports.IDEMPOTENCY_EXPORTS)  # a new export in a new version fails here
    assert deferred["all"] == sorted(set(real["all"]) | {"IdempotentHookFunction"})
    assert deferred["objects"] == real["objects"]


def test_the_job_workers_idempotency_imports_no_boto3():
    out = run("""
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
out["boto3"] = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "s3transfer"))
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer  # still there when asked for
out["after"] = "boto3" in sys.modules
try:
    from aws_lambda_powertools.utilities.idempotency import NoSuchName
except ImportError:
    out["unknown"] = "ImportError"
""")
    assert out == {"boto3": [], "after": True, "unknown": "ImportError"}


def test_pymysql_loads_cryptography_only_for_the_rsa_password_exchange():
    """sha2_rsa_encrypt still works (the server can decrypt what it sends), loading cryptography on its call."""
    out = run("""
import pymysql, pymysql._auth as auth
out["before"] = [m for m in ("cryptography.hazmat.primitives", "cryptography.hazmat.backends") if m in sys.modules]
out["have_before"] = auth._have_cryptography
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
salt = bytes(range(20))
sent = auth.sha2_rsa_encrypt(b"secret", salt, pem)
oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
out["decrypted"] = key.decrypt(sent, oaep) == auth._xor_password(b"secret\\0", salt)
out["have_after"] = auth._have_cryptography
out["own"] = auth.sha2_rsa_encrypt.__qualname__
""")
    assert out == {"before": [], "have_before": False, "decrypted": True, "have_after": True,
                   "own": "sha2_rsa_encrypt"}


def test_pymysql_imported_after_cryptography_is_left_as_it_is():
    out = run("""
import cryptography.hazmat.primitives.serialization
import pymysql._auth as auth
out["have"] = auth._have_cryptography
out["own"] = auth.sha2_rsa_encrypt.__qualname__
""")
    assert out == {"have": True, "own": "sha2_rsa_encrypt"}


def test_install_is_idempotent_and_touches_nothing_else():
    out = run("""
lazy_imports.install()
out["finders"] = sum(1 for f in sys.meta_path if type(f).__name__ == "_Finder")
import json as j2, redis.client
out["plain"] = type(sys.modules["redis.client"]).__name__
""")
    assert out == {"finders": 1, "plain": "module"}


def test_powertools_batch_types_are_names_for_type_checkers_and_the_processor_works():
    out = run("""
import pydantic
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import BatchTypeModels
out["alias"] = BatchTypeModels
out["parser_models"] = sorted(m for m in sys.modules if m.startswith("aws_lambda_powertools.utilities.parser"))
out["pydantic_kept"] = sys.modules["pydantic"] is pydantic
seen = []
event = {"Records": [{"messageId": "m1", "body": "ok", "receiptHandle": "r", "attributes": {},
                      "messageAttributes": {}, "eventSource": "aws:sqs"},
                     {"messageId": "m2", "body": "bad", "receiptHandle": "r", "attributes": {},
                      "messageAttributes": {}, "eventSource": "aws:sqs"}]}
def handler(record):
    if record.body == "bad":
        raise ValueError("bad")
    seen.append(record.message_id)
out["response"] = process_partial_response(event=event, record_handler=handler,
                                            processor=BatchProcessor(event_type=EventType.SQS), context=None)
out["seen"] = seen
""")
    assert out["alias"] == "BatchTypeModels" and out["parser_models"] == [] and out["pydantic_kept"] is True
    assert out["response"] == {"batchItemFailures": [{"itemIdentifier": "m2"}]} and out["seen"] == ["m1"]
