"""A small image-folder data set on disk, made by the tests: train/ and val/ of PNG files in class folders."""
import numpy as np


def write_image_folder(root, classes=3, per_class=24, size=12, seed=0):
    """Each class a colour with noise, so a small CNN can learn it; returns root."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("val", per_class // 3)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            base = np.zeros(3)
            base[c % 3] = 200
            for i in range(count):
                pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
