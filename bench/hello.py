"""The hello-world ceiling: the smallest Starlette app, served exactly like `pairflow serve`.

    taskset -c 0 .venv/bin/python bench/hello.py --port 8100 [--bare]

With --bare it serves uvicorn's floor instead: a bare ASGI app with no framework that reads
the request body and answers a fixed JSON error the size of a pending poll's. Nothing served
by this uvicorn can be faster, so it shows how much of each request is the server's own.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):  # type: ignore[no-untyped-def]
    return PlainTextResponse("Hello, world!")


app = Starlette(routes=[Route("/", hello)])

PENDING = b'{"error":"authorization_pending","error_description":"The user has not yet approved the request; keep polling."}'


async def bare(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(PENDING)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": PENDING})

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--bare", action="store_true", help="serve the bare ASGI floor instead of Starlette")
    args = parser.parse_args()
    # The same uvicorn settings as pairflow.cli.serve._start: one worker, default loop and
    # HTTP parser (uvloop and httptools when installed), no access log, no server header.
    uvicorn.run(bare if args.bare else app, host=args.host, port=args.port, workers=1, access_log=False, log_level="warning", server_header=False)
