"""Register tealedger's local networks with brownie (run inside brownie's environment).

`--free-port` moves both networks to ports the OS reports free, so brownie's test run never
talks to a node someone else left on a well-known port.
"""

import socket
import subprocess
import sys
from pathlib import Path

BROWNIE = str(Path(sys.executable).with_name("brownie"))
MNEMONIC = "mnemonic=test test test test test test test test test test test junk"
NETWORKS = {
    "tealedger-anvil": ["cmd=anvil", "chain_id=31337", "evm_version=shanghai"],
    "tealedger-ganache": ["cmd=ganache", "chain_id=1337", "evm_version=shanghai"],
}
COMMON = ["host=http://127.0.0.1", MNEMONIC, "accounts=10"]


def free_port():
    """A loopback port the OS just reported free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def brownie(*args):
    """Run a brownie CLI command quietly."""
    return subprocess.run([BROWNIE, *args], check=True, capture_output=True, text=True)


def main():
    """Add each network unless brownie knows it; optionally give each a free port."""
    listed = brownie("networks", "list").stdout
    for name, settings in NETWORKS.items():
        if name not in listed:
            brownie("networks", "add", "Development", name, *settings, *COMMON, "port=8555")
        if "--free-port" in sys.argv:
            brownie("networks", "modify", name, f"port={free_port()}")


if __name__ == "__main__":
    main()
