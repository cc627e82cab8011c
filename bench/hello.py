"""The hello-world ceiling: the smallest Starlette app, served exactly like `pairflow serve`.

    taskset -c 0 .venv/bin/python bench/hello.py --port 8100
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

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    # The same uvicorn settings as pairflow.cli.serve._start: one worker, default loop and
    # HTTP parser (uvloop and httptools when installed), no access log, no server header.
    uvicorn.run(app, host=args.host, port=args.port, workers=1, access_log=False, log_level="warning", server_header=False)
