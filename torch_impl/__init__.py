"""The tutorials' PyTorch code, one module per construct; mirrored name for name in ``tf_impl``."""
