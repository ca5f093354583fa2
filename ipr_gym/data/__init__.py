"""Datasets: where they live, what they hold, how to install, download and inspect them."""

from ipr_gym.data.datasets import DATASETS, Dataset, Part, get_dataset
from ipr_gym.data.download import DownloadError, download
from ipr_gym.data.install import InstallError, InstallReport, install_from
from ipr_gym.data.paths import ENV_VAR, DatasetMissingError, data_root, dataset_dir
from ipr_gym.data.status import DatasetStatus, data_status, dataset_status

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "Dataset",
    "DatasetMissingError",
    "DatasetStatus",
    "DownloadError",
    "InstallError",
    "InstallReport",
    "Part",
    "data_root",
    "data_status",
    "dataset_dir",
    "dataset_status",
    "download",
    "get_dataset",
    "install_from",
]
