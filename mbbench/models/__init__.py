"""The model zoo: MobileNetV3, MobileOne, FastViT, MobileViT v1 and v2, Mobile-Former (26M-508M).

Everything outside this package reaches a model through the registry: :func:`list_models`,
:func:`create_model`, :func:`reparameterize`, :func:`deploy`. Names resolve lazily (PEP 562): the facts
that ``mbbench list`` shows (:func:`zoo_facts`) come from :mod:`mbbench.models.facts` without importing torch.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes

# public name -> module that defines it
_LAZY = {
    "CheckpointError": "mbbench.models.checkpoint",
    "read_state_dict": "mbbench.models.checkpoint",
    "create_model": "mbbench.models.factory",
    "find_matching_model": "mbbench.models.factory",
    "model_stats": "mbbench.models.factory",
    "count_macs": "mbbench.models.profile",
    "count_params": "mbbench.models.profile",
    "macs_by_module": "mbbench.models.profile",
    "DEPLOY_TRANSFORMS": "mbbench.models.registry",
    "ModelInfo": "mbbench.models.registry",
    "UnknownModelError": "mbbench.models.registry",
    "deploy": "mbbench.models.registry",
    "deploy_transforms": "mbbench.models.registry",
    "is_reparameterized": "mbbench.models.registry",
    "list_models": "mbbench.models.zoo",
    "model_info": "mbbench.models.zoo",
    "reparameterize": "mbbench.models.registry",
    "resolve_name": "mbbench.models.zoo",
    "FAMILIES": "mbbench.models.facts",
    "FAMILY_TABLE": "mbbench.models.facts",
    "STUDY_OPSETS": "mbbench.models.facts",
    "zoo_facts": "mbbench.models.facts",
    "FOLD_FORMS": "mbbench.models.facts",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
