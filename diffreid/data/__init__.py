"""Re-ID datasets in their published layouts, read into records."""

from diffreid.data.records import Problem, Record, ReidDataset, relabel
from diffreid.data.registry import formats, load_dataset, parse_spec

__all__ = ["Problem", "Record", "ReidDataset", "formats", "load_dataset", "parse_spec", "relabel"]
