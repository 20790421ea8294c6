"""Models: plain ``nn.Module`` classes, picked by name from one registry.

``MODELS.get(name)(**kwargs)`` builds a model; ``list_models()`` lists the names.
"""

from vadkit.registry import Registry

MODELS: Registry = Registry("model")


def register_model(name: str):
    return MODELS.register(name)


def list_models() -> list[str]:
    _import_all()
    return MODELS.list()


def get_model(name: str, **kwargs):
    _import_all()
    return MODELS.get(name)(**kwargs)


def _import_all() -> None:
    """Import the model modules so that their ``@register_model`` decorators run."""
    import importlib

    for module in ("vadkit.models.weak", "vadkit.models.recon", "vadkit.models.i3d"):
        importlib.import_module(module)
