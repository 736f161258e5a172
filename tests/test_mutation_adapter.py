"""The weight adapter (adapter.py): behaviours that surviving mutants showed no test pinned down
(docs/reliability.md)."""

import re

import pytest

from equivalence import AdapterError, torch_to_keras
from equivalence.frameworks import keras as _keras
from equivalence.frameworks import torch as _torch

torch = _torch()
keras = _keras()

from tf_impl import modules as K  # noqa: E402  (after the frameworks are configured)
from torch_impl import modules as T  # noqa: E402


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = T.Linear(3, 4)


class _KerasWithExtra(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc1 = K.Linear(3, 4)
        self.extra = K.Linear(4, 2)


def test_a_keras_attribute_with_weights_and_no_torch_counterpart_is_named():
    with pytest.raises(AdapterError, match=re.escape("Keras Dense at 'extra' (kernel (4, 2), bias (2,)) has no torch "
                                                     "counterpart: torch _Small has no attribute 'extra'")):
        torch_to_keras(_Small(), _KerasWithExtra())


class _Scaled(torch.nn.Module):
    """Parameters of its own next to a child layer: nothing in Keras holds ``scale``."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4))
        self.fc = T.Linear(4, 4)


def test_parameters_outside_a_supported_layer_are_named_with_their_path():
    with pytest.raises(AdapterError, match=re.escape("layer path '1': parameters ['scale'] of torch _Scaled are not "
                                                     "inside a supported layer")):
        torch_to_keras(T.Sequential(T.Linear(3, 4), _Scaled()), K.Sequential(K.Linear(3, 4), K.Linear(4, 4)))


class _KerasScaled(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc = K.Linear(4, 4)

    def call(self, x):
        return self.fc(x)


def test_parameters_next_to_child_layers_of_a_subclassed_root_are_named():
    # the same at the root of a subclassed model (no Sequential around it): the message names the
    # parameters, not "torch _Scaled is not supported" (which would hide that its child is fine)
    with pytest.raises(AdapterError, match=re.escape("layer path <root>: parameters ['scale'] of torch _Scaled are "
                                                     "not inside a supported layer")):
        torch_to_keras(_Scaled(), _KerasScaled())


def test_a_dtype_mismatch_names_the_layer_path():
    with pytest.raises(AdapterError, match=re.escape("layer path '0': 0.weight is float64, Keras ")):
        torch_to_keras(T.Sequential(T.Linear(3, 4).double()), K.Sequential(K.Linear(3, 4)))


def test_conventions_a_copy_cannot_fix_are_refused():
    # strict transfers refuse them (transfer(..., strict=False) would copy and report)
    emb = keras.layers.Embedding(5, 3)
    emb.build((None,))
    with pytest.raises(AdapterError, match="padding_idx=0 .*its row gets no gradient"):
        torch_to_keras(torch.nn.Embedding(5, 3, padding_idx=0), emb)
    with pytest.raises(AdapterError, match="max_norm=1.0 .*renormalises rows"):
        torch_to_keras(torch.nn.Embedding(5, 3, max_norm=1.0), emb)
    bn = keras.layers.BatchNormalization(epsilon=1e-5)
    bn.build((None, 3))
    with pytest.raises(AdapterError, match="cumulative average"):
        torch_to_keras(torch.nn.BatchNorm1d(3, momentum=None), bn)


# -- keras_to_torch with values, strictness and dtypes; the row gather (mutants of this session) --
def test_keras_to_torch_copies_the_given_values_not_the_keras_weights():
    import numpy as np

    from equivalence import keras_to_torch

    t, k = torch.nn.LSTM(3, 2, batch_first=True), keras.layers.LSTM(2, return_sequences=True)
    k.build((None, 4, 3))
    values = [np.full(v.shape, i + 1.0, np.float32) for i, v in enumerate(k.weights)]  # kernel, recurrent, bias
    keras_to_torch(k, t, values)
    np.testing.assert_array_equal(t.weight_ih_l0.detach().numpy(), 1.0)  # the values, not Keras's own weights
    np.testing.assert_array_equal(t.weight_hh_l0.detach().numpy(), 2.0)
    # a value (not a gradient) of the Keras bias, the sum of torch's two: all of it to bias_ih
    np.testing.assert_array_equal(t.bias_ih_l0.detach().numpy(), 3.0)
    np.testing.assert_array_equal(t.bias_hh_l0.detach().numpy(), 0.0)


def test_keras_to_torch_is_strict_unless_told_otherwise():
    from equivalence import keras_to_torch

    bn = keras.layers.BatchNormalization(epsilon=1e-5)
    bn.build((None, 3))
    with pytest.raises(AdapterError, match="cumulative average"):
        keras_to_torch(bn, torch.nn.BatchNorm1d(3, momentum=None))
    keras_to_torch(bn, torch.nn.BatchNorm1d(3, momentum=None), strict=False)  # copies, as asked


def test_keras_to_torch_refuses_a_dtype_that_would_round():
    from equivalence import keras_to_torch

    with pytest.raises(AdapterError, match=re.escape("torch 0.weight is torch.float64, the Keras value is float32: "
                                                     "copying would round")):
        keras_to_torch(K.Sequential(K.Linear(3, 4)), T.Sequential(T.Linear(3, 4).double()))


def test_take_rows_checks_its_rows_and_aligns_its_copy():
    import numpy as np

    from equivalence import adapter

    w = np.arange(20, dtype=np.float32).reshape(5, 4)
    np.testing.assert_array_equal(adapter._take_rows(w, [4, 0, -1, -5]), w[[4, 0, -1, -5]])
    out = adapter._take_rows(w, np.array([1, 3], np.uint8))
    np.testing.assert_array_equal(out, w[[1, 3]])
    assert out.ctypes.data % adapter._ALIGN == 0  # torch-allocated: TensorFlow may adopt it
    for bad in ([5], [-6], [0, 7]):
        with pytest.raises(IndexError, match=re.escape(f"rows {min(bad)}..{max(bad)} out of range for an array "
                                                       f"with 5 rows")):
            adapter._take_rows(w, bad)
    with pytest.raises(IndexError, match=re.escape("rows must be one-dimensional, not of shape (1, 2)")):
        adapter._take_rows(w, [[0, 1]])
    wide = np.arange(12, dtype=np.float32).reshape(2, 6)  # more columns than rows: the check reads shape[0]
    with pytest.raises(IndexError, match="with 2 rows"):
        adapter._take_rows(wide, [3])
    np.testing.assert_array_equal(adapter._take_rows(wide, [-2, -1]), wide)
    for odd in (w.astype(">f4"), w.astype(np.longdouble)):  # dtypes torch has not: NumPy's gather
        np.testing.assert_array_equal(adapter._take_rows(odd, [2, 1]), odd[[2, 1]])


@pytest.mark.filterwarnings("error")
def test_torch_view_of_a_read_only_array_warns_nothing():
    import numpy as np

    from equivalence import adapter

    frozen = np.ones((3, 2), np.float32)
    frozen.flags.writeable = False  # as TensorFlow's values come
    adapter._torch_view(frozen.T)
