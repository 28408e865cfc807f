"""`reportqa serve --workers N`: N server processes, each with its own listening socket on the port.

uvicorn's own supervisor binds one socket and hands it to every worker. A burst of new
connections wakes the workers together and the first one to run accepts all that are
waiting: measured here with 16 keep-alive clients, the split was 14:2 in some runs and two
workers served 124 requests/s instead of ~290. So each worker binds its own socket with
SO_REUSEPORT and the kernel spreads new connections over the sockets by a hash of their
addresses. uvicorn's supervisor still starts, health-checks and stops the workers, and on
SIGHUP replaces them one by one (each new worker ready before the old one stops).

One cost: connections still in a stopping worker's accept queue are reset unless the
kernel migrates them (`net.ipv4.tcp_migrate_req = 1`, Linux 5.14+); with keep-alive
clients the window is the moment a worker is replaced.
"""
from __future__ import annotations

import errno
import socket

import uvicorn
from uvicorn.supervisors import multiprocess


class PortInUse(RuntimeError):
    pass


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other sockets of this user may bind too."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port_free(host: str, port: int) -> None:
    """Refuse a port someone already listens on. SO_REUSEPORT would otherwise let this server
    join another one's port (any server of the same user, e.g. a second `reportqa serve`)."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use") from None
        raise
    finally:
        probe.close()


class OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker that listens on a socket of its own instead of the supervisor's."""

    def target(self, sockets=None) -> None:  # runs in the worker process
        super().target([reuse_port_socket(self.config.host, self.config.port)])


def serve_workers(app: str, workers: int, host: str, port: int, log_level: str) -> None:
    """Run ``workers`` processes of the app factory ``app`` ("module:function") until SIGINT/SIGTERM."""
    check_port_free(host, port)
    config = uvicorn.Config(app, factory=True, workers=workers, host=host, port=port, log_level=log_level,
                            access_log=False)
    # The supervisor makes its workers with the module's `Process`; this process only supervises,
    # so the worker class is swapped here rather than copying the supervisor's restart logic.
    multiprocess.Process = OwnSocketProcess
    multiprocess.Multiprocess(config, sockets=[]).run()
