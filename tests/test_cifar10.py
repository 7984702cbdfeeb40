"""cifar10 reads the tiny archive from tests/cifar_archive.py; downloads come from a server on 127.0.0.1 only."""
import functools
import hashlib
import http.server
import tarfile
import threading

import gin
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets.cifar

import runkit.data.cifar10 as cifar_module
from cifar_archive import write_cifar_archive
from runkit.data import DataMissing
from runkit.data.cifar10 import CIFAR10, MEAN, STD, crop_and_flip
from runkit.errors import BadInput
from runkit.training.registry import DATA


def cifar10(**kwargs):
    """The splits as tensors: {"train": (x, y), "val": (x, y), "test": (x, y)}."""
    return CIFAR10(**kwargs).load()


@pytest.fixture
def archive(tmp_path):
    return tmp_path, write_cifar_archive(tmp_path, per_batch=20)


def normalized(images):
    mean, std = np.array(MEAN).reshape(3, 1, 1), np.array(STD).reshape(3, 1, 1)
    return (images / 255.0 - mean) / std


def test_reads_every_batch_normalized_and_validates_on_held_out_training_images(archive):
    data_dir, written = archive
    data = cifar10(data_dir=data_dir, download=False, n_val=20)
    train_images = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = data["train"], data["val"], data["test"]
    assert train_x.shape == (80, 3, 32, 32) and val_x.shape == (20, 3, 32, 32) and test_x.shape == (20, 3, 32, 32)
    assert train_x.dtype == torch.float32 and train_y.dtype == torch.int64
    assert CIFAR10.n_classes == 10 and CIFAR10.input_shape == (3, 32, 32)
    # validation is held out of the training batches; the test batch is only the test split
    held = torch.cat([train_x, val_x])
    assert sorted(torch.cat([train_y, val_y]).tolist()) == sorted(train_labels.tolist())
    expected = torch.from_numpy(normalized(train_images)).float()
    assert all(any(torch.allclose(image, e, atol=1e-5) for e in expected) for image in held[::10])
    np.testing.assert_array_equal(test_y.numpy(), written["test_batch"][1])
    np.testing.assert_allclose(test_x.numpy(), normalized(written["test_batch"][0]), atol=1e-5)


def test_subsets_keep_the_first_images(archive):
    data_dir, written = archive
    data = cifar10(data_dir=data_dir, download=False, n_train=30, n_val=5, n_test=4)
    assert len(data["train"][1]) == 30 and len(data["val"][1]) == 5 and len(data["test"][1]) == 4
    first_two = np.concatenate([written["data_batch_1"][1], written["data_batch_2"][1]])
    assert sorted(torch.cat([data["train"][1], data["val"][1]]).tolist()) == sorted(first_two[:35].tolist())
    with pytest.raises(BadInput, match="fewer than the 106 asked for: lower cifar10.n_train"):
        cifar10(data_dir=data_dir, download=False, n_train=101, n_val=5)
    with pytest.raises(BadInput, match="cifar10.n_val = 0"):
        cifar10(data_dir=data_dir, download=False, n_val=0)


def test_same_images_as_torchvisions_reader(archive, monkeypatch):
    """The tiny archive is in the real format: torchvision's own reader, md5 check aside, agrees."""
    data_dir, _ = archive
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    reference = torchvision.datasets.CIFAR10(data_dir, train=True, download=False)
    module = CIFAR10(data_dir=data_dir, download=False, augment=False, n_val=20)
    data = module.load()
    expected = torch.from_numpy(reference.data).permute(0, 3, 1, 2)
    order = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(data["train"][0].numpy(), normalized(expected[order[20:]].numpy()), atol=1e-5)
    assert data["train"][1].tolist() == [reference.targets[i] for i in order[20:]] and module.augment is None


def test_data_dir_binds_in_gin(archive, monkeypatch):
    data_dir, _ = archive
    monkeypatch.setenv("DATA_DIR", str(data_dir / "elsewhere"))
    try:
        gin.parse_config(f"cifar10.data_dir = '{data_dir}'\ncifar10.download = False\ncifar10.n_val = 3")
        assert len(DATA.get("cifar10")().load()["val"][1]) == 3
    finally:
        gin.clear_config()


def test_augment_is_a_padded_crop_or_its_mirror_and_follows_the_seed(archive):
    data_dir, _ = archive
    x = cifar10(data_dir=data_dir, download=False, n_val=20)["train"][0][:16]
    first = crop_and_flip(x, torch.Generator().manual_seed(1))
    assert first.shape == x.shape
    assert torch.equal(first, crop_and_flip(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, crop_and_flip(x, torch.Generator().manual_seed(2)))
    padded = F.pad(x, (4, 4, 4, 4))
    for image, out in zip(padded, first, strict=True):
        crops = [view[:, top:top + 32, left:left + 32] for view in (image, image.flip(2))
                 for top in range(9) for left in range(9)]
        assert any(torch.equal(crop, out) for crop in crops)


def test_missing_data_offline_names_files_and_folder(tmp_path):
    with pytest.raises(DataMissing) as error:
        cifar10(data_dir=tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "test_batch" in message and "download = True" in message
    assert list(tmp_path.iterdir()) == []


def test_failed_download_is_data_missing_and_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar_module, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # refused at once
    with pytest.raises(DataMissing, match="downloading http://127.0.0.1:9/") as error:
        cifar10(data_dir=tmp_path / "data")
    assert str(tmp_path / "data" / "cifar-10-batches-py") in str(error.value)
    assert not any(path.is_dir() for path in (tmp_path / "data").iterdir())


def test_downloads_and_extracts_when_missing(tmp_path, monkeypatch):
    """The official archive's layout, served over HTTP from this machine: fetched, checked, extracted whole."""
    served = tmp_path / "served"
    written = write_cifar_archive(served)
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(served / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=served)
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setattr(cifar_module, "URL", f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz")
        md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
        monkeypatch.setattr(cifar_module, "MD5", md5)
        data = cifar10(data_dir=tmp_path / "data", n_val=4, n_test=4)
        server.shutdown()
    np.testing.assert_array_equal(data["test"][1].numpy(), written["test_batch"][1][:4])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".cifar-10.lock", "cifar-10-batches-py"]


def test_incomplete_folder_is_not_downloaded_over(archive):
    data_dir, _ = archive
    (data_dir / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataMissing, match="missing test_batch in .*remove the incomplete folder"):
        cifar10(data_dir=data_dir)


def test_registered():
    assert "cifar10" in DATA.names()
