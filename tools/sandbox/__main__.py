"""`python -m tools.sandbox --port 8790`: serve the provider sandbox until interrupted."""

import argparse
import signal
import threading
from types import FrameType

from .server import SandboxServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8790, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    server = SandboxServer(args.port, verbose=args.verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    finally:
        server.sandbox.stopping.set()
        server.server_close()


if __name__ == "__main__":
    main()
