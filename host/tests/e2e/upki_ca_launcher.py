"""Runs the real uPKI CA (PyPI `upki-ca`, pinned in .ci/run and upki_ca.rs) for the tests.

The wheel has no entry point, and the project's own server script binds 0.0.0.0, prompts and
prints its seed. This launcher does what that script's `start` does, from the package's own
classes, with what a test needs instead:

- everything from arguments (data dir, host, main port, seed), written into the CA's config
  (`ca.config.yml` in the data dir) before it starts, so that a restart on the same data dir
  keeps the CA key and the certificates it issued, and uses the same ports and seed;
- loopback only: any other host is refused;
- one line on stdout, `upki-ca ready <main> <registration>`, once both sockets are bound;
- SIGTERM (or SIGINT) stops both listeners and exits 0; so does the death of the process that
  started it.

The CA keeps its key under $HOME/.upki/ca whatever the data dir: run it with HOME set to a
directory of its own (upki_ca.rs gives it `<home>` and the data dir `<home>/.upki/ca`).

Usage: python upki_ca_launcher.py --data-dir DIR --host 127.0.0.1 --port P --seed SEED
(the registration port is P + 1).

Not named upki_ca.py: Python puts this directory first on the path, and the file would shadow
the package it imports.
"""

import argparse
import ipaddress
import os
import signal
import sys
import threading

import yaml
from upki_ca.ca.authority import Authority
from upki_ca.connectors.zmq_listener import ZMQListener
from upki_ca.connectors.zmq_register import ZMQRegister
from upki_ca.core.upki_logger import UpkiLogger
from upki_ca.storage.file_storage import FileStorage
from upki_ca.utils.config import Config


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", required=True)
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error(f"--host must be a loopback address, not {args.host}")
    return args


def write_config(path, host, port, seed):
    """The CA's config with our host, port and seed, other keys as the CA left them."""
    config = {}
    if os.path.exists(path):
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    config.update({"host": host, "port": port, "seed": seed})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(config, f, default_flow_style=False)


def main():
    args = arguments()
    data_dir = os.path.abspath(args.data_dir)
    config_path = os.path.join(data_dir, "ca.config.yml")
    write_config(config_path, args.host, args.port, args.seed)

    stop = threading.Event()
    # Installed before anything starts, so that a SIGTERM during key generation still ends
    # the process cleanly once start-up is over.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    UpkiLogger.initialize(log_dir=os.path.join(data_dir, "logs"))
    config = Config(config_path)
    config.load()
    storage = FileStorage(data_dir)
    storage.initialize()
    # Loads the CA key and certificate from $HOME/.upki/ca, or generates them on first start.
    authority = Authority.get_instance()
    authority.initialize(storage=storage)

    host, port = config.get_host(), config.get_port()
    registration = ZMQRegister(host=host, port=port + 1, seed=config.get_seed(), authority=authority)
    main_port = ZMQListener(host=host, port=port, storage=storage)
    listeners = [registration, main_port]
    registration.initialize()
    registration.bind()
    main_port.initialize()
    main_port.initialize_authority()
    main_port.bind()
    for listener in listeners:
        listener.start()
    print(f"upki-ca ready {main_port.address} {registration.address}", flush=True)

    # The test process that started us may die without killing us (Ctrl-C reaches its
    # process group, not ours): then we are re-parented, and stop.
    parent = os.getppid()
    while not stop.wait(1):
        if os.getppid() != parent:
            break
    # Each listener wakes from its receive timeout (5 s) to see it must stop: stop both at
    # once rather than one after the other.
    stoppers = [threading.Thread(target=listener.stop) for listener in listeners]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    storage.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
