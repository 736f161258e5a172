"""The two-layer network in NumPy (seed 003, "Numpy"): the float64 oracle of the ladder.

NumPy belongs to neither framework, so both packages share one implementation:
this module is ``torch_impl.ladder_numpy`` (see there). Run ``python -m tf_impl.ladder_numpy``.
"""

from torch_impl.ladder_numpy import *  # noqa: F401,F403
from torch_impl.ladder_numpy import __all__, main  # noqa: F401

if __name__ == "__main__":
    main()
