"""Build the simulator with every service that exists (Microsoft, Jamf Pro, Entra sign-in)."""

from simulator.core import Simulator

SERVICE_FACTORIES = []  # callables returning a service; each service module registers itself here


def _load_services():
    # Import the service modules so they register their factories; a missing one is skipped.
    for module in ("simulator.microsoft", "simulator.jamf", "simulator.oidc"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def create_simulator(host="127.0.0.1", port=0, cert_dir=None, seed=None):
    _load_services()
    sim = Simulator(host=host, port=port, cert_dir=cert_dir, seed=seed)
    for factory in SERVICE_FACTORIES:
        sim.mount(factory())
    return sim
