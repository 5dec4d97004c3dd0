"""Benchmarks ``minio3 data convert`` knows, and their splits (no imports: the CLI reads
this to build ``--help``)."""

#: Allowed ``--split`` values per benchmark (the first is the default).
SPLITS: dict[str, tuple[str, ...]] = {
    "visual_probe": ("train", "easy", "medium", "hard"),
    "deepeyes": ("train",),
    "vstar": ("test",),
    "hrbench": ("4k", "8k"),
    "mme_realworld": ("test",),
}
