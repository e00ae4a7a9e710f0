"""The dashboard command (FastAPI and uvicorn are imported only when it runs)."""

from __future__ import annotations

import gc
import os
from typing import Annotated

import typer

from hyouka.cli._app import StoreOpt, console, fail

app = typer.Typer()  # this module's commands, registered by name in hyouka.cli.COMMANDS


@app.command()
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="address to bind; anything but loopback needs --token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8765,
    token: Annotated[str | None, typer.Option(help="require this token on every request (or HYOUKA_TOKEN)",
                                              show_default=False)] = None,
    prices: Annotated[str | None, typer.Option(help="price table YAML for the cost columns")] = None,
) -> None:
    """The web dashboard (leaderboard, runs, samples, side by side, MT-Bench, human studies) and the rater pages."""
    from hyouka.web.security import check_bind

    token = token or os.environ.get("HYOUKA_TOKEN") or None
    try:
        check_bind(host, token)
    except ValueError as exc:
        fail(str(exc))
        return
    try:
        import uvicorn

        from hyouka.web.app import create_app
    except ImportError as exc:
        fail(f"the dashboard needs the server extra: pip install 'hyouka[server]' ({exc})")
        return
    application = create_app(store, token=token, prices=prices)
    # what the server holds from start-up (modules, the app, the store's engine) lives as long as it does: frozen,
    # the collector's full passes stop scanning it, which took pages' tail latency from ~75 ms to ~200 ms
    gc.collect()
    gc.freeze()
    shown = f"[{host}]" if ":" in host else host
    console.print(f"hyouka dashboard on http://{shown}:{port}/" + (" (token required)" if token else ""))
    uvicorn.run(application, host=host, port=port, log_level="warning")
