"""Users, buckets, passwords and access keys.

Passwords are kept only as salted scrypt hashes.  scrypt is slow on purpose,
so it runs off the reactor thread, and a bounded cache remembers recent
successful logins (keyed by a hash of the credentials and the stored hash, so
a changed password misses).  An access key is an HMAC of the bucket under
the installation's secret and the user's password hash: nobody without the
secret can derive one, and changing the password retires the old keys.
Tests: tests/test_http_accounts.py, tests/test_http_auth.py.
"""

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import ujson
from twisted.internet.threads import deferToThread

from hiitrack.caching import LRU
from hiitrack.errors import BadRequest, Conflict, NotFound, Unauthorized
from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import BUCKET, SECRET, USER

__all__ = ["Access", "Accounts", "check_name", "bucket_scope"]

NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
INSTALLATION = ""


def check_name(name: str, what: str) -> str:
    """User and bucket names: 1-64 of ``A-Z a-z 0-9 _ . -``, no leading dot."""
    if not NAME.fullmatch(name):
        raise BadRequest(f"invalid {what} name: use 1-64 characters of A-Z a-z 0-9 _ . - not starting with '.'")
    return name


def bucket_scope(user: str, bucket: str) -> str:
    return f"{user}/{bucket}"


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


@dataclass(frozen=True)
class Access:
    """Who a request is: the owner (everything) or an access-key holder."""

    user: str
    bucket: str | None = None

    @property
    def read_only(self) -> bool:
        return self.bucket is not None


class Accounts:
    def __init__(
        self,
        store: RecordWriter,
        clock: Callable[[], float] = time.time,
        login_cache_size: int = 4096,
        user_cache_size: int = 4096,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret = b""
        self._logins: LRU[bytes, bool] = LRU(login_cache_size)
        self._users: LRU[str, dict] = LRU(user_cache_size)
        self._buckets: LRU[str, bool] = LRU(user_cache_size)

    def caches(self) -> dict[str, LRU]:
        return {"login": self._logins, "user": self._users, "bucket": self._buckets}

    async def start(self) -> None:
        """Load the installation secret, making one on first start."""
        await self._store.create(INSTALLATION, SECRET, "access-key", os.urandom(32))
        secret = await self._store.get(INSTALLATION, SECRET, "access-key")
        if secret is None:
            raise StoreUnavailable("the installation secret was created but cannot be read back")
        self._secret = secret

    async def user(self, name: str) -> dict | None:
        record = self._users.get(name)
        if record is None:
            raw = await self._store.get(INSTALLATION, USER, name)
            if raw is None:
                return None
            record = ujson.loads(raw)
            self._users.put(name, record)
        return record

    async def create_user(self, name: str, password: str) -> None:
        record = await _password_record(password)
        if not await self._store.create(INSTALLATION, USER, name, ujson.dumps(record).encode()):
            raise Conflict(f"user {name} already exists")

    async def change_password(self, name: str, password: str) -> None:
        record = await _password_record(password)
        await self._store.write(WriteBatch(scope=INSTALLATION, records={(USER, name): ujson.dumps(record).encode()}))
        self._users.pop(name)

    async def delete_user(self, name: str) -> list[str]:
        """Remove the user and every bucket's data; return the dropped scopes."""
        scopes = [bucket_scope(name, bucket) for bucket in await self.buckets(name)]
        for scope in scopes:
            await self._store.drop(scope)
            self._buckets.pop(scope)
        await self._store.drop(name)
        await self._store.delete(INSTALLATION, USER, name)
        self._users.pop(name)
        return scopes

    async def authenticate(self, user: str, bucket: str | None, login: str, password: str) -> Access:
        """Check Basic credentials for a request under /user[/bucket].

        The user's password gives full access; the access key of `bucket`
        gives read access to that bucket only.
        """
        if login != user:
            raise Unauthorized("these credentials are for another user")
        record = await self.user(user)
        if record is None:
            # Spend the time of a real check, so a miss does not tell whether
            # the user exists.
            await deferToThread(_hash, password, b"decoy", **SCRYPT)
            raise Unauthorized("wrong user name or password")
        if bucket is not None and hmac.compare_digest(
            self.access_key(user, record, bucket).encode(), password.encode("utf-8", "surrogatepass")
        ):
            return Access(user, bucket)
        remembered = hashlib.sha256(
            b"\0".join([user.encode(), password.encode("utf-8", "surrogatepass"), record["hash"].encode()])
        ).digest()
        if self._logins.get(remembered) is None:
            digest = await deferToThread(_hash, password, _unb64(record["salt"]), record["n"], record["r"], record["p"])
            if not hmac.compare_digest(digest, _unb64(record["hash"])):
                raise Unauthorized("wrong user name or password")
            self._logins.put(remembered, True)
        return Access(user)

    def access_key(self, user: str, record: dict, bucket: str) -> str:
        """The bucket's read-only key; it changes with the user's password."""
        mac = hmac.new(self._secret, f"{user}/{bucket}/{record['hash']}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    async def buckets(self, user: str) -> dict[str, dict]:
        return {name: ujson.loads(raw) for name, raw in (await self._store.scan(user, BUCKET)).items()}

    async def bucket(self, user: str, bucket: str) -> dict | None:
        raw = await self._store.get(user, BUCKET, bucket)
        return None if raw is None else ujson.loads(raw)

    async def create_bucket(self, user: str, bucket: str, description: str) -> bool:
        record = {"description": description, "created": int(self._clock())}
        created = await self._store.create(user, BUCKET, bucket, ujson.dumps(record).encode())
        self._buckets.put(bucket_scope(user, bucket), True)
        return created

    async def ensure_bucket(self, user: str, bucket: str) -> str:
        """For tracking: the bucket's scope, creating the bucket if the user exists."""
        scope = bucket_scope(user, bucket)
        if self._buckets.get(scope) is None:
            if await self.user(user) is None:
                raise NotFound(f"no user {user}")
            await self.create_bucket(user, bucket, "")
        return scope

    async def delete_bucket(self, user: str, bucket: str) -> str:
        scope = bucket_scope(user, bucket)
        await self._store.drop(scope)
        await self._store.delete(user, BUCKET, bucket)
        self._buckets.pop(scope)
        return scope


async def _password_record(password: str) -> dict:
    salt = os.urandom(16)
    digest = await deferToThread(_hash, password, salt, **SCRYPT)
    return {"salt": _b64(salt), "hash": _b64(digest), **SCRYPT}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
