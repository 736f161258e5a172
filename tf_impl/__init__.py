"""The TensorFlow/Keras port of the tutorials; mirrors ``torch_impl`` module for module, name for name."""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
