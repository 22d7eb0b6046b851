"""The inputs a precision variant is calibrated and judged on: seeded random tensors, or a folder of images
prepared the way each family was trained.

Calibration and fidelity never share an input: random calibration and random fidelity inputs come from two
different seeded streams, and from a folder the images are shuffled (seeded) and split, the first
``calibration_size`` for calibration and the next ``fidelity_inputs`` held out for the fidelity check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mbbench._io import file_kind
from mbbench.errors import UserInputError, first_line
from mbbench.models.facts import FAMILY_TABLE

RANDOM = "random"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")
@dataclass(frozen=True)
class Preprocessing:
    """How a family's evaluation prepared an image: shorter side resized to ``resolution / crop_fraction``
    (``interpolation``), a center crop of ``resolution``, RGB scaled to [0, 1], then ``(x - mean) / std``
    when a mean is given."""

    crop_fraction: float
    interpolation: str
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


#: Each family's own evaluation recipe (the facts, and where they come from: :data:`mbbench.models.facts.FAMILY_TABLE`).
PREPROCESSING: dict[str, Preprocessing] = {
    name: Preprocessing(f.crop_fraction, f.interpolation, f.mean, f.std) for name, f in FAMILY_TABLE.items()
}
#: A module that is not a registry model: the common ImageNet recipe.
DEFAULT_PREPROCESSING = PREPROCESSING["mobileone"]


@dataclass
class Inputs:
    """Feeds (each ``(batch, 3, resolution, resolution)`` float32) for calibration and for the fidelity check."""

    calibration: list[np.ndarray]
    fidelity: list[np.ndarray]
    #: ``random`` or ``images:<folder>``: what the manifest records as ``calibration`` / ``fidelity_source``
    source: str

    @property
    def fidelity_count(self) -> int:
        return sum(len(feed) for feed in self.fidelity)


def check_calibration(value: object) -> str | Path:
    """``"random"`` or an existing folder holding at least one image (checked before any work)."""
    if value == RANDOM:
        return RANDOM
    if not isinstance(value, (str, Path)) or not str(value):
        raise UserInputError(f"calibration must be 'random' or a folder of images, not {value!r}")
    folder = Path(value)
    if not folder.is_dir():
        raise UserInputError(f"calibration folder '{folder}' does not exist or is not a folder: give a folder of "
                             "images, or 'random'")  # fmt: skip
    if not image_files(folder):
        raise UserInputError(f"calibration folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return folder


def check_enough_images(folder: Path, calibration_size: int, batch: int) -> None:
    """The folder must hold ``calibration_size`` images for calibration and a batch more for the fidelity check."""
    count = len(image_files(folder))
    if count < calibration_size + batch:
        raise UserInputError(
            f"calibration folder '{folder}' holds {count} images: calibration uses {calibration_size} and the "
            f"fidelity check needs at least {batch} more it has not seen; add images or lower --calibration-size"
        )


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not recursive), by name.

    An entry named like an image that is not a regular file (a FIFO, which would hang the read, a device, a
    folder, a dangling link) is refused, never skipped without a word.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise UserInputError(f"cannot read calibration folder '{folder}': {exc.strerror}") from None
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    for path in images:
        kind = file_kind(path)
        if kind is not None:
            raise UserInputError(f"calibration folder '{folder}': '{path.name}' is {kind}, not an image file; "
                                 "remove it or choose another folder")  # fmt: skip
    return images


def load_image(path: Path, resolution: int, prep: Preprocessing) -> np.ndarray:
    """One image as ``(3, resolution, resolution)`` float32, prepared as ``prep`` says."""
    from PIL import Image, UnidentifiedImageError

    resample = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[prep.interpolation]
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            short = max(resolution, round(resolution / prep.crop_fraction))
            scale = short / min(width, height)
            size = (max(short, round(width * scale)), max(short, round(height * scale)))
            image = image.resize(size, resample)
            left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
            image = image.crop((left, top, left + resolution, top + resolution))
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise UserInputError(f"cannot read image '{path}': {first_line(exc, 120)}") from None
    if prep.mean is not None:
        array = (array - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _feeds(samples: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """Samples stacked into feeds of ``batch`` (a trailing incomplete batch is dropped: the graph's batch is fixed)."""
    return [np.stack(samples[i:i + batch]) for i in range(0, len(samples) - batch + 1, batch)]


def make_inputs(
    calibration: str | Path, *, family: str | None, resolution: int, batch: int, calibration_size: int,
    fidelity_inputs: int, seed: int, need_calibration: bool = True,
) -> Inputs:  # fmt: skip
    """The calibration feeds (``calibration_size`` samples) and the held-out fidelity feeds (``fidelity_inputs``).

    ``random``: standard-normal tensors (what bench feeds, like a normalised image) from two seeded streams.
    A folder: its images shuffled by ``seed``; calibration takes the first ``calibration_size``, fidelity up to
    ``fidelity_inputs`` of the rest (fewer when the folder runs out; at least one batch must be left over).
    """
    shape = (3, resolution, resolution)
    if calibration == RANDOM:
        streams = [np.random.default_rng([seed, purpose]) for purpose in (1, 2)]
        batches = [-(-count // batch) for count in (calibration_size if need_calibration else 0, fidelity_inputs)]
        calibrate, fidelity = (
            [rng.standard_normal((batch, *shape), dtype=np.float32) for _ in range(n)]
            for rng, n in zip(streams, batches)
        )
        return Inputs(list(calibrate), list(fidelity), RANDOM)
    folder = Path(calibration)
    files = image_files(folder)
    np.random.default_rng(seed).shuffle(files)
    used = calibration_size if need_calibration else 0
    check_enough_images(folder, used, batch)
    held_out = files[used:used + fidelity_inputs]
    prep = PREPROCESSING.get(family or "", DEFAULT_PREPROCESSING)
    calibrate = [load_image(p, resolution, prep) for p in files[:used]]
    fidelity = [load_image(p, resolution, prep) for p in held_out]
    if need_calibration and len(calibrate) < batch:
        raise UserInputError(f"--calibration-size {used} is less than one batch of {batch}: raise it")
    return Inputs(_feeds(calibrate, batch), _feeds(fidelity, batch), f"images:{folder}")
