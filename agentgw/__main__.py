"""Command line: ``agentgw serve [--port N]``, ``agentgw validate``, ``agentgw chat <agentKey>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from agentgw.errors import SettingsError
from agentgw.settings import Settings, load_settings


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"agentgw: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiohttp's access log at INFO is one line per request; keep it.


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from agentgw.app import build_app
    from agentgw.eventloop import GatewayLoop
    from agentgw.gctune import serve_gc

    settings = _settings_or_exit()
    if args.port is not None:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update={"port": args.port})}
        )
    _configure_logging(settings.log_level)
    try:
        app = build_app(settings)
    except SettingsError as exc:
        print(f"agentgw: {exc}", file=sys.stderr)
        return 2
    serve_gc(app)
    web.run_app(
        app,
        host=args.host or settings.server.host,
        port=settings.server.port,
        print=None,
        loop=GatewayLoop(),  # provider reads before the work waiting (agentgw.eventloop)
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from agentgw.catalog.validate import validate_folders

    settings = _settings_or_exit()
    problems = validate_folders(settings)
    for problem in problems:
        print(f"{problem.file}: {problem.field}: {problem.reason}")
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print("all definitions are valid")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from agentgw.cli_chat import chat

    return asyncio.run(chat(args.agent, args.message, args.url))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentgw", description="Definition-driven LLM agent gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: server.port, 8080)")
    serve.add_argument("--host", default=None, help="bind address (default: server.host)")
    serve.set_defaults(func=cmd_serve)
    validate = sub.add_parser("validate", help="check every definition folder; exit 1 on any problem")
    validate.set_defaults(func=cmd_validate)
    chat = sub.add_parser("chat", help="stream one run of an agent in the terminal")
    chat.add_argument("agent", help="agent key")
    chat.add_argument("message", nargs="?", default=None, help="message (default: read stdin)")
    chat.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    chat.set_defaults(func=cmd_chat)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
