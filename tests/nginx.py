"""A real nginx on `nginx.conf.example`, for tests/test_nginx.py and tests/test_cluster.py.

Two ways, both from the example as written: the whole file with only its
certificate paths substituted, for `nginx -t`; and a runnable config made of
the example's routing and locations (between its ``--- routing`` and
``--- locations`` markers), listening on loopback in front of real
processes.  Responses name the process that answered in `UPSTREAM`.
"""

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.processes import ROOT, free_port

EXAMPLE = ROOT / "nginx.conf.example"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UPSTREAM = "X-Test-Upstream"
"""A response header naming the process that answered."""


def _substitute(text: str, pattern: str, replacement: str, count: int = 1) -> str:
    """`text` with the `count` matches of `pattern` replaced, or AssertionError."""
    found = len(re.findall(pattern, text, flags=re.MULTILINE))
    assert found == count, f"nginx.conf.example: expected {count} match(es) of {pattern!r}, found {found}"
    return re.sub(pattern, replacement, text, flags=re.MULTILINE)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, made with openssl."""
    certificate, key = folder / "localhost.pem", folder / "localhost.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )
    return certificate, key


def example_with_certificate(certificate: Path, key: Path) -> str:
    """nginx.conf.example with its certificate paths pointing at these files."""
    text = _substitute(EXAMPLE.read_text(), r"^(\s*ssl_certificate)\s+\S+;", rf"\1 {certificate};")
    return _substitute(text, r"^(\s*ssl_certificate_key)\s+\S+;", rf"\1 {key};")


def nginx_command(folder: Path, config: Path, directives: str = "") -> list[str]:
    """nginx with its prefix, pid file and error log in `folder`, so no root-owned path is touched."""
    (folder / "logs").mkdir(exist_ok=True)
    directives = f"pid {folder}/nginx.pid; error_log {folder}/logs/error.log; {directives}"
    return [NGINX, "-p", f"{folder}/", "-c", str(config), "-g", directives]


def _marked(text: str, part: str) -> str:
    found = re.search(rf"# --- {part}: begin[^\n]*\n(.*?)\n\s*# --- {part}: end", text, re.S)
    assert found is not None, f"nginx.conf.example has no '--- {part}' markers"
    return found.group(1)


def nginx_config(workdir: Path, port: int, upstreams: list[int]) -> str:
    """A runnable config: the example's routing and locations, on loopback ports."""
    example = (ROOT / "nginx.conf.example").read_text()
    routing = _marked(example, "routing")
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+(.*);$", routing, re.M)
    assert len(servers) >= 2 and len(set(servers)) == 1, "the example's upstream changed shape"
    routing = re.sub(r"^\s*server 127\.0\.0\.1:\d+.*;\n", "", routing, flags=re.M)
    routing = routing.replace(
        "keepalive", "".join(f"server 127.0.0.1:{p}{servers[0]};\n        " for p in upstreams) + "keepalive"
    )
    temp = " ".join(
        f"{kind}_temp_path {workdir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/nginx-access.log;
    {temp}
{routing}
    server {{
        listen 127.0.0.1:{port};
        add_header {UPSTREAM} $upstream_addr always;
{_marked(example, "locations")}
    }}
}}
"""


class Nginx:
    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "nginx.conf"
        self.config.write_text(nginx_config(workdir, self.port, upstreams))
        self.process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(self.config)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.communicate()[1].decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
