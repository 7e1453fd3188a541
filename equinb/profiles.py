"""Named parameter sets for the book's chapters, in one place.

A profile maps a chapter (its file stem, e.g. ``"04_model_and_training"``) to the parameters that differ from
the chapter's own defaults. Chapters a profile does not name run with their defaults.

* ``cpu``: the chapters' defaults (what ``make book`` executes on two CPU cores).
* ``smoke``: the smallest settings that still exercise every cell; used by the test suite.
* ``paper``: the study's full scale (all of QM9, its epochs); meant for a GPU.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {},
    "smoke": {
        "01_angular_momentum": {"l_max_plot": 1, "surface_lm": [[1, 0]], "plot_resolution": 12, "n_points": 8,
                                "l_max_check": 2, "l_max_table": 1, "l_max_coupling": 1,
                                "path_sets": [[0, 1, 2]], "seed": 0},
        "02_deriving_kernels": {"l_max": 3, "show_order": 3, "n_points": 32, "accuracy_points": 4,
                                "accuracy_l_max": 2},
        "03_kernel_performance": {"sizes": [200], "singles": [0, 10], "key_sets": ["0,3-6"],
                                  "backends": ["torch", "e3nn"], "compiled_sets": [], "repeats": 2,
                                  "share_L": [[0, 1]], "share_h": [2], "share_batch_size": 2, "share_repeats": 1,
                                  "op_count_l_max": 2, "tp_shapes": ["0,1,2/2"], "tp_live_shapes": ["0,1/2"],
                                  "tp_live_edges": 64, "share_tp_backends": ["torch"]},
        "04_model_and_training": {"h": 2, "num_layers": 0, "epochs": 1, "n_molecules": 60,
                                  "count_table1": False},
        "05_irrep_analysis": {"run_folders": [], "configs": [[0, 1], [0, 2]], "h": 2, "num_layers": 0, "epochs": 1,
                              "n_molecules": 200, "knn": 5, "ridge_folds": 3,
                              "quadrant_panels": [[1, 2], [1, 0]]},
        "06_table1": {"results_csv": "", "compare_csv": "", "rows": ["L0-1-2_h32_e100"], "n_molecules": 60,
                      "epochs_factor": 0.01, "h_divisor": 16},
    },
    "paper": {
        "04_model_and_training": {"L": [0, 1, 2], "h": 32, "epochs": 100, "n_molecules": 0},
        "05_irrep_analysis": {"run_folders": [], "h": 16, "epochs": 30, "n_molecules": 0, "device": "auto",
                              "n_embed": 2000},
        "06_table1": {"results_csv": "", "compare_csv": "", "rows": [], "n_molecules": 0, "epochs_factor": 1.0,
                      "h_divisor": 1, "h_cap": 0, "target": "atomization", "seeds": 1, "key_seeds": 3},
    },
}


def profile_parameters(profile: str, chapter: str) -> dict[str, Any]:
    """Parameters a profile sets for one chapter.

    Parameters
    ----------
    profile
        Name of the profile (a key of :data:`PROFILES`).
    chapter
        File stem of the chapter.

    Returns
    -------
    dict
        Parameter names and values (empty when the profile keeps the chapter's defaults).

    Raises
    ------
    KeyError
        If the profile does not exist.
    """
    return dict(PROFILES[profile].get(chapter, {}))
