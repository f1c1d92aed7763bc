"""Image classification workload (the MNIST family of lab28.data.specs, Fashion-MNIST by default): three CNNs
compared with per-class metrics, figures and TensorBoard logs.

Entry points: `run_fashion` (one run folder), `run_fashion_suite` (three models + report.md), `preset`.
"""

from lab28.workloads.classify.config import FashionRunConfig, config_from_dict, preset
from lab28.workloads.classify.data import CLASS_NAMES, load_fashion, stratified_split
from lab28.workloads.classify.experiment import run_fashion
from lab28.workloads.classify.suite import run_fashion_suite

__all__ = ["CLASS_NAMES", "FashionRunConfig", "config_from_dict", "load_fashion", "preset", "run_fashion",
           "run_fashion_suite", "stratified_split"]
