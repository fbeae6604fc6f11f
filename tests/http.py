"""A small HTTP client for the tests: real requests over loopback.

Paths are given as segments and percent-encoded here, so tests can use any
event name.  Answers come back with status, headers, raw body and parsed
JSON.
"""

import base64
from dataclasses import dataclass
from urllib.parse import quote

import treq
import ujson
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool


def path(*segments: str) -> str:
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def b64json(value: object) -> str:
    return base64.b64encode(ujson.dumps(value, ensure_ascii=False).encode("utf-8")).decode("ascii")


@dataclass
class Answer:
    status: int
    headers: object
    body: bytes

    @property
    def json(self) -> object:
        return ujson.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return None if values is None else values[0]

    def cookie(self, name: str) -> str | None:
        for line in self.headers.getRawHeaders("Set-Cookie") or []:
            key, _, rest = line.partition("=")
            if key == name:
                return rest.split(";")[0]
        return None


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = HTTPConnectionPool(reactor, persistent=True)

    async def request(
        self,
        method: str,
        where: str,
        params: object = None,
        data: object = None,
        auth: tuple[str, str] | None = None,
        headers: dict | None = None,
        cookies: dict | None = None,
        body: bytes | None = None,
    ) -> Answer:
        response = await treq.request(
            method,
            self.url + where,
            params=params,
            data=body if body is not None else data,
            auth=auth,
            headers=headers,
            cookies=cookies or {},
            pool=self._pool,
            allow_redirects=False,
            browser_like_redirects=False,
        )
        content = await response.content()
        return Answer(response.code, response.headers, content)

    async def get(self, where: str, params: object = None, **options: object) -> Answer:
        return await self.request("GET", where, params=params, **options)

    async def post(self, where: str, data: object = None, **options: object) -> Answer:
        return await self.request("POST", where, data=data, **options)

    async def delete(self, where: str, **options: object) -> Answer:
        return await self.request("DELETE", where, **options)

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
