"""Entry point of a pool worker process: ``python -m ipr_gym.pool.worker_main ADDRESS PID``.

Kept apart from ``worker`` so that running it does not import the module twice.
"""

from __future__ import annotations

import pickle
import sys
from multiprocessing.connection import Client

from ipr_gym.pool.worker import serve


def main(address: str, parent: int) -> None:
    """The key, env id and env keywords come pickled on stdin."""
    key, env_id, kwargs = pickle.loads(sys.stdin.buffer.read())
    serve(Client(address, family="AF_UNIX", authkey=key), env_id, kwargs, parent)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
