"""The registry of known datasets: what each one is, which files make it, their SHA-256 sums, and where
the official copies live. Data only — reading is in ``idx.py``/``cifar.py``, finding in ``locate.py``.

A dataset is a :class:`DatasetSpec`; ``register_dataset`` adds one (tests register tiny ones to drive
the real locate/download/verify code), ``list_datasets`` names them.

Checksums: for IDX files we pin the SHA-256 of the *decompressed* content. Debian's
``dataset-fashion-mnist`` recompresses the official ``.gz`` files (no file name in the gzip header), so
the compressed bytes differ from the official download while every pixel is identical; pinning the
content makes one checksum hold for the official ``.gz``, Debian's ``.gz`` and an unpacked file alike.
Where the published archive's own SHA-256 is known it is pinned too and checked first on download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ablab.data.errors import DataError
from ablab.registry import Registry

MIRROR_ENV = "ABLAB_DATA_MIRROR"  # a base URL that replaces every dataset's official mirrors


@dataclass(frozen=True)
class DataFile:
    """One published file of a dataset."""

    name: str  # file name as published, e.g. "train-images-idx3-ubyte.gz"
    sha256: str  # IDX: of the decompressed content; archives: of the archive itself
    download_sha256: str | None = None  # of the published (compressed) file, when known
    size: int | None = None  # bytes of the published file, when known (for the progress bar)

    @property
    def hashes_content(self) -> bool:
        """True when ``sha256`` is of the decompressed content (``.gz`` IDX files), False when it is of
        the file itself (``.tar.gz`` archives, plain files)."""
        return self.name.endswith(".gz") and not self.name.endswith(".tar.gz")

    @property
    def stem(self) -> str:
        """The name without ``.gz`` — the IDX file a user may also keep unpacked."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class IdxFiles:
    """The four IDX files of an MNIST-style dataset (images idx3, labels idx1; train and test)."""

    train_images: DataFile
    train_labels: DataFile
    test_images: DataFile
    test_labels: DataFile

    def all(self) -> dict[str, DataFile]:
        return {"train_images": self.train_images, "train_labels": self.train_labels,
                "test_images": self.test_images, "test_labels": self.test_labels}


@dataclass(frozen=True)
class CifarFiles:
    """CIFAR-10: the binary archive (what ``fetch`` downloads: no pickle involved) and, accepted when a
    user already has it, the python (pickle) archive, read only through a restricted unpickler."""

    binary_archive: DataFile  # cifar-10-binary.tar.gz -> cifar-10-batches-bin/*.bin
    python_archive: DataFile  # cifar-10-python.tar.gz -> cifar-10-batches-py/*
    train_batches: tuple[str, ...] = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                      "data_batch_5")
    test_batches: tuple[str, ...] = ("test_batch",)
    records_per_batch: int = 10_000


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: identity, expected contents and official sources."""

    name: str  # registry name, e.g. "fashion-mnist"
    title: str  # human name for listings
    classes: tuple[str, ...]  # class names, index = label
    shape: tuple[int, int, int]  # (C, H, W) of one image
    n_train: int  # images in the official training set
    n_test: int  # images in the official test set
    files: IdxFiles | CifarFiles | None  # None: generated in memory (synthetic)
    mirrors: tuple[str, ...] = ()  # base URLs, tried in order; a file's URL is base + file name
    apt_package: str | None = None  # Debian package that installs the files, if any
    homepage: str = ""
    license: str = ""
    per_class_train: int | None = None  # exact images per class in the training set, when balanced

    @property
    def kind(self) -> str:
        if isinstance(self.files, IdxFiles):
            return "idx"
        if isinstance(self.files, CifarFiles):
            return "cifar"
        return "generated"

    def download_mirrors(self, mirror: str | None = None) -> tuple[str, ...]:
        """Base URLs to try: an explicit ``mirror``, else ``$ABLAB_DATA_MIRROR``, else the official list."""
        chosen = mirror or os.environ.get(MIRROR_ENV)
        return (chosen,) if chosen else self.mirrors


_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                    "Bag", "Ankle boot")
_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DATASETS: Registry[DatasetSpec] = Registry("dataset", DataError, cutoff=0.5)


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add (or replace) a dataset in the registry; returns it."""
    return DATASETS.register(spec.name, spec)


def unregister_dataset(name: str) -> None:
    DATASETS.unregister(name)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted (``synthetic`` also accepts options, see ``synthetic.py``)."""
    return DATASETS.list()


def get_spec(name: str) -> DatasetSpec:
    """The spec of ``name`` (options after ``:`` are ignored here), or a DataError naming the close match."""
    base = name.split(":", 1)[0].strip().lower()
    return DATASETS.get(base, shown=name)


register_dataset(DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando, 28x28 grey clothing images)",
    classes=_FASHION_CLASSES, shape=(1, 28, 28), n_train=60_000, n_test=10_000, per_class_train=6_000,
    files=IdxFiles(
        # sha256 of the decompressed IDX files; official .gz MD5s (README of zalandoresearch/fashion-mnist):
        # 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd... — same content as Debian's recompressed .gz.
        train_images=DataFile("train-images-idx3-ubyte.gz",
                              "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        train_labels=DataFile("train-labels-idx1-ubyte.gz",
                              "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        test_images=DataFile("t10k-images-idx3-ubyte.gz",
                             "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        test_labels=DataFile("t10k-labels-idx1-ubyte.gz",
                             "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    apt_package="dataset-fashion-mnist",
    homepage="https://github.com/zalandoresearch/fashion-mnist", license="MIT",
))

register_dataset(DatasetSpec(
    name="mnist",
    title="MNIST (LeCun, Cortes & Burges, 28x28 grey handwritten digits)",
    classes=tuple(str(d) for d in range(10)), shape=(1, 28, 28), n_train=60_000, n_test=10_000,
    files=IdxFiles(
        train_images=DataFile("train-images-idx3-ubyte.gz",
                              "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                              "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
        train_labels=DataFile("train-labels-idx1-ubyte.gz",
                              "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                              "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
        test_images=DataFile("t10k-images-idx3-ubyte.gz",
                             "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
        test_labels=DataFile("t10k-labels-idx1-ubyte.gz",
                             "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
    ),
    # yann.lecun.com often refuses downloads; these mirrors serve byte-identical archives
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    homepage="http://yann.lecun.com/exdb/mnist/", license="CC BY-SA 3.0",
))

register_dataset(DatasetSpec(
    name="cifar10",
    title="CIFAR-10 (Krizhevsky, 32x32 colour images)",
    classes=_CIFAR_CLASSES, shape=(3, 32, 32), n_train=50_000, n_test=10_000, per_class_train=5_000,
    files=CifarFiles(
        binary_archive=DataFile("cifar-10-binary.tar.gz",
                                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                                size=170_052_171),
        python_archive=DataFile("cifar-10-python.tar.gz",
                                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                                size=170_498_071),
    ),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html", license="see homepage",
))

register_dataset(DatasetSpec(
    name="synthetic",
    title="synthetic (class patterns + noise, generated in memory; options: synthetic:n=...,shape=...)",
    classes=tuple(f"class{k}" for k in range(10)), shape=(1, 28, 28), n_train=2_000, n_test=500,
    files=None,
))
