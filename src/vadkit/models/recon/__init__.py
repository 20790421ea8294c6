"""recon."""
from vadkit.models.recon import sendec  # noqa: F401  (registers "sendec")
from vadkit.models.recon import state  # noqa: F401  (registers "state", "state_cpu")
