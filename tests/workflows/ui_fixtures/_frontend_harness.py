"""Convert UI workflows with the real ComfyUI frontend's ``graphToPrompt``, in headless Chromium.

Not a test and not part of the package: it made the ``*.frontend_api.json`` files beside it.

    pip download --no-deps comfyui-frontend-package==1.27.10 && unzip -q comfyui_frontend_package-*.whl -d fe
    FRONTEND_STATIC=fe/comfyui_frontend_package/static PYTHONPATH=. \
        python tests/workflows/ui_fixtures/_frontend_harness.py OUT_DIR tests/workflows/ui_fixtures/NAME.json ...

Each save may carry ``"_harness": {"random": [...], "now": [y, M, d, h, m, s]}`` (removed before
loading): ``Math.random`` then hands out that sequence and ``new Date()`` is that local time (the
browser runs in UTC). ``OUT_DIR LAYOUTS`` instead dumps, per node class, the title, inputs and widgets
the frontend creates. The page is served from the wheel; its API from the comfy_nb mock, except
``/object_info``, which is the captured real one.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

from aiohttp import ClientSession, web
from playwright.async_api import async_playwright

from comfy_nb.mock import MockServer

STATIC = Path(os.environ.get("FRONTEND_STATIC", "fe/comfyui_frontend_package/static"))
FIXTURES = Path(os.environ.get("COMFY_NB_FIXTURES", Path(__file__).parents[4] / "shared/fixtures/comfyui"))
_INFO = json.loads((FIXTURES / "object_info.json").read_text())
if os.environ.get("EXTRA_OBJECT_INFO"):  # more classes, e.g. ones the capturing server lacked
    _INFO.update(json.loads(Path(os.environ["EXTRA_OBJECT_INFO"]).read_text()))
OBJECT_INFO = json.dumps(_INFO).encode()


async def main(out_dir: Path, files: list[Path]) -> None:
    mock = MockServer().start()
    session = ClientSession()

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/api/object_info", "/object_info"):
            return web.Response(body=OBJECT_INFO, content_type="application/json")
        if path.startswith("/api/") or path in ("/ws",):
            if path.endswith("/ws"):
                return web.Response(status=404)
            async with session.request(
                request.method, mock.url + request.path_qs, data=await request.read()
            ) as r:
                return web.Response(body=await r.read(), status=r.status, content_type=r.content_type)
        target = STATIC / (path.lstrip("/") or "index.html")
        if target.is_dir():
            target = target / "index.html"
        if target.exists():
            return web.FileResponse(target)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
            )
            ctx = await browser.new_context(timezone_id="UTC")
            page = await ctx.new_page()
            page.on("pageerror", lambda e: print("pageerror", e, file=sys.stderr))
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for_function(
                "window.app && window.app.graph && window.app.vueAppReady !== false", timeout=60000
            )
            await page.wait_for_timeout(1500)
            if files and files[0].name == "LAYOUTS":
                layouts = await page.evaluate("""() => {
                    const out = {};
                    for (const name of Object.keys(LiteGraph.registered_node_types)) {
                        try {
                            const n = LiteGraph.createNode(name);
                            if (!n) continue;
                            out[name] = [n.title, (n.inputs||[]).map(i => [i.name, i.widget?.name ?? null])].concat((n.widgets || []).map(w => [w.name, w.options?.serialize !== false, w.serialize !== false, !!w.dynamicPrompts, w.value === undefined ? null : w.value]));
                        } catch (e) { out[name] = String(e); }
                    }
                    return out;
                }""")
                (out_dir / "layouts.json").write_text(json.dumps(layouts, indent=1))
                files = []
            for f in files:
                wf = json.loads(f.read_text())
                harness = wf.pop("_harness", {})
                result = await page.evaluate(
                    """async ([wf, h]) => {
                        const realRandom = Math.random, RealDate = Date;
                        const seq = (h.random || []).slice();
                        let draws = 0;
                        if (h.random) Math.random = () => { draws++; if (!seq.length) throw new Error('random sequence exhausted'); return seq.shift(); };
                        if (h.now) { const fixed = new RealDate(...h.now.map((v,i)=> i==1 ? v-1 : v)); window.Date = class extends RealDate { constructor(...a) { if (a.length) super(...a); else super(fixed.getTime()); } }; }
                        try {
                          await app.loadGraphData(wf, true, true, null);
                          const inspect = [];
                          const walk = (graph, path) => { for (const n of graph.nodes) { if (n.isSubgraphNode && n.isSubgraphNode()) { inspect.push({inner: n.subgraph.nodes.map(x => [x.id, x.type, (x.inputs||[]).map(i => [i.name, i.widget?.name ?? null, i.link]), (x.widgets||[]).map(w => [w.name, w.type])]), path: path + n.id, widgets: (n.widgets||[]).map(w => [w.name, w.value, w.type]), inputs: n.inputs.map(i => [i.name, i.widget?.name ?? null, i.link])}); walk(n.subgraph, path + n.id + ':'); } } };
                          walk(app.graph, '');
                          const { output } = await app.graphToPrompt();
                          return { output, draws, left: seq.length, inspect };
                        } catch (e) { return { error: String(e && e.stack || e) }; }
                        finally { Math.random = realRandom; window.Date = RealDate; }
                    }""",
                    [wf, harness],
                )
                out = out_dir / (f.stem + ".frontend_api.json")
                if "error" in result:
                    print(f.name, "ERROR", result["error"], file=sys.stderr)
                    continue
                out.write_text(json.dumps(result["output"], indent=2) + "\n")
                print(f.name, "draws", result["draws"], "left", result["left"])
                if result["inspect"]:
                    print("   ", json.dumps(result["inspect"]))
            await browser.close()
    finally:
        await session.close()
        await runner.cleanup()
        mock.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]))
