"""Images read from disk as they are needed: ROOT/train/<class>/*.png and ROOT/val/<class>/*.png (and
ROOT/test/... when there is one), the layout torchvision's ImageFolder reads. DataLoader workers decode and
augment them (a random crop and flip, drawn per sample from (seed, epoch, position): runkit.data.resumable).
"""
import os

from runkit.data import DataMissing, SampleData
from runkit.training.registry import DATA


@DATA.register("image_folder")
class ImageFolder(SampleData):
    def __init__(self, root=None, image_size=32, augment=True, batch_size=64, val_batch_size=None, num_workers=2,
                 seed=0, pin_memory=False):
        super().__init__(batch_size, val_batch_size, num_workers, seed, pin_memory)
        if root is None:
            raise ValueError("image_folder.root is not set: bind it to a folder with train/ and val/ inside")
        self.root, self.image_size, self.augment = os.path.abspath(root), image_size, augment
        missing = [split for split in ("train", "val") if not os.path.isdir(os.path.join(self.root, split))]
        if missing:
            raise DataMissing(f"{self.root} has no {' or '.join(missing)} folder: image_folder.root needs "
                              "train/<class>/*.png and val/<class>/*.png")
        self.classes = sorted(e.name for e in os.scandir(os.path.join(self.root, "train")) if e.is_dir())
        self.n_classes, self.input_shape = len(self.classes), (3, image_size, image_size)

    def datasets(self):
        from torchvision import datasets, transforms
        base = [transforms.Resize((self.image_size, self.image_size)), transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
        random = [transforms.RandomCrop(self.image_size, padding=self.image_size // 8),
                  transforms.RandomHorizontalFlip()] if self.augment else []
        train = transforms.Compose(base[:1] + random + base[1:])
        plain = transforms.Compose(base)
        sets = {"train": datasets.ImageFolder(os.path.join(self.root, "train"), train),
                "val": datasets.ImageFolder(os.path.join(self.root, "val"), plain)}
        if os.path.isdir(os.path.join(self.root, "test")):
            sets["test"] = datasets.ImageFolder(os.path.join(self.root, "test"), plain)
        return sets
