"""One figure style for the book (used by every chapter)."""
from __future__ import annotations


def use_book_style() -> None:
    import matplotlib as mpl

    mpl.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 100, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                         "savefig.bbox": "tight"})
