"""The system programs the test suite uses, installed when missing (Debian, as root).

``tox -e test`` runs this before pytest: MariaDB (InterCode-SQL's MySQL backend), Chromium
and ChromeDriver (the WebShop site in a real browser), a JDK (WebShop's Lucene search, whose
Java child process is launched from its source file). As root it installs what is missing
with apt-get; otherwise it names, in one line, the packages to install and exits 1, so the
tests never run half-equipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

NEEDED = (  # command, Debian package, what uses it
    ("mariadbd", "mariadb-server", "InterCode-SQL on MariaDB"),
    ("chromium", "chromium", "the WebShop site's browser test"),
    ("chromedriver", "chromium-driver", "the WebShop site's browser test"),
    ("javac", "openjdk-17-jdk-headless", "WebShop's Lucene search (a Java child process)"),
)


def missing() -> list[tuple[str, str, str]]:
    return [need for need in NEEDED if shutil.which(need[0]) is None]


def main() -> int:
    absent = missing()
    if not absent:
        print("system packages: all present (" + ", ".join(c for c, _, _ in NEEDED) + ")")
        return 0
    packages = sorted({package for _, package, _ in absent})
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            "the tests need: apt-get install "
            + " ".join(packages)
            + "  (for "
            + "; ".join(f"{c}: {why}" for c, _, why in absent)
            + ")",
            file=sys.stderr,
        )
        return 1
    print("system packages: installing " + " ".join(packages), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    still = missing()
    if still:
        print(f"still missing after apt-get: {[c for c, _, _ in still]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
