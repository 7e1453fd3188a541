"""QM9 offline: cached arrays, molecular graphs, seeded persisted splits and label normalisation.

The data come from the PyPI package ``qm9pack`` (``pip install qm9pack==1.0.3``), which ships all 130,831
characterised QM9 molecules as CSV files. They are parsed once (about 40 s on one core) into a compact cache
of concatenated arrays (:class:`QM9Arrays`, read-only numpy arrays), which later loads in about 0.2 s. The
target is the U0 atomization energy in eV; graphs keep it raw in ``Data.y``, and a :class:`Normalizer` fitted on
the training split scales it for training.

Every public name is importable from here (``from equinb import data; data.load_qm9()``); the modules, in the
order they import each other:

* :mod:`~equinb.data.constants` — units, atomic reference energies, QM9 facts, cache format, the study's seed,
  split fractions and cutoff (each defined only there).
* :mod:`~equinb.data.molecules` — :class:`Molecule`, :class:`QM9Arrays`, the atomization energy and RDKit bond
  perception.
* :mod:`~equinb.data.qm9` — the source: qm9pack's CSV files, read and parsed into raw arrays.
* :mod:`~equinb.data.npz` — atomic, pickle-free ``.npz`` files (the cache and the split files).
* :mod:`~equinb.data.cache` — the on-disk cache, its location, validation and build lock; :func:`load_qm9`.
* :mod:`~equinb.data.splits` — seeded subsets and train/val/test splits, their files, the :class:`Normalizer`.
* :mod:`~equinb.data.graphs` — PyG graphs (bonds or radius) and seeded loaders.
"""

from .cache import CacheError, cache_path, default_cache_dir, load_qm9, read_cache, validate_cache, write_cache
from .constants import (
    ATOM_REF_HARTREE,
    CACHE_ENV_VAR,
    CACHE_FORMAT_VERSION,
    DEFAULT_CUTOFF,
    DEFAULT_FRACTIONS,
    DEFAULT_SEED,
    ELEMENTS,
    GRAPH_KINDS,
    HARTREE_TO_EV,
    N_QM9,
    QM9PACK_REQUIREMENT,
    SPLIT_NAMES,
)
from .graphs import bond_edges, build_graph, check_graph, make_dataset, make_loader, radius_edges
from .molecules import Molecule, QM9Arrays, atomization_energy, perceive_bonds
from .qm9 import parse_qm9, qm9pack_data_dir, read_qm9_csv
from .splits import Normalizer, fit_normalizer, load_split, save_split, split_indices, split_sizes, subset_indices

__all__ = [
    "ATOM_REF_HARTREE",
    "CACHE_ENV_VAR",
    "CACHE_FORMAT_VERSION",
    "DEFAULT_CUTOFF",
    "DEFAULT_FRACTIONS",
    "DEFAULT_SEED",
    "ELEMENTS",
    "GRAPH_KINDS",
    "HARTREE_TO_EV",
    "N_QM9",
    "QM9PACK_REQUIREMENT",
    "SPLIT_NAMES",
    "CacheError",
    "Molecule",
    "Normalizer",
    "QM9Arrays",
    "atomization_energy",
    "bond_edges",
    "build_graph",
    "check_graph",
    "cache_path",
    "default_cache_dir",
    "fit_normalizer",
    "load_qm9",
    "load_split",
    "make_dataset",
    "make_loader",
    "parse_qm9",
    "perceive_bonds",
    "qm9pack_data_dir",
    "radius_edges",
    "read_cache",
    "read_qm9_csv",
    "save_split",
    "split_indices",
    "split_sizes",
    "subset_indices",
    "validate_cache",
    "write_cache",
]
