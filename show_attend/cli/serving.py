"""``show-attend serve`` (the web page and HTTP API) and ``show-attend benchmark --serving``."""
from __future__ import annotations

from typing import Optional, Sequence

from .common import UsageError, captioner_from_models, command, parser_for, report_result

Argv = Optional[Sequence[str]]


# ---------------------------------------------------------------------------------------- serve
def require_serve_extra() -> None:
    """fastapi, uvicorn and python-multipart, or a UsageError that says how to get them."""
    import importlib.util

    modules = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",), "python-multipart": ("python_multipart", "multipart")}
    missing = [name for name, names in modules.items() if all(importlib.util.find_spec(m) is None for m in names)]
    if missing:
        raise UsageError(f"serving needs {', '.join(missing)}: pip install \"show-attend[serve]\"")


@command
def serve_main(argv: Argv = None, prog: Optional[str] = None) -> int:
    import sys

    from ..serve.settings import ServeSettings

    parser = parser_for("A web page and HTTP API: upload an image, see its caption, the beam's alternatives and "
                        "each word's attention (POST /api/caption for JSON, GET /api/health).", prog=prog)
    from ..zoo import DEFAULT_MODEL

    parser.add_argument("--model", action="append", default=None, metavar="PATH",
                        help="a shipped model's name, an exported model folder (may hold an ensemble), a Hub id, or "
                             "a checkpoint / run folder; repeat for an ensemble of checkpoints (default: the shipped "
                             f"{DEFAULT_MODEL}, trained on Flickr8k photos)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--encoder-weights", default=None, help="the VGG16 weights file (if it moved)")
    parser.add_argument("--device", default=None)
    defaults = ServeSettings()
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch,
                        help="concurrent requests decoded together, at most")
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms,
                        help="how long a request waits for others to share its batch")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb)
    parser.add_argument("--max-megapixels", type=float, default=defaults.max_pixels / 1e6,
                        help="larger images (decompression bombs) are refused, from their header")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="also answer requests for this Host name (default: localhost, 127.0.0.1, ::1 and --host)")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument("--decode-workers", type=int, default=0, help="threads opening uploads (0: one per core)")
    parser.add_argument("--api-docs", action="store_true", help="serve /docs and /openapi.json")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    require_serve_extra()
    from ..serve.app import create_app
    from ..serve.server import is_loopback, run_server

    settings = ServeSettings(max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_megapixels * 1e6),
                             max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, api_docs=args.api_docs,
                             max_connections=args.max_connections, decode_workers=args.decode_workers,
                             allowed_hosts=(*args.allow_host, args.host))
    captioner = captioner_from_models(args.model or [DEFAULT_MODEL], args.device, args.encoder_weights)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the model "
              "(there is no authentication); the default 127.0.0.1 keeps it local", file=sys.stderr)
    print(f"serving {', '.join(captioner.names)} ({captioner.attention_note}; {captioner.device}) on "
          f"http://{args.host}:{args.port}/  (POST /api/caption, GET /api/health; Ctrl-C stops)", flush=True)
    run_server(create_app(captioner, settings), args.host, args.port, args.log_level)
    return 0


def serving_benchmark_main(args) -> int:
    from ..benchmark.serving import ServingSettings, format_serving, serving_benchmark
    from ..utils.runtime import resolve_device

    require_serve_extra()
    if args.hostile:
        from ..benchmark.hostile import HostileSettings, format_hostile, hostile_benchmark

        hostile = HostileSettings(requests=args.requests, bomb_clients=args.bomb_clients,
                                  idle_connections=args.idle_connections, connect_seconds=args.connect_seconds,
                                  device=str(resolve_device(args.device)))
        return report_result(hostile_benchmark(args.serving, hostile), format_hostile, args.json)
    settings = ServingSettings.quick() if args.quick else ServingSettings()
    settings.clients, settings.device = tuple(args.clients), str(resolve_device(args.device))
    return report_result(serving_benchmark(args.serving, settings), format_serving, args.json)
