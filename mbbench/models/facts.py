"""The zoo's fixed facts as data (standard library only), so ``mbbench list`` answers without importing torch.

Parameters and MACs are fixed per (model, resolution); counting them means building every model (6-12 s).
This table holds them at each model's default resolution. ``tests/models/test_facts.py`` builds every registry
model and checks each figure here, so the table cannot go stale: when a model changes, regenerate it with
``python -c "from mbbench.models.facts import generate; print(generate())"`` and paste the output.
"""

from __future__ import annotations

from dataclasses import dataclass

# name: (family, default resolution, re-parameterizable, params of the deploy form, params of the training
# form, MACs of the deploy form at the default resolution). Registry order: family, then size.
_FACTS: dict[str, tuple[str, int, bool, int, int, int]] = {
    "mobilenetv3-large": ("mobilenetv3", 224, False, 5_483_032, 5_483_032, 216_589_760),
    "mobilenetv3-small": ("mobilenetv3", 224, False, 2_542_856, 2_542_856, 56_510_400),
    "mobileone-s0": ("mobileone", 224, True, 2_078_504, 5_293_272, 275_110_400),
    "mobileone-s1": ("mobileone", 224, True, 4_764_840, 4_825_192, 825_057_024),
    "mobileone-s2": ("mobileone", 224, True, 7_808_168, 7_884_648, 1_298_426_496),
    "mobileone-s3": ("mobileone", 224, True, 10_078_312, 10_170_600, 1_895_790_592),
    "mobileone-s4": ("mobileone", 224, True, 14_838_352, 14_951_248, 2_979_269_760),
    "fastvit-t8": ("fastvit", 256, True, 3_996_040, 4_026_232, 685_160_448),
    "fastvit-t12": ("fastvit", 256, True, 7_508_840, 7_553_704, 1_390_944_256),
    "fastvit-s12": ("fastvit", 256, True, 9_428_712, 9_473_576, 1_793_597_440),
    "fastvit-sa12": ("fastvit", 256, True, 11_545_320, 11_580_968, 1_937_219_584),
    "fastvit-sa24": ("fastvit", 256, True, 21_501_288, 21_554_216, 3_762_069_504),
    "fastvit-sa36": ("fastvit", 256, True, 31_457_256, 31_527_464, 5_586_919_424),
    "fastvit-ma36": ("fastvit", 256, True, 43_984_632, 44_068_004, 7_814_930_432),
    "mobilevit-xxs": ("mobilevit", 256, False, 1_272_024, 1_272_024, 407_364_096),
    "mobilevit-xs": ("mobilevit", 256, False, 2_317_848, 2_317_848, 1_025_911_808),
    "mobilevit-s": ("mobilevit", 256, False, 5_578_632, 5_578_632, 2_000_831_488),
    "mobilevitv2-050": ("mobilevitv2", 256, False, 1_370_593, 1_370_593, 464_594_944),
    "mobilevitv2-075": ("mobilevitv2", 256, False, 2_866_009, 2_866_009, 1_027_980_288),
    "mobilevitv2-100": ("mobilevitv2", 256, False, 4_901_841, 4_901_841, 1_812_090_880),
    "mobilevitv2-125": ("mobilevitv2", 256, False, 7_478_089, 7_478_089, 2_816_926_720),
    "mobilevitv2-150": ("mobilevitv2", 256, False, 10_594_753, 10_594_753, 4_042_487_808),
    "mobilevitv2-175": ("mobilevitv2", 256, False, 14_251_833, 14_251_833, 5_488_774_144),
    "mobilevitv2-200": ("mobilevitv2", 256, False, 18_449_329, 18_449_329, 7_155_785_728),
    "mobileformer-26m": ("mobileformer", 224, False, 3_232_788, 3_232_788, 23_550_208),
    "mobileformer-52m": ("mobileformer", 224, False, 3_469_092, 3_469_092, 49_290_496),
    "mobileformer-96m": ("mobileformer", 224, False, 4_585_252, 4_585_252, 92_017_040),
    "mobileformer-151m": ("mobileformer", 224, False, 7_595_828, 7_595_828, 146_249_168),
    "mobileformer-214m": ("mobileformer", 224, False, 9_425_920, 9_425_920, 208_374_240),
    "mobileformer-294m": ("mobileformer", 224, False, 11_422_648, 11_422_648, 286_732_160),
    "mobileformer-508m": ("mobileformer", 224, False, 13_976_976, 13_976_976, 498_467_680),
}

#: MobileViT v2's exactly equal patch unfold/fold forms, named by the ONNX graph each produces (see
#: :mod:`mbbench.models.mobilevitv2`): ``col2im`` (a one-hot strided Conv, then ``Col2Im``), ``unfold`` (ml-cvnets'
#: own ``F.unfold``/``F.fold``: Gather, then ``Col2Im``), ``pixel`` (the Conv, then ``DepthToSpace``), ``reshape``
#: (6-D reshape/transpose both ways).
FOLD_FORMS: tuple[str, ...] = ("col2im", "unfold", "pixel", "reshape")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Family:
    """What is fixed about a model family, in one place: every stage that needs a family fact reads it here.

    ``crop_fraction``, ``interpolation``, ``mean`` and ``std`` are how the family's own evaluation prepared an
    image: the shorter side resized to ``resolution / crop_fraction``, a center crop, RGB in [0, 1], then
    ``(x - mean) / std`` when a mean is given (INT8 calibration from a folder of images uses them).
    """

    name: str
    title: str
    #: the opset the original study exported the family at (``mbbench run``'s preset); None: not in the study
    study_opset: int | None
    #: the matplotlib colour map a family's lines and points are drawn from (none is red: red marks flags)
    colormap: str
    crop_fraction: float
    interpolation: str
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD


#: The families in registry order (the order of ``mbbench list`` and of every report).
#: Preprocessing, from each family's official evaluation: torchvision's MobileNetV3 weights (resize 256, crop 224,
#: bilinear, ImageNet mean/std); apple/ml-mobileone (the same, 0.875); apple/ml-fastvit (timm's transform with its
#: crop_pct 0.9, bicubic); apple/ml-cvnets for MobileViT v1 and v2 (no mean/std: RGB in [0, 1]; 256 of 288,
#: bilinear for v1, bicubic for v2); Mobile-Former has no official weights: timm's defaults (0.875, bicubic).
FAMILY_TABLE: dict[str, Family] = {
    family.name: family
    for family in (
        Family("mobilenetv3", "MobileNetV3", None, "Greys", 224 / 256, "bilinear"),
        Family("mobileone", "MobileOne", 12, "Blues", 224 / 256, "bilinear"),
        Family("fastvit", "FastViT", None, "Purples", 0.9, "bicubic"),
        Family("mobilevit", "MobileViT", 17, "Oranges", 256 / 288, "bilinear", None, None),
        Family("mobilevitv2", "MobileViT v2", 18, "Greens", 256 / 288, "bicubic", None, None),
        Family("mobileformer", "Mobile-Former", None, "YlOrBr", 224 / 256, "bicubic"),
    )
}

#: The registry's families, in registry order.
FAMILIES: tuple[str, ...] = tuple(FAMILY_TABLE)
#: The original study's opset per family (MobileViT v2 failed to export at 18 there, through Col2Im).
STUDY_OPSETS: dict[str, int] = {f.name: f.study_opset for f in FAMILY_TABLE.values() if f.study_opset is not None}


def family_of_name(name: str) -> str | None:
    """The family a model name belongs to by its prefix (``mobilevitv2-050`` -> ``mobilevitv2``), or None."""
    lowered = name.lower()
    for family in sorted(FAMILIES, key=len, reverse=True):  # every "mobilevitv2-*" also starts with "mobilevit"
        if lowered.startswith(family):
            return family
    return None


def zoo_facts(family: str | None = None) -> list[dict]:
    """One dict per registry model (name, family, params, params_train, macs, resolution, reparameterizable)."""
    if family is not None and family not in FAMILIES:
        from mbbench.errors import UserInputError

        raise UserInputError(f"unknown family '{family}': choose one of {', '.join(FAMILIES)}")
    return [
        {
            "name": name,
            "family": fam,
            "params": params,
            "params_train": params_train,
            "macs": macs,
            "resolution": resolution,
            "reparameterizable": reparameterizable,
        }
        for name, (fam, resolution, reparameterizable, params, params_train, macs) in _FACTS.items()
        if family is None or fam == family
    ]


def generate() -> str:
    """The ``_FACTS`` literal computed from the registry (builds every model on the meta device; imports torch)."""
    from mbbench.models import list_models, model_info, model_stats

    lines = []
    for name in list_models():
        info, stats = model_info(name), model_stats(name)
        lines.append(
            f'    "{name}": ("{info.family}", {info.default_resolution}, {info.reparameterizable}, '
            f'{stats["params"]:_}, {stats["params_train"]:_}, {stats["macs"]:_}),'
        )
    return "\n".join(lines)
