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
