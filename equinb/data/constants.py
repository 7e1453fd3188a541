"""The constants of the data package, each defined here and nowhere else: units and atomic reference energies,
facts about QM9 and its source, the cache's format, and the study's seed, split and graph settings."""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------------------
# Units and reference energies
# ------------------------------------------------------------------------------------------------------------

#: CODATA 2018 Hartree energy in eV.
HARTREE_TO_EV = 27.211386246

#: U0 of the isolated atoms (Hartree), B3LYP/6-31G(2df,p), from QM9's atomref table.
ATOM_REF_HARTREE: dict[int, float] = {
    1: -0.500273,  # H
    6: -37.846772,  # C
    7: -54.583861,  # N
    8: -75.064579,  # O
    9: -99.718730,  # F
}

#: Element symbol -> atomic number for the elements of QM9.
ELEMENTS: dict[str, int] = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}

# ------------------------------------------------------------------------------------------------------------
# QM9, its source and the cache
# ------------------------------------------------------------------------------------------------------------

#: Number of molecules in QM9 as shipped by qm9pack (the 3,054 "uncharacterized" ones excluded).
N_QM9 = 130_831

#: The pinned data package, used in error messages.
QM9PACK_REQUIREMENT = "qm9pack==1.0.3"

#: Format version of the cache file; bump it whenever the cache's content or layout changes.
CACHE_FORMAT_VERSION = 1

#: Environment variable that overrides the cache directory.
CACHE_ENV_VAR = "EQUINB_CACHE"

# ------------------------------------------------------------------------------------------------------------
# The study's settings
# ------------------------------------------------------------------------------------------------------------

#: Seed of the study (subsets, splits and shuffling).
DEFAULT_SEED = 21616

#: Split fractions (train, val, test) of the study.
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)

#: Radius cutoff (Å) of the study, used for ``graph="radius"``.
DEFAULT_CUTOFF = 6.0

#: Names of the splits, in the order of the fractions.
SPLIT_NAMES = ("train", "val", "test")

#: Graph kinds accepted by :func:`equinb.data.graphs.build_graph`.
GRAPH_KINDS = ("bonds", "radius")
