"""equivalence/frameworks.py: the precision the tolerance model charges each side, tensors
made from NumPy, the way back, device resolution and the TF32 settings."""

import numpy as np
import pytest

from equivalence.frameworks import (Context, DeviceError, keras, resolve_device, set_tf32, settings, tf, to_numpy,
                                    torch, versions)

# (dtype, allow_tf32, torch_device, tf_device) -> (torch's precision, TF's precision), written out:
# TF32 is charged only to a float32 side that runs on a GPU with TF32 allowed
PRECISIONS = [
    (("float32", False, "cpu", "cpu"), ("float32", "float32")),
    (("float32", True, "cpu", "cpu"), ("float32", "float32")),
    (("float32", False, "cuda", "gpu"), ("float32", "float32")),
    (("float32", True, "cuda", "gpu"), ("tf32", "tf32")),
    (("float32", True, "cuda", "cpu"), ("tf32", "float32")),
    (("float32", True, "cpu", "gpu"), ("float32", "tf32")),
    (("float64", True, "cuda", "gpu"), ("float64", "float64")),
    (("float64", False, "cpu", "cpu"), ("float64", "float64")),
]


@pytest.mark.parametrize(("ctx", "expected"), PRECISIONS)
def test_precision_charged_to_each_side(ctx, expected):
    dtype, allow, torch_device, tf_device = ctx
    c = Context(dtype=dtype, allow_tf32=allow, torch_device=torch_device, tf_device=tf_device)
    assert (c.precision("torch"), c.precision("tf")) == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_tensors_take_the_context_dtype_for_floats_only(dtype):
    t = torch()
    c = Context(dtype=dtype)
    x = c.t(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert x.dtype == getattr(t, dtype) and x.device.type == "cpu" and not x.requires_grad
    np.testing.assert_array_equal(x.numpy(), np.arange(6).reshape(2, 3))
    assert c.t(np.array([1, 2]), requires_grad=False).dtype == t.int64
    assert c.t(np.array([True, False])).dtype == t.bool
    g = c.t([1.5, 2.5], requires_grad=True)
    assert g.requires_grad and g.is_leaf and g.dtype == getattr(t, dtype)
    assert c.np_dtype == np.dtype(dtype) and c.torch_dtype == getattr(t, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tf_constants_and_variables(dtype):
    f = tf()
    c = Context(dtype=dtype)
    x = c.tf_const(np.ones((2, 2), np.float64))
    assert x.dtype == getattr(f, dtype) and "CPU:0" in x.device
    assert c.tf_const(np.array([1, 2], np.int32)).dtype == f.int32
    assert c.tf_const(np.array([1, 2], np.int64)).dtype == f.int64
    v = c.tf_var([1.0, 2.0], name="w")
    assert isinstance(v, f.Variable) and v.dtype == getattr(f, dtype) and v.name.startswith("w")
    assert c.tf_dtype == getattr(f, dtype)
    assert Context(tf_device="cpu").tf_device_name == "/CPU:0"
    assert Context(tf_device="gpu").tf_device_name == "/GPU:0"


def test_to_numpy_of_each_kind():
    a = np.arange(3.0)
    assert to_numpy(a) is a  # an array passes through
    t = torch().tensor([1.0, 2.0], requires_grad=True) * 2  # not a leaf, needs detach
    np.testing.assert_array_equal(to_numpy(t), [2.0, 4.0])
    np.testing.assert_array_equal(to_numpy(tf().constant([1, 2])), [1, 2])
    np.testing.assert_array_equal(to_numpy(tf().Variable([0.5])), [0.5])
    scalar = to_numpy(3.5)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar == 3.5
    np.testing.assert_array_equal(to_numpy([[1, 2]]), [[1, 2]])


def test_resolve_device_on_the_cpu_and_bad_requests():
    assert resolve_device("torch", "cpu") == "cpu"
    assert resolve_device("tf", "cpu") == "cpu"
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'gpu' or 'auto', not 'cuda'"):
        resolve_device("torch", "cuda")
    with pytest.raises(ValueError, match=r"unknown framework 'jax'"):
        resolve_device("jax", "auto")


@pytest.mark.skipif(torch().cuda.is_available() or bool(tf().config.list_physical_devices("GPU")),
                    reason="checks the answers of a machine without a GPU")
def test_resolve_device_without_a_gpu():
    assert resolve_device("torch", "auto") == "cpu"
    assert resolve_device("tf", "auto") == "cpu"
    with pytest.raises(DeviceError, match="a GPU was asked for torch, but torch sees none on this machine"):
        resolve_device("torch", "gpu")
    with pytest.raises(DeviceError, match="a GPU was asked for TensorFlow, but TensorFlow sees none"):
        resolve_device("tf", "gpu")


@pytest.fixture
def tf32_restored():
    t, f = torch(), tf()
    saved = (t.backends.cuda.matmul.allow_tf32, t.backends.cudnn.allow_tf32,
             f.config.experimental.tensor_float_32_execution_enabled())
    yield
    t.backends.cuda.matmul.allow_tf32, t.backends.cudnn.allow_tf32 = saved[:2]
    f.config.experimental.enable_tensor_float_32_execution(saved[2])


def test_set_tf32_and_the_settings_report(tf32_restored):
    set_tf32(True)
    s = settings()
    assert s["torch_matmul_allow_tf32"] is False  # torch's own default: matmul TF32 off
    assert s["torch_cudnn_allow_tf32"] is True and s["tf_tensor_float_32_execution"] is True
    set_tf32(False)
    s = settings()
    assert (s["torch_matmul_allow_tf32"], s["torch_cudnn_allow_tf32"], s["tf_tensor_float_32_execution"]) == (
        False, False, False)
    assert set(s) == {"torch_matmul_allow_tf32", "torch_cudnn_allow_tf32", "tf_tensor_float_32_execution",
                      "torch_deterministic_algorithms", "torch_cudnn_benchmark", "tf_op_determinism"}
    assert all(isinstance(v, bool) for v in s.values())


def test_versions_are_the_imported_modules():
    import platform

    v = versions()
    assert v == {"python": platform.python_version(), "numpy": np.__version__, "torch": torch().__version__,
                 "tensorflow": tf().__version__, "keras": keras().__version__}


@pytest.fixture
def fake_gpus(monkeypatch):
    """Both frameworks report a GPU (no GPU is used: only the discovery is replaced)."""
    asked = []

    def list_physical_devices(kind=None):
        asked.append(kind)
        return ["a GPU"] if kind == "GPU" else []

    monkeypatch.setattr(torch().cuda, "is_available", lambda: True)
    monkeypatch.setattr(tf().config, "list_physical_devices", list_physical_devices)
    return asked


def test_resolve_device_where_the_frameworks_see_a_gpu(fake_gpus):
    assert resolve_device("torch", "cpu") == "cpu"  # asked for the CPU: the CPU, GPU or not
    assert resolve_device("tf", "cpu") == "cpu"
    assert fake_gpus == []  # and nothing was asked of TensorFlow for it
    assert resolve_device("torch", "auto") == "cuda"
    assert resolve_device("torch", "gpu") == "cuda"
    assert resolve_device("tf", "auto") == "gpu"
    assert resolve_device("tf", "gpu") == "gpu"
    assert fake_gpus == ["GPU", "GPU"]


@pytest.fixture
def torch_flags_restored():
    t = torch()
    saved = (t.backends.cuda.matmul.allow_tf32, t.are_deterministic_algorithms_enabled(), t.backends.cudnn.benchmark)
    yield t
    t.backends.cuda.matmul.allow_tf32 = saved[0]
    t.use_deterministic_algorithms(saved[1])
    t.backends.cudnn.benchmark = saved[2]


def test_settings_report_the_flags_as_they_are(torch_flags_restored):
    t = torch_flags_restored
    s = settings()
    # as frameworks.torch() / tf() set them
    assert (s["torch_deterministic_algorithms"], s["torch_cudnn_benchmark"], s["tf_op_determinism"]) == (True, False, True)
    t.backends.cuda.matmul.allow_tf32 = True
    t.use_deterministic_algorithms(False)
    t.backends.cudnn.benchmark = True
    s = settings()
    assert (s["torch_matmul_allow_tf32"], s["torch_deterministic_algorithms"], s["torch_cudnn_benchmark"]) == (
        True, False, True)


def test_tf_determinism_on_a_tensorflow_without_the_query(monkeypatch):
    """Older TensorFlow has no is_op_determinism_enabled: tf() enabled determinism, so it is on."""
    import types

    experimental = types.SimpleNamespace(tensor_float_32_execution_enabled=lambda: False)  # no is_op_determinism_enabled
    monkeypatch.setattr(tf().config, "experimental", experimental)
    assert settings()["tf_op_determinism"] is True


def test_torch_tensors_go_to_the_context_device():
    """torch's "meta" device stands in for a GPU here: the tensor must be made where the context says."""
    x = Context(torch_device="meta").t(np.ones(3))
    assert x.device.type == "meta" and x.shape == (3,)
