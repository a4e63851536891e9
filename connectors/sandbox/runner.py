"""`kpi-agent sandbox`: prepare a world, serve it as Salesforce, HubSpot or both, say how to connect.

    with serve(seed=1, size="small", serve_as="split", data_dir=Path(".kpi-agent/sandbox")) as sandbox:
        print(sandbox.config_snippet())

`run_sandbox_command` is what the CLI calls: it serves in the foreground until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from connectors.sandbox.faults import FaultPlan, FaultSpecError
from connectors.sandbox.testing import SERVE_AS, RunningSandbox, running_sandbox
from connectors.sandbox.world.generate import generate_world, size_to_opportunities
from connectors.sandbox.world.jsonl import load_world
from connectors.sandbox.world.store import World, WorldError

DEFAULT_DATA_DIR = Path(".kpi-agent/sandbox")


class SandboxSetupError(Exception):
    """The sandbox cannot start as asked; the message says why and what to change."""


def prepare_world(*, data_dir: Path, world_path: Path | None = None, seed: int | None = None,
                  size: str | int = "small", world_dir: Path | None = None, out: TextIO | None = None) -> World:
    """The world to serve: an existing world file, a directory of JSON Lines, or one generated from a seed.

    A generated world is kept in `data_dir` and reused for the same seed and size (delete the file to
    make it again, e.g. on another day: its dates are relative to the day it was made).
    """
    if world_path is not None:
        return World.open(world_path)
    data_dir.mkdir(parents=True, exist_ok=True)
    if world_dir is not None:
        target = data_dir / f"world-from-{Path(world_dir).resolve().name or 'dir'}.sqlite"
        _say(out, f"Loading the world in {world_dir} ...")
        return load_world(world_dir, target)
    seed = 1 if seed is None else seed
    opportunities = size_to_opportunities(size)
    target = data_dir / f"world-seed{seed}-{str(size).lower()}.sqlite"
    if target.exists():
        try:
            world = World.open(target)
            if world.seed == seed and world.size == str(size):
                _say(out, f"Reusing {target} (made relative to {world.reference_now}; delete it to make it anew)")
                return world
            world.close()
        except (WorldError, OSError, ValueError):
            pass  # an old or broken file: make it again
    _say(out, f"Generating a world of {opportunities:,} opportunities (seed {seed}) into {target} ...")
    # Into a temporary file first: an interrupted run never leaves a half world to be reused.
    partial = target.with_name(target.name + ".partial")
    generate_world(partial, seed=seed, size=size).close()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    os.replace(partial, target)
    return World.open(target)


@contextmanager
def serve(*, world_path: Path | None = None, seed: int | None = None, size: str | int = "small",
          world_dir: Path | None = None, serve_as: str = "split", faults: str | FaultPlan | None = None,
          tls_dir: Path | None = None, host: str = "127.0.0.1", limits_scale: float = 1.0,
          data_dir: Path = DEFAULT_DATA_DIR, port_salesforce: int = 0, port_hubspot: int = 0,
          out: TextIO | None = None) -> Iterator[RunningSandbox]:
    """A running sandbox over the chosen world (world_path, else world_dir, else seed and size).

    Salesforce is served over https with the test CA in `tls_dir` (default: data_dir/tls); HubSpot over
    http, which its client and the agent's config accept.
    """
    if serve_as not in SERVE_AS:
        raise SandboxSetupError(f"serve as {serve_as!r}: use one of {', '.join(SERVE_AS)}")
    plan = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
    world = prepare_world(data_dir=Path(data_dir), world_path=world_path, seed=seed, size=size,
                          world_dir=world_dir, out=out)
    try:
        ports = {"salesforce": port_salesforce, "hubspot": port_hubspot}
        with running_sandbox(world, serve_as=serve_as, faults=plan, tls_dir=tls_dir or Path(data_dir) / "tls",
                             limits_scale=limits_scale, host=host, ports=ports) as sandbox:
            yield sandbox
    finally:
        world.close()


def describe(sandbox: RunningSandbox) -> str:
    """What a person needs to connect: URLs, credentials, the CA to trust, faults, the agent's config."""
    world = sandbox.world
    lines = [f"Sandbox world: {world.path}",
             f"  seed {world.seed}, size {world.size}, {world.count('opportunities'):,} opportunities, "
             f"{world.count('activities'):,} activities, home currency {world.home_currency}, "
             f"dated relative to {world.reference_now}",
             f"  served as: {sandbox.serve_as}", ""]
    if sandbox.salesforce is not None:
        credentials = sandbox.salesforce_credentials()
        lines += [f"Salesforce  {sandbox.salesforce.base_url}",
                  f"  username         {credentials.username}",
                  f"  password         {credentials.password}",
                  f"  security token   {credentials.security_token}",
                  f"  consumer key     {credentials.consumer_key}",
                  f"  consumer secret  {credentials.consumer_secret}",
                  f"  login domain     {sandbox.salesforce_domain()}   (simple-salesforce: domain=...)", ""]
    if sandbox.hubspot is not None:
        lines += [f"HubSpot     {sandbox.hubspot.base_url}",
                  f"  access token     {sandbox.hubspot_token()}   (hubspot.HubSpot(access_token=..., host=...))",
                  ""]
    if sandbox.ca_cert is not None and sandbox.salesforce is not None:
        lines += [f"Trust the test CA (Salesforce is https only): {sandbox.ca_cert}",
                  f"  requests / simple-salesforce: session.verify = \"{sandbox.ca_cert}\"",
                  f"  or for this shell:  export REQUESTS_CA_BUNDLE={sandbox.ca_cert}",
                  f"  curl:  curl --cacert {sandbox.ca_cert} {sandbox.salesforce.base_url}/services/data/",
                  "  (do not add it to the system trust store: its key is not protected)", ""]
    if len(sandbox.faults):
        lines += [f"Faults: {sandbox.faults}", ""]
    lines += ["Config for the agent (paste into config.toml):", "", sandbox.config_snippet().rstrip(), ""]
    return "\n".join(lines)


def run_sandbox_command(seed: int, size: str, world_dir: Path | None, faults: str | None, serve_as: str,
                        data_dir: Path, port_salesforce: int = 0, port_hubspot: int = 0, *,
                        stop: threading.Event | None = None, out: TextIO | None = None,
                        limits_scale: float = 1.0) -> None:
    """Serve in the foreground, print how to connect, block until Ctrl-C (or `stop` is set, for tests).

    Mistakes in the arguments are printed as one line on stderr and exit with status 2.
    """
    out = out or sys.stdout
    try:
        plan = FaultPlan.parse(faults)
        context = serve(seed=seed, size=size, world_dir=world_dir, serve_as=serve_as, faults=plan,
                        data_dir=data_dir, port_salesforce=port_salesforce, port_hubspot=port_hubspot,
                        limits_scale=limits_scale, out=out)
        sandbox = context.__enter__()
    except (FaultSpecError, WorldError, SandboxSetupError, ValueError, FileNotFoundError, OSError) as error:
        print(f"kpi-agent sandbox: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        print(describe(sandbox), file=out)
        print("Serving until Ctrl-C ...", file=out, flush=True)
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print(f"Stopped after {sandbox.log.count():,} requests.", file=out, flush=True)
    finally:
        context.__exit__(None, None, None)


def _say(out: TextIO | None, message: str) -> None:
    if out is not None:
        print(message, file=out, flush=True)
