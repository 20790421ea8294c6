"""recon."""
from vadkit.models.recon import sendec  # noqa: F401  (registers "sendec")
