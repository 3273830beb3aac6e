"""`sdlens serve` / `python serve.py` and `sdlens site OUT`: the command-line side of serving."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app_files import Layout

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_serve_arguments(parser: argparse.ArgumentParser, layout: Layout) -> None:
    parser.add_argument("--lan", action="store_true",
                        help="serve a classroom network: HTTPS on all interfaces (self-signed certificate, kept)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; with --lan 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--models", type=Path, default=layout.models, help="folder of exported models")
    parser.add_argument("--cert-dir", type=Path, help="where --lan keeps its certificate (default ~/.sdlens/lan)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    add_hub_argument(parser)


def add_hub_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub-endpoint", metavar="URL",
                        help="where the page opens Hugging Face Hub repos: a mirror, or a test server "
                             "(default: $HF_ENDPOINT, else https://huggingface.co)")


def serve(args, layout: Layout) -> int:
    from . import lan
    from .server import make_server

    host = args.host or ("0.0.0.0" if args.lan else "127.0.0.1")
    if not args.models.is_dir():
        print(f"error: models folder {args.models} does not exist", file=sys.stderr)
        return 2
    missing = layout.missing_runtime_files()
    if missing:
        print(f"warning: the browser runtime files are missing ({', '.join(map(str, missing))}); "
              f"{layout.setup_hint}", file=sys.stderr)
    from .app_files import model_folders
    if not model_folders(args.models):
        print(f"warning: no models in {args.models}; make one with: python -m export convert …", file=sys.stderr)
    if layout.built_staleness() is not None:
        # Made beside the running server (15 s in headless Chromium): pages opened meanwhile boot
        # Python the slower way, and boot.json is written last, so none reads half a build.
        import threading

        from .snapshot import ensure_boot_files

        threading.Thread(target=lambda: print(f"sdlens: {ensure_boot_files(layout)}", flush=True), daemon=True).start()

    context = None
    addresses = []
    if args.lan:
        addresses = lan.lan_addresses() if host in ("0.0.0.0", "::") else [host]
        try:
            cert, key, made = lan.ensure_certificate(args.cert_dir or lan.CERT_DIR, addresses)
            context = lan.server_context(cert, key)
        except (lan.LanError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        server = make_server(host, args.port, args.models, args.quiet, ssl_context=context, layout=layout,
                             hub_endpoint=args.hub_endpoint)
    except OSError as err:
        print(f"error: cannot listen on {host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 2
    port = server.server_address[1]

    if args.lan:
        print(f"sdlens: https://localhost:{port} on this computer; students open one of:", flush=True)
        for address in addresses or ["(no network address found: is this computer on the classroom network?)"]:
            print(f"  https://{address}:{port}" if addresses else f"  {address}")
        if addresses and not lan.print_qr(f"https://{addresses[0]}:{port}"):
            print("  (pip install 'sdlens[lan]' to show a QR code here)")
        print(lan.CERT_WARNING)
        print(f"certificate {'made' if made else 'kept'} in {cert.parent} "
              f"(SHA-256 {lan.fingerprint(cert)[:23]}…)", flush=True)
    else:
        shown_host = "localhost" if host in (*LOCAL_HOSTS, "0.0.0.0", "::") else host
        print(f"sdlens: http://{shown_host}:{port}", flush=True)
        if host not in LOCAL_HOSTS:
            print("note: other machines get plain http here: no WebGPU, no offline copy, one thread; "
                  "python serve.py --lan serves them HTTPS", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def serve_main(argv: list[str] | None = None, prog: str | None = None) -> int:
    layout = Layout.find()
    parser = argparse.ArgumentParser(prog=prog, description="Serve the sdlens app (everything runs in the browser).")
    add_serve_arguments(parser, layout)
    return serve(parser.parse_args(argv), layout)


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write (must be empty or not exist)")
    parser.add_argument("--model", action="append", type=Path, metavar="DIR",
                        help="a model folder to include (repeatable; default: every model of the default models folder)")
    parser.add_argument("--model-url", action="append", default=[], metavar="NAME=URL",
                        help="do not copy model NAME's files: its manifest points at URL/<file> "
                             "(another origin, which must send CORS headers)")
    add_hub_argument(parser)


def site(args, layout: Layout) -> int:
    from .site import SiteError, write_site

    try:
        linked = dict(item.split("=", 1) for item in args.model_url)
    except ValueError:
        print("error: --model-url takes NAME=URL", file=sys.stderr)
        return 2
    models = args.model or None
    try:
        report = write_site(args.out, layout, models, linked, hub_endpoint=args.hub_endpoint)
    except SiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0
