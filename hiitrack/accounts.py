"""Users, buckets, passwords and access keys, safe with several processes.

Passwords are kept only as salted scrypt hashes, computed off the reactor
thread through a bounded queue with per-address and per-user back-off
(hiitrack.throttle).  Secrets are never cached: every authentication reads
the user's record from the store, so a password change or an account
deletion in one process holds in every other at once.  A bounded cache
remembers recent successful logins, keyed by the credentials *and* the
stored hash, so it can only spare a hash for a record that is still current.

An access key is an HMAC, under the installation's secret, of the bucket,
the user's password hash and a random nonce of the bucket record: nobody
without the secret can derive one, a password change retires every key, and
a bucket deleted and created again gets a new key.  A password change is a
compare-and-set on the user record, so one racing the account's deletion
cannot bring the account back.

The open tracking routes create a bucket on its first hit (the 2012 API)
unless the user turned that off, and never past the cap on buckets per user.
The tracking path remembers that a bucket exists for at most
`BUCKET_SECONDS`: that is how long another process may still accept hits
into a bucket or an account deleted elsewhere.
Tests: tests/test_accounts_processes.py, tests/test_bucket_cache.py, tests/test_http_account_safety.py,
tests/test_http_accounts.py, tests/test_http_auth.py, tests/test_login_throttle.py.
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

from hiitrack.caching import LRU
from hiitrack.counting import names_counted
from hiitrack.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from hiitrack.limits import Limits, OverLimit
from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import BUCKET, SECRET, USER
from hiitrack.throttle import Backoff, HashQueue

__all__ = ["Access", "Accounts", "bucket_scope", "check_name", "check_password"]

NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
INSTALLATION = ""
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
BUCKET_SECONDS = 2.0
"""How long the tracking path trusts that a bucket exists before reading it again."""
ADDRESS_FREE_FAILURES = 10
USER_FREE_FAILURES = 20


def check_name(name: str, what: str) -> str:
    """User and bucket names: 1-64 of ``A-Z a-z 0-9 _ . -``, no leading dot."""
    if not NAME.fullmatch(name):
        raise BadRequest(f"invalid {what} name: use 1-64 characters of A-Z a-z 0-9 _ . - not starting with '.'")
    return name


def check_password(password: str) -> str:
    """A new password: 8-1024 characters (a short one falls to guessing, a huge one costs hashing)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise BadRequest(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    return password


def bucket_scope(user: str, bucket: str) -> str:
    return f"{user}/{bucket}"


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=32)


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
        bucket_cache_size: int = 4096,
        limits: Limits = Limits(),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._secret = b""
        self.limits = limits
        self._logins: LRU[bytes, bool] = LRU(login_cache_size)
        # Scope -> when the bucket was last seen in the store (tracking only).
        self._buckets: LRU[str, float] = LRU(bucket_cache_size)
        # Buckets forgotten so far: a bucket read before a deletion ended is not remembered after it.
        self._forgotten = 0
        self.hashing = HashQueue()
        self.address_backoff = Backoff(ADDRESS_FREE_FAILURES, clock=monotonic)
        self.user_backoff = Backoff(USER_FREE_FAILURES, clock=monotonic)

    def caches(self) -> dict[str, LRU]:
        return {"login": self._logins, "bucket": self._buckets}

    async def start(self) -> None:
        """Load the installation secret, making one on first start."""
        await self._store.create(INSTALLATION, SECRET, "access-key", os.urandom(32))
        secret = await self._store.get(INSTALLATION, SECRET, "access-key")
        if secret is None:
            raise StoreUnavailable("the installation secret was created but cannot be read back")
        self._secret = secret

    def sign(self, message: bytes) -> str:
        """An HMAC of `message` under the installation's secret: what processes of one installation send each other.

        Domain-separated from access keys, which are HMACs under the same secret.
        """
        return hmac.new(self._secret, b"peer\0" + message, hashlib.sha256).hexdigest()

    def signed(self, message: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)

    # Users.

    async def user(self, name: str) -> dict | None:
        """The user's record as the store holds it now."""
        raw = await self._store.get(INSTALLATION, USER, name)
        return None if raw is None else ujson.loads(raw)

    async def create_user(self, name: str, password: str, buckets_on_hit: bool = True) -> None:
        record = {**await self._password_record(check_password(password)), "buckets_on_hit": buckets_on_hit}
        if not await self._store.create(INSTALLATION, USER, name, ujson.dumps(record).encode()):
            raise Conflict(f"user {name} already exists")

    async def change_user(
        self, name: str, current: str, password: str | None, buckets_on_hit: bool | None, address: str
    ) -> None:
        """Change the password and/or the first-hit switch, knowing the current password.

        The change applies only to the record the current password was
        checked against: if the account was deleted or changed meanwhile,
        nothing is written.
        """
        raw = await self._store.get(INSTALLATION, USER, name)
        if raw is None:
            raise NotFound(f"no user {name}")
        record = ujson.loads(raw)
        await self._check_password(name, record, current, address)
        if password is not None:
            record.update(await self._password_record(check_password(password)))
        if buckets_on_hit is not None:
            record["buckets_on_hit"] = buckets_on_hit
        if not await self._store.replace(INSTALLATION, USER, name, raw, ujson.dumps(record).encode()):
            raise Conflict(f"user {name} was changed or deleted meanwhile; nothing was changed")

    async def delete_user(self, name: str) -> list[str]:
        """Remove the user and every bucket's data; return the dropped scopes."""
        scopes = [bucket_scope(name, bucket) for bucket in await self.buckets(name)]
        for scope in scopes:
            await self._store.drop(scope)
            self._forget_bucket(scope)
        await self._store.drop(name)
        await self._store.delete(INSTALLATION, USER, name)
        return scopes

    # Authentication.

    async def authenticate(self, user: str, bucket: str | None, login: str, password: str, address: str) -> Access:
        """Check Basic credentials for a request under /user[/bucket] from `address`.

        The user's password gives full access; the access key of `bucket`
        gives read access to that bucket only.
        """
        if login != user:
            raise Unauthorized("these credentials are for another user")
        record = await self.user(user)
        if record is not None and bucket is not None:
            key = await self._access_key(user, record, bucket)
            if key is not None and hmac.compare_digest(key.encode(), password.encode("utf-8", "surrogatepass")):
                return Access(user, bucket)
        await self._check_password(user, record, password, address)
        return Access(user)

    async def _check_password(self, user: str, record: dict | None, password: str, address: str) -> None:
        """401 unless `password` is the record's; 429 for a client or user that guessed too much."""
        if record is not None and self._logins.get(_login_key(user, password, record)) is not None:
            return
        self._refuse_guessers(user, address)
        self.address_backoff.attempt(address)
        self.user_backoff.attempt(user)
        if record is None:
            # Spend the time of a real check, so a miss does not tell whether
            # the user exists.
            await self.hashing.run(_hash, password, b"decoy", *SCRYPT.values())
            raise Unauthorized("wrong user name or password")
        digest = await self.hashing.run(_hash, password, _unb64(record["salt"]), record["n"], record["r"], record["p"])
        if not hmac.compare_digest(digest, _unb64(record["hash"])):
            raise Unauthorized("wrong user name or password")
        self.address_backoff.succeeded(address)
        self.user_backoff.succeeded(user)
        self._logins.put(_login_key(user, password, record), True)

    def _refuse_guessers(self, user: str, address: str) -> None:
        wait = max(self.address_backoff.retry_after(address), self.user_backoff.retry_after(user))
        if wait:
            raise TooManyRequests(f"too many failed logins; try again in {wait} s", retry_after=wait)

    async def _password_record(self, password: str) -> dict:
        salt = os.urandom(16)
        digest = await self.hashing.run(_hash, password, salt, *SCRYPT.values())
        return {"salt": _b64(salt), "hash": _b64(digest), **SCRYPT}

    # Buckets.

    async def access_key(self, user: str, bucket: str) -> str:
        """The bucket's read-only key (404 when the user or the bucket is gone)."""
        record = await self.user(user)
        key = None if record is None else await self._access_key(user, record, bucket)
        if key is None:
            raise NotFound(f"no bucket {bucket}")
        return key

    async def _access_key(self, user: str, record: dict, bucket: str) -> str | None:
        bucket_record = await self.bucket(user, bucket)
        if bucket_record is None:
            return None
        nonce = bucket_record.get("key", "")
        mac = hmac.new(self._secret, f"{user}/{bucket}/{record['hash']}/{nonce}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    async def buckets(self, user: str) -> dict[str, dict]:
        return {name: ujson.loads(raw) for name, raw in (await self._store.scan(user, BUCKET)).items()}

    async def bucket(self, user: str, bucket: str) -> dict | None:
        raw = await self._store.get(user, BUCKET, bucket)
        return None if raw is None else ujson.loads(raw)

    async def create_bucket(self, user: str, bucket: str, description: str) -> bool:
        """Create the bucket unless it exists; 422 past the cap on buckets per user."""
        if len(await self.buckets(user)) >= self.limits.user_buckets:
            raise OverLimit("user_buckets", self.limits.user_buckets, f"user {user} has too many buckets")
        record = {"description": description, "created": int(self._clock()), "key": _b64(os.urandom(16))}
        forgotten = self._forgotten
        created = await self._store.create(user, BUCKET, bucket, ujson.dumps(record).encode())
        scope = bucket_scope(user, bucket)
        if created:
            # Its names' users are counted from now on (hiitrack.catalog).  Should this write fail,
            # the bucket lists all its names, as one made before the counts, until a rebuild.
            await self._store.write(WriteBatch(scope, increments=names_counted()))
        self._remember_bucket(scope, forgotten)
        return created

    async def ensure_bucket(self, user: str, bucket: str) -> str:
        """For tracking: the bucket's scope, creating the bucket if its user allows that."""
        scope = bucket_scope(user, bucket)
        seen = self._buckets.get(scope)
        if seen is not None and self._monotonic() - seen < BUCKET_SECONDS:
            return scope
        forgotten = self._forgotten
        if await self.bucket(user, bucket) is not None:
            self._remember_bucket(scope, forgotten)
            return scope
        record = await self.user(user)
        if record is None:
            raise NotFound(f"no user {user}")
        if not record.get("buckets_on_hit", True):
            raise NotFound(f"no bucket {bucket}: user {user} creates buckets with POST /{user}/{bucket} only")
        await self.create_bucket(user, bucket, "")
        return scope

    async def delete_bucket(self, user: str, bucket: str) -> str:
        scope = bucket_scope(user, bucket)
        await self._store.drop(scope)
        await self._store.delete(user, BUCKET, bucket)
        self._forget_bucket(scope)
        return scope

    def _remember_bucket(self, scope: str, forgotten: int) -> None:
        """The bucket was seen in the store by a read that began when `forgotten` buckets had been
        forgotten: remember it, unless one was forgotten since (that read may predate its deletion)."""
        if self._forgotten == forgotten:
            self._buckets.put(scope, self._monotonic())

    def _forget_bucket(self, scope: str) -> None:
        self._buckets.pop(scope)
        self._forgotten += 1


def _login_key(user: str, password: str, record: dict) -> bytes:
    """What the login cache remembers: the credentials with the hash they matched."""
    secret = password.encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"\0".join([user.encode(), secret, record["hash"].encode()])).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
