"""A restricted unpickler for annotation pickles such as UCF101v2-GT.pkl.

Unpickling runs whatever callables the file names, so a pickle from the internet can run code. This
unpickler resolves only the few globals that numpy arrays and scalars need (and `_codecs.encode`, which
Python 3 pickles of byte strings use); builtin containers (dict, list, tuple, set) need no globals at all.
Any other global is refused before it is imported or called.
"""

from __future__ import annotations

import _codecs
import builtins
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2 moved the pickled helpers; pickles written by numpy 1 still name numpy.core
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core import multiarray as _multiarray

from stanet.dataset_format import DatasetFormatError

_ALLOWED: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _multiarray._reconstruct for module in ("numpy.core.multiarray",
                                                                        "numpy._core.multiarray")},
    **{(module, "scalar"): _multiarray.scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
    # Python 2 pickles name the builtin module __builtin__.
    **{(module, name): getattr(builtins, name) for module in ("builtins", "__builtin__")
       for name in ("set", "frozenset", "list", "dict", "tuple")},
}


class _Refused(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise _Refused(module, name)
        return allowed


def load_restricted_pickle(path: Path) -> Any:
    """Load a pickle holding only builtin containers, numbers, strings and numpy arrays.

    Python 2 pickles (most published annotation files) load too: their byte strings decode as latin-1.

    Raises:
        DatasetFormatError: the file names any other global (refused unrun), or is not a pickle.
    """
    try:
        with path.open("rb") as file:
            return _RestrictedUnpickler(file, encoding="latin1").load()
    except _Refused as exc:
        raise DatasetFormatError(path, f"refused to load: the pickle calls {exc.qualified_name}, expected only numpy "
                                 f"arrays and builtin containers (unpickling runs code; convert the file to JSON "
                                 f"if you trust it)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DatasetFormatError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
