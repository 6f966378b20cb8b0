"""Install HashiCorp's Consul binary into ~/.local/bin for Binder (run by postBuild).

Downloads the release zip and its SHA256SUMS, checks the digest, and unpacks ``consul``. Binder
images can reach HashiCorp's release site; this project's own machines cannot, which is why the
embedded registry is the default and the tests skip real-Consul runs when no binary is present.
"""

from __future__ import annotations

import hashlib
import io
import platform
import stat
import sys
import urllib.request
import zipfile
from pathlib import Path

VERSION = "1.20.2"
BASE = f"https://releases.hashicorp.com/consul/{VERSION}"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def main() -> int:
    arch = ARCH.get(platform.machine())
    if arch is None:
        print(f"install_consul: no Consul build for {platform.machine()}", file=sys.stderr)
        return 1
    name = f"consul_{VERSION}_linux_{arch}.zip"
    sums = urllib.request.urlopen(f"{BASE}/consul_{VERSION}_SHA256SUMS", timeout=60).read().decode()
    expected = next(line.split()[0] for line in sums.splitlines() if line.endswith(name))
    archive = urllib.request.urlopen(f"{BASE}/{name}", timeout=300).read()
    if hashlib.sha256(archive).hexdigest() != expected:
        print(f"install_consul: checksum mismatch for {name}", file=sys.stderr)
        return 1
    target = Path.home() / ".local" / "bin" / "consul"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zipfile.ZipFile(io.BytesIO(archive)).read("consul"))
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    print(f"install_consul: Consul {VERSION} installed at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
