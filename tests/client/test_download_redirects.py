"""Downloads follow redirects in one place (``Transport.download``): credentials of every kind (bearer,
basic, extra headers, cookies) go only to the server's own origin, never to the host a redirect
names; a loop, too many hops or a refused signed link is a clear error. Two real aiohttp servers on
127.0.0.1 (different ports, so different origins)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from comfy_nb.client import AsyncComfyClient, Output
from comfy_nb.client._transport import MAX_REDIRECTS
from comfy_nb.errors import ServerError

TOKEN = "bearer-SECRET-1234"
PASSWORD = "basic-pw-SECRET"
HEADER = "header-SECRET-99"
SIGNATURE = "sig-abcdef"
PNG = b"\x89PNG\r\n\x1a\n-not-a-real-image"
_CREDENTIAL_HEADERS = ("Authorization", "X-API-Key", "Cookie", "X-Custom-Auth")


@dataclass
class Servers:
    origin: str = ""
    storage: str = ""
    storage_seen: list[dict[str, str]] = field(default_factory=list)
    origin_seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    ws_target: str = ""
    """Where the origin's ``/ws`` redirects (``""``: its own ``/ws2``)."""
    sockets_seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _credentials(request: web.Request) -> dict[str, str]:
    return {name: request.headers[name] for name in _CREDENTIAL_HEADERS if name in request.headers}


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    s = Servers()

    async def blob(request: web.Request) -> web.StreamResponse:
        s.storage_seen.append(_credentials(request))
        if request.rel_url.query.get("signature") != SIGNATURE:
            return web.Response(status=403, text="SignatureDoesNotMatch")
        return web.Response(body=PNG, content_type="image/png")

    async def storage_redirects_home(request: web.Request) -> web.StreamResponse:
        s.storage_seen.append(_credentials(request))
        raise web.HTTPFound(f"{s.origin}/final")

    async def prompt(request: web.Request) -> web.StreamResponse:
        response = web.json_response({"exec_info": {"queue_remaining": 0}})
        response.set_cookie("session", "cookie-SECRET-77")  # the jar would send it to 127.0.0.1 on any port
        return response

    async def view(request: web.Request) -> web.StreamResponse:
        s.origin_seen.append((request.path, _credentials(request)))
        name = request.rel_url.query.get("filename", "")
        targets = {
            "ok.png": f"{s.storage}/blob?signature={SIGNATURE}&expires=1",
            "expired.png": f"{s.storage}/blob?signature=stale&expires=1",
            "relative.png": "/final",
            "loop.png": "/view?filename=loop2.png",
            "loop2.png": "/view?filename=loop.png",
            "bounce.png": f"{s.storage}/bounce",
            "nowhere.png": "",
            "ftp.png": "ftp://127.0.0.1/x",
        }
        if name.startswith("hop"):
            raise web.HTTPFound(f"/view?filename=hop{int(name[3:]) + 1}")
        if name not in targets:
            return web.Response(status=404)
        if not targets[name]:
            return web.Response(status=302)
        raise web.HTTPFound(targets[name])

    async def ws_redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(s.ws_target or f"/ws2?{request.query_string}")

    async def ws_accept(request: web.Request) -> web.StreamResponse:
        s.sockets_seen.append((request.host, _credentials(request)))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _msg in ws:  # hold it open; the client closes it
            pass
        return ws

    async def final(request: web.Request) -> web.StreamResponse:
        s.origin_seen.append((request.path, _credentials(request)))
        return web.Response(body=PNG, content_type="image/png")

    origin_app, storage_app = web.Application(), web.Application()
    for prefix in ("", "/api"):  # the cloud kind's routes live under /api
        origin_app.router.add_get(f"{prefix}/prompt", prompt)
        origin_app.router.add_get(f"{prefix}/view", view)
    origin_app.router.add_get("/final", final)
    origin_app.router.add_get("/ws", ws_redirect)
    origin_app.router.add_get("/ws2", ws_accept)
    storage_app.router.add_get("/blob", blob)
    storage_app.router.add_get("/bounce", storage_redirects_home)
    storage_app.router.add_get("/ws2", ws_accept)
    runners = []
    for app, attr in ((origin_app, "origin"), (storage_app, "storage")):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        setattr(s, attr, f"http://127.0.0.1:{runner.addresses[0][1]}")
        runners.append(runner)
    try:
        yield s
    finally:
        for runner in runners:
            await runner.cleanup()


def out(name: str) -> Output:
    return Output(kind="image", filename=name)


@pytest.mark.parametrize(
    "auth",
    [
        {"token": TOKEN},
        {"username": "me", "password": PASSWORD},
        {"headers": {"X-Custom-Auth": HEADER}},
        {"api_key": "cloud-SECRET-key", "kind": "cloud"},
    ],
    ids=["bearer", "basic", "header", "api_key"],
)
async def test_credentials_go_to_the_origin_only(servers: Servers, auth: dict[str, object]) -> None:
    kind = auth.pop("kind", "comfyui")
    async with AsyncComfyClient(servers.origin, kind=kind, websocket=False, **auth) as client:  # type: ignore[arg-type]
        assert await client.download(out("ok.png")) == PNG
        assert await client.download(out("relative.png")) == PNG
    assert servers.storage_seen == [{}]  # no credential, no cookie at the storage host
    home = [seen for path, seen in servers.origin_seen if path == "/final"]
    assert home and all(seen for seen in home)  # a same-origin hop keeps them (the cookie at least)
    assert all("Cookie" in seen for _, seen in servers.origin_seen)


async def test_a_redirect_back_home_gets_the_credentials_again(servers: Servers) -> None:
    async with AsyncComfyClient(servers.origin, token=TOKEN, kind="comfyui", websocket=False) as client:
        assert await client.download(out("bounce.png")) == PNG
    assert servers.storage_seen == [{}]
    assert [seen.get("Authorization") for path, seen in servers.origin_seen] == [f"Bearer {TOKEN}"] * 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("loop.png", "redirect loop"),
        ("hop0", f"more than {MAX_REDIRECTS} times"),
        ("nowhere.png", "without a Location"),
        ("ftp.png", "not an http"),
        ("expired.png", "a signed link may have expired"),
    ],
)
async def test_bad_redirects_are_clear_errors(servers: Servers, name: str, message: str) -> None:
    async with AsyncComfyClient(servers.origin, token=TOKEN, kind="comfyui", websocket=False) as client:
        with pytest.raises(ServerError, match=message) as info:
            await client.download(out(name))
    text = str(info.value)
    assert TOKEN not in text and "stale" not in text and SIGNATURE not in text  # a signed query is not shown
    hops = [path for path, _ in servers.origin_seen]
    assert len(hops) <= MAX_REDIRECTS + 1


async def test_an_api_key_is_not_a_header_for_a_native_comfyui(servers: Servers) -> None:
    """A key given for partner nodes stays out of a plain ComfyUI's requests (no ``X-API-Key``)."""
    async with AsyncComfyClient(servers.origin, api_key="partner-SECRET", kind="comfyui", websocket=False) as client:
        assert await client.download(out("relative.png")) == PNG
        assert client.auth is None
    assert servers.origin_seen and all(set(seen) <= {"Cookie"} for _, seen in servers.origin_seen)


async def test_a_socket_redirect_is_followed_only_within_the_origin(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    """websockets strips only Authorization and Cookie on a cross-origin redirect: the client refuses
    it, so an API key or an extra header never reaches the other host (jobs are then polled)."""
    async with AsyncComfyClient(servers.origin, headers={"X-Custom-Auth": HEADER}, kind="comfyui") as client:
        assert client.connected  # /ws -> /ws2 on the same origin: followed, headers kept
    assert servers.sockets_seen == [(servers.origin.removeprefix("http://"), {"X-Custom-Auth": HEADER})]
    servers.ws_target = servers.storage.replace("http://", "ws://") + "/ws2"
    async with AsyncComfyClient(servers.origin, headers={"X-Custom-Auth": HEADER}, kind="comfyui") as client:
        assert not client.connected
    assert len(servers.sockets_seen) == 1  # the other origin was never contacted
    assert "redirected to another origin" in caplog.text and HEADER not in caplog.text
