"""tf_impl.functional: behaviours that surviving mutants showed no test pinned down (docs/reliability.md)."""

import numpy as np
import pytest

from equivalence.frameworks import tf
from tf_impl import functional as tf_F


def test_linear_names_a_bias_that_is_not_a_tensor():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="^linear: bias must be a tensor, not object$"):
        tf_F.linear(x, w, object())


def test_linear_names_itself_when_in_features_are_unknown():
    @tf().function(input_signature=[tf().TensorSpec([2, 3], tf().float32), tf().TensorSpec([4, None], tf().float32)])
    def unknown_in_features(x, w):
        return tf_F.linear(x, w)

    # (tf.function wraps the message in its traceback; the line that matters is ours)
    with pytest.raises(ValueError, match=r"ValueError: linear: the channel and spatial sizes must be known statically, got shape \(4, None\)"):
        unknown_in_features(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32))
