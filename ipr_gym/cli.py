"""``ipr-gym``: manage datasets and list the registered environments."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ipr_gym.data import DATASETS, InstallError, data_root, data_status, download, install_from
from ipr_gym.data.datasets import resolve_names
from ipr_gym.data.status import dataset_status, format_status


def plain(doc: str | None) -> str:
    """A docstring as ``--help`` text: reST's double backquotes removed."""
    return (doc or "").replace("``", "")


def closed_pipe() -> int:
    """Exit quietly when the reader went away (``ipr-gym data status | head``): stdout is
    pointed at /dev/null so the interpreter's last flush does not fail again; 141 is what a
    shell reports for a writer stopped by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipr-gym", description=plain(__doc__))
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="install, download and inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    names = [*sorted(DATASETS), "all"]

    status = data_commands.add_parser("status", help="what is installed, with counts")
    install = data_commands.add_parser("install", help="install from a local copy")
    install.add_argument("name", choices=names)
    install.add_argument("--from", dest="source", required=True, help="e.g. ../shared/data")
    fetch = data_commands.add_parser("download", help="download from the public homes")
    fetch.add_argument("name", choices=names)
    fetch.add_argument("--mirror", help="base URL laid out like a local copy")
    ensure = data_commands.add_parser(
        "ensure",
        help="install what is missing: from --from where that folder exists, else download",
    )
    ensure.add_argument("name", choices=names)
    ensure.add_argument("--from", dest="source", help="a local copy to prefer, if it exists")
    ensure.add_argument("--mirror", help="base URL laid out like a local copy")
    for sub in (status, install, fetch, ensure):
        sub.add_argument("--data-dir", help="data directory (default: $IPR_GYM_DATA or cache)")

    commands.add_parser("envs", help="list the registered environment ids")
    server = commands.add_parser(
        "sql-server", help="run a private MariaDB with InterCode's Spider databases"
    )
    server.add_argument("--port", type=int, help="loopback port (default: a free one)")
    server.add_argument("--data-dir", help="data directory (default: $IPR_GYM_DATA or cache)")
    site = commands.add_parser(
        "serve",
        help="serve an env over OpenEnv's protocol (ipr/WebShop-v0, ipr/InterCodeSQL-v0, "
        "ipr/ALFWorld-v0), or WebShop's web site (webshop)",
    )
    site.add_argument("env", help="an env id, or 'webshop' for the web site")
    site.add_argument("--host", default="127.0.0.1")
    site.add_argument("--port", type=int, help="default: 8000 for an env, 3000 for the site")
    site.add_argument("--catalog", help="WebShop: embedded|fixture|small|full|PATH")
    site.add_argument("--split", help="the split (the site's default: all)")
    site.add_argument("--data-dir", help="data directory (default: $IPR_GYM_DATA or cache)")
    site.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env constructor option (VALUE read as JSON when it parses)",
    )
    site.add_argument("--max-sessions", type=int, default=64, help="concurrent sessions")
    site.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        help="seconds after which an idle session is closed",
    )
    site.add_argument("--key-file", help="the key that signs snapshot tokens (default: "
                      "$IPR_GYM_SERVE_KEY, else random per server)")  # fmt: skip
    return parser


def env_options(args: argparse.Namespace) -> dict[str, object]:
    """The served env's constructor options from ``--option``, ``--split`` and friends."""
    import json

    options: dict[str, object] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"ipr-gym serve: --option takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    for key in ("catalog", "split", "data_dir"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    return options


def run_quietly(body: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """A command's body, ending quietly when stdout's reader went away."""
    try:
        code = body(argv)
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        return closed_pipe()


def main(argv: Sequence[str] | None = None) -> int:
    return run_quietly(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "envs":
        import gymnasium as gym

        import ipr_gym  # noqa: F401 - registers the ids

        for env_id in sorted(k for k in gym.registry if k.startswith("ipr/")):
            print(env_id)
        return 0
    if args.command == "serve" and args.env == "webshop":
        from ipr_gym.webshop.site import serve

        serve(args.host, args.port or 3000, catalog=args.catalog or "embedded",
              split=args.split or "all", data_dir=args.data_dir)  # fmt: skip
        return 0
    if args.command == "serve":
        try:
            from ipr_gym.service.server import serve as serve_env
        except ImportError as error:
            print(f"ipr-gym serve: {error}; install the server: pip install 'ipr[serve]'",
                  file=sys.stderr)  # fmt: skip
            return 1
        try:
            serve_env(args.env, args.host, 8000 if args.port is None else args.port,
                      options=env_options(args), max_sessions=args.max_sessions,
                      idle_timeout_s=args.idle_timeout, key_file=args.key_file)  # fmt: skip
        except (ValueError, OSError) as error:
            print(f"ipr-gym serve: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command == "sql-server":
        return _sql_server(args.port, args.data_dir)
    root = data_root(args.data_dir)
    if args.data_command == "status":
        print(format_status(data_status(root), root))
        return 0
    try:
        for name in resolve_names(args.name):
            how = args.data_command
            if how == "ensure":
                if dataset_status(name, root).state == "installed":
                    print(f"{name}: installed in {root / name}")
                    continue
                local = args.source and Path(args.source, "README.md").is_file()
                how = "install" if local else "download"
            if how == "install":
                report = install_from(name, args.source, root)
            else:
                report = download(name, root, mirror=args.mirror)
            counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
            print(f"{name}: {report.action} in {report.path} ({counts})")
    except InstallError as error:
        print(f"ipr-gym: {error}", file=sys.stderr)
        return 1
    return 0


def _sql_server(port: int | None, data_dir: str | None) -> int:
    import signal
    import threading

    from ipr_gym.data import dataset_dir
    from ipr_gym.intercode_sql.server import start_server

    server = start_server(dataset_dir("intercode", data_dir) / "ic_spider_dbs.sql", port=port)
    print(f"export IPR_INTERCODE_MYSQL_URL='{server.url()}'", flush=True)
    print("serving the 20 Spider databases read-only; Ctrl-C stops and deletes it", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
