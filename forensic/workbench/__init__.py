"""The examiner's workbench: a local web interface over `forensic.api`.

`serve` opens the case, unlocks the examiner's key in the terminal (never in the browser),
starts a Starlette application under uvicorn on 127.0.0.1 and opens the browser at an address
carrying a random token. Modules:

* `forensic.workbench.server` -- the routes (`create_app`, `Workbench`);
* `forensic.workbench.security` -- token, host, CSRF and read-only rules (`Guard`);
* `forensic.workbench.recipes` -- the editor's recipes as TOML;
* ``static/`` -- the page: plain HTML, CSS and JavaScript, no build step.

Like the CLI, the workbench imports only `forensic.api` and value types.
"""

from __future__ import annotations

import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["serve"]

DEFAULT_PORT = 8765


def serve(
    case_dir: Path,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    read_only: bool = False,
    open_browser: bool = True,
    key_dir: Path | None = None,
    passphrase: Callable[[], str] | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve ``case_dir`` until interrupted. ``passphrase`` is asked once, here, unless
    ``read_only`` (a reviewer needs no key); it is never sent to the browser."""
    import uvicorn

    from forensic import api
    from forensic.errors import ForensicError
    from forensic.workbench.security import COOKIE, new_token
    from forensic.workbench.server import Workbench, create_app

    api.open_case(case_dir)  # a bad case folder fails here, as a message, before serving
    _check_port(host, port)
    signer: Any = None
    report_signer: Any = None
    note = "read-only" if read_only else ""
    if not read_only:
        if passphrase is None:
            raise ForensicError("a passphrase source is needed to sign from the workbench")
        secret = passphrase()
        signer = api.unlock_signer(key_dir, secret)
        try:
            _, report_signer = api.unlock_report_signer(key_dir, secret)
        except ForensicError as exc:
            note = f"no report-signing key ({exc.message}); set it up with `forensic pki init`"
        del secret
    token = new_token()
    bench = Workbench(
        case_dir=case_dir,
        token=token,
        read_only=read_only,
        signer=signer,
        report_signer=report_signer,
        report_note=note,
        cookie=f"{COOKIE}_{port}",
    )
    hosts = [f"{host}:{port}", f"localhost:{port}"] if host == "127.0.0.1" else [f"{host}:{port}"]
    app = create_app(bench, hosts=hosts)
    url = f"http://{host}:{port}/?token={token}"
    say = announce or (lambda text: sys.stderr.write(text + "\n"))
    say(f"Workbench for case {bench.case.case_id}{' (read-only)' if read_only else ''}: {url}")
    say("Keep this address private: it opens the case. Ctrl+C stops the workbench.")
    if open_browser:
        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()
    finally:
        bench.close()


def _check_port(host: str, port: int) -> None:
    """A clear message for a port already taken (uvicorn would only log and exit)."""
    import socket

    from forensic.errors import InputError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port} ({exc.strerror})",
                hint="another workbench may be running; choose another port with --port N",
            ) from None
