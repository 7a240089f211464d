"""Cold start (issue 16): what libraries import eagerly but no function uses, loaded on first use instead.

`install()` (the first thing app.py does, so every function's process has it) puts a finder in front of
`sys.meta_path` that changes how a few modules are loaded when something first imports them, and nothing else:

- `redis.asyncio` (DEFERRED): redis-py's `__init__` imports its asyncio client; every function uses the
  synchronous one. The package is created as usual but its `__init__` runs only when it is first used: the first
  attribute asked of it that it does not have yet (`Redis`, say). Its submodules import as usual, without it
  (redis-py's commands module imports a small one, `redis.asyncio.observability`). Only a package none of whose
  submodules imports from the package itself can be deferred so (Powertools' data classes cannot: `sqs_event`
  imports `S3Event` from its package).
- `aws_lambda_powertools.utilities.idempotency`: the package's `__init__` only re-exports names from its
  submodules, among them the DynamoDB layer, which imports boto3; the job worker uses the Redis layer. The
  package's `__init__` is replaced by `IDEMPOTENCY_EXPORTS`: each name is imported from its submodule when
  first asked for (PEP 562), the same object the real `__init__` would have bound.
- `aws_lambda_powertools.utilities.batch.types` runs as it does where pydantic is not installed: its type aliases
  (only type checkers read them) stay names instead of importing Powertools' pydantic models of SQS, Kinesis,
  DynamoDB and Kafka records, which the job worker's batch processor does not use (it takes no `model=`).
- `pymysql._auth`: it imports `cryptography` only for sha256_password and caching_sha2_password's RSA password
  exchange over an unencrypted link; our database users authenticate with mysql_native_password. The module
  runs with `cryptography` hidden, and its RSA function, the one user of it, runs the module again with
  `cryptography` the first time it is called, so those methods still work.

The behaviour of each library once used is its own. tests/fast/test_lazy_imports.py checks each stand-in
against the real module (and fails when a library's new version no longer matches); tests/fast/test_cold_start.py
that the functions do not load what is deferred here.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

DEFERRED = ("redis.asyncio",)
IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"
# The names the idempotency package's `__init__` binds (its `__all__` and the hook type), by submodule.
IDEMPOTENCY_EXPORTS = {
    "IdempotentHookFunction": "hook",
    "BasePersistenceLayer": "persistence.base",
    "DynamoDBPersistenceLayer": "persistence.dynamodb",
    "IdempotencyConfig": "idempotency",
    "idempotent": "idempotency",
    "idempotent_function": "idempotency",
}
BATCH_TYPES = "aws_lambda_powertools.utilities.batch.types"
PYMYSQL_AUTH = "pymysql._auth"


class _DeferredModule(types.ModuleType):
    """A module whose code has not run yet: the first missing attribute runs it, into this same object."""

    def __getattr__(self, name: str) -> Any:
        loader = self.__dict__.pop("_deferred_loader", None)
        if loader is None:  # already run (or running): a genuinely missing attribute
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self.__class__ = types.ModuleType
        loader.exec_module(self)
        return getattr(self, name)


class _ExportsModule(types.ModuleType):
    """A package whose `__init__` is replaced by its table of re-exported names (`IDEMPOTENCY_EXPORTS`)."""

    def __getattr__(self, name: str) -> Any:
        if name not in IDEMPOTENCY_EXPORTS:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{IDEMPOTENCY_EXPORTS[name]}"), name)
        setattr(self, name, value)
        return value


def _without_pydantic(loader: Any, module: types.ModuleType) -> None:
    """Run Powertools' batch types as without pydantic: the module reads `"pydantic" in sys.modules` and imports
    nothing else but `sys` and `typing` (loaded long before), so no other import can miss pydantic meanwhile."""
    pydantic = sys.modules.pop("pydantic", None)
    try:
        loader.exec_module(module)
    finally:
        if pydantic is not None:
            sys.modules["pydantic"] = pydantic


def _without_cryptography(loader: Any, module: types.ModuleType) -> None:
    """Run pymysql's `_auth` with `cryptography` unimportable, and its RSA function loading it on first call."""
    hidden = ("cryptography.hazmat.backends", "cryptography.hazmat.primitives")
    if any(name in sys.modules for name in hidden):  # imported already: nothing to save
        loader.exec_module(module)
        return
    sys.modules.update(dict.fromkeys(hidden))  # None: importing them raises ImportError, as if not installed
    try:
        loader.exec_module(module)
    finally:
        for name in hidden:
            del sys.modules[name]

    def sha2_rsa_encrypt(password: bytes, salt: bytes, public_key: bytes) -> bytes:
        loader.exec_module(module)  # again, now with cryptography: every name in it is pymysql's own again
        return module.sha2_rsa_encrypt(password, salt, public_key)

    module.sha2_rsa_encrypt = sha2_rsa_encrypt


# The finder and loader protocols are duck-typed (importlib.abc would import importlib.resources, about 8 ms).
class _Loader:
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__spec__.name
        if name in DEFERRED:
            module.__dict__["_deferred_loader"] = self.loader
            module.__class__ = _DeferredModule
        elif name == IDEMPOTENCY:
            module.__all__ = tuple(IDEMPOTENCY_EXPORTS)
            module.__class__ = _ExportsModule
        elif name == BATCH_TYPES:
            _without_pydantic(self.loader, module)
        else:
            _without_cryptography(self.loader, module)


class _Finder:
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in (*DEFERRED, IDEMPOTENCY, BATCH_TYPES, PYMYSQL_AUTH):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


_FINDER = _Finder()


def install() -> None:
    """Defer the modules above (idempotent; only modules not imported yet are affected)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
