"""The two-layer network trained by an optimizer (seed 003, "PyTorch: optim"), in Keras.

Keras's stock optimizers are not torch's:

* ``keras.optimizers.Adam`` adds ``epsilon`` to the *uncorrected* sqrt(v)
  (``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)``); torch
  adds ``eps`` after the bias correction (``lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)``).
  Keras's is torch's with eps replaced by ``eps / sqrt(1 - beta_2^t)``, up to
  31.6 eps at step 1: no choice of ``epsilon`` makes them agree at every step.
* Keras's ``weight_decay`` is decoupled (``p -= lr * wd * p`` beside the update);
  torch's SGD and Adam add ``wd * p`` to the gradient, so with momentum (or
  Adam's normalisation) the decay also feeds the buffers.
* SGD momentum is the same algorithm in both: Keras keeps the velocity
  ``-lr * buf`` where torch keeps ``buf``; Nesterov likewise.
* Keras keeps ``learning_rate`` in a variable of ``keras.config.floatx()``
  (float32 by default): a float64 model trained without ``floatx("float64")``
  uses the learning rate rounded to float32.
* ``tf.cast(0.9, tf.float64)`` is 0.8999999761581421: a Python float goes
  through a float32 tensor first. Keras's SGD and Adam cast ``momentum``,
  ``beta_1`` and ``weight_decay`` that way, so in float64 they run with those
  hyperparameters rounded to float32. The ports use ``tf.constant(value, dtype)``.

``TorchAdam`` and ``TorchSGD`` are Keras optimizers that make torch's update,
operation for operation. Run ``python -m tf_impl.ladder_optim``.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from . import _weights
from .ladder_nn import SumSquaredError, build_model, torch_layers
from .ladder_numpy import tutorial_data, two_layer_params

dtype = "float32"


class TorchAdam(keras.optimizers.Optimizer):
    """torch.optim.Adam (amsgrad=False, maximize=False) as a Keras optimizer.

    ``epsilon`` is added to sqrt(v) *after* bias correction, and ``weight_decay``
    is torch's coupled L2 term (``grad + wd * p``), not Keras's decoupled decay.
    Every scalar (lr / (1 - beta1^t), sqrt(1 - beta2^t)) is computed in float64
    and then rounded to the variable's dtype, as torch does with Python floats;
    constants are made with ``tf.constant(value, dtype)``, never ``tf.cast`` of a
    Python float (which rounds through float32).
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                 name="torch_adam", **kwargs):
        if kwargs.get("weight_decay") is not None:
            raise TypeError("weight_decay is given once: TorchAdam's is torch's coupled weight decay")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= beta_1 < 1.0 or not 0.0 <= beta_2 < 1.0:
            raise ValueError(f"betas must be in [0, 1); got beta_1={beta_1}, beta_2={beta_2}")
        if epsilon < 0 or weight_decay < 0:
            raise ValueError(f"epsilon and weight_decay must be >= 0; got {epsilon}, {weight_decay}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.torch_weight_decay = weight_decay

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._exp_avgs, self._exp_avg_sqs = self.add_optimizer_variables(var_list, ["exp_avg", "exp_avg_sq"])

    def update_step(self, gradient, variable, learning_rate):
        dt = variable.dtype
        i = self._get_variable_index(variable)
        exp_avg, exp_avg_sq = self._exp_avgs[i], self._exp_avg_sqs[i]
        step = tf.cast(self.iterations + 1, tf.float64)
        grad = tf.cast(gradient, dt)
        if self.torch_weight_decay:
            grad = grad + tf.constant(self.torch_weight_decay, dt) * variable  # grad.add(param, alpha=wd)
        # exp_avg.lerp_(grad, 1 - beta1): m + (1 - beta1) (g - m)
        exp_avg.assign(exp_avg + tf.constant(1 - self.beta_1, dt) * (grad - exp_avg))
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg_sq.assign(exp_avg_sq * tf.constant(self.beta_2, dt) + tf.constant(1 - self.beta_2, dt) * grad * grad)
        bias_correction1 = 1 - tf.pow(tf.constant(self.beta_1, tf.float64), step)
        bias_correction2 = 1 - tf.pow(tf.constant(self.beta_2, tf.float64), step)
        step_size = tf.cast(learning_rate, tf.float64) / bias_correction1
        # denom = (exp_avg_sq.sqrt() / sqrt(bias_correction2)).add_(eps): eps after the correction
        denom = tf.sqrt(exp_avg_sq) / tf.cast(tf.sqrt(bias_correction2), dt) + tf.constant(self.epsilon, dt)
        # param.addcdiv_(exp_avg, denom, value=-step_size)
        variable.assign_add(tf.cast(-step_size, dt) * (exp_avg / denom))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "weight_decay": self.torch_weight_decay})
        return config


class TorchSGD(keras.optimizers.Optimizer):
    """torch.optim.SGD (dampening=0, maximize=False) as a Keras optimizer.

    ``weight_decay`` is coupled (``grad + wd * p``, before the momentum buffer);
    the buffer holds torch's ``buf = momentum * buf + grad`` (zero-initialised,
    which equals torch's first-step ``buf = grad`` exactly), and the update is
    ``p -= lr * buf`` (or ``lr * (grad + momentum * buf)`` with Nesterov).
    """

    def __init__(self, learning_rate=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0, name="torch_sgd",
                 **kwargs):
        if kwargs.get("weight_decay") is not None:
            raise TypeError("weight_decay is given once: TorchSGD's is torch's coupled weight decay")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum and weight_decay must be >= 0; got {momentum}, {weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum > 0")
        self.momentum, self.nesterov, self.torch_weight_decay = momentum, nesterov, weight_decay

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentum_buffers = self.add_optimizer_variables(var_list, "momentum_buffer") if self.momentum else []

    def update_step(self, gradient, variable, learning_rate):
        dt = variable.dtype
        grad = tf.cast(gradient, dt)
        if self.torch_weight_decay:
            grad = grad + tf.constant(self.torch_weight_decay, dt) * variable  # grad.add(param, alpha=wd)
        if self.momentum:
            buf = self._momentum_buffers[self._get_variable_index(variable)]
            buf.assign(buf * tf.constant(self.momentum, dt) + grad)  # buf.mul_(momentum).add_(grad)
            grad = grad + tf.constant(self.momentum, dt) * buf if self.nesterov else tf.convert_to_tensor(buf)
        variable.assign_add(tf.cast(-learning_rate, dt) * grad)  # param.add_(grad, alpha=-lr)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.torch_weight_decay})
        return config


@contextlib.contextmanager
def floatx(dtype):
    """Keras's default float type set to ``dtype`` for the block (optimizers keep their learning rate in it)."""
    previous = keras.config.floatx()
    keras.config.set_floatx(str(dtype))
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


#: torch's hyperparameter names and defaults, per optimizer kind (as torch_impl.ladder_optim)
DEFAULTS = {
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "sgd": {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
}
#: the ports ("adam", "sgd") and the stock Keras optimizers given torch's hyperparameters
KINDS = {"adam": "adam", "sgd": "sgd", "keras_adam": "adam", "keras_sgd": "sgd"}


def make_optimizer(model, kind="adam", **hyper):
    """An optimizer for ``model`` from torch's hyperparameter names (lr, betas, eps, momentum, ...).

    ``kind`` "adam" / "sgd" are the ports (TorchAdam, TorchSGD); "keras_adam" /
    "keras_sgd" are the stock Keras optimizers given the same numbers, the
    straightforward translation (their weight decay is decoupled, and Adam's
    epsilon sits elsewhere). The learning rate is kept in the model's dtype.
    """
    if kind not in KINDS:
        raise ValueError(f"optimizer kind must be one of {sorted(KINDS)}, not {kind!r}")
    base = KINDS[kind]
    unknown = sorted(set(hyper) - set(DEFAULTS[base]))
    if unknown:
        raise TypeError(f"{kind}: unknown hyperparameters {unknown}; known: {sorted(DEFAULTS[base])}")
    h = {**DEFAULTS[base], **hyper}
    with floatx(model.trainable_variables[0].dtype):
        if kind == "adam":
            return TorchAdam(h["lr"], *h["betas"], epsilon=h["eps"], weight_decay=h["weight_decay"])
        if kind == "sgd":
            return TorchSGD(h["lr"], momentum=h["momentum"], nesterov=h["nesterov"], weight_decay=h["weight_decay"])
        wd = h["weight_decay"] or None
        if kind == "keras_adam":
            return keras.optimizers.Adam(h["lr"], *h["betas"], epsilon=h["eps"], weight_decay=wd)
        return keras.optimizers.SGD(h["lr"], momentum=h["momentum"], nesterov=h["nesterov"], weight_decay=wd)


def _slots(optimizer):
    """The optimizer's state variables per model variable, under torch's state names."""
    if isinstance(optimizer, TorchAdam):
        return {"exp_avg": optimizer._exp_avgs, "exp_avg_sq": optimizer._exp_avg_sqs}
    if isinstance(optimizer, keras.optimizers.Adam):
        return {"exp_avg": optimizer._momentums, "exp_avg_sq": optimizer._velocities}
    if isinstance(optimizer, TorchSGD):
        return {"momentum_buffer": optimizer._momentum_buffers} if optimizer.momentum else {}
    if isinstance(optimizer, keras.optimizers.SGD):
        return {"momentum_buffer": optimizer.momentums} if optimizer.momentum else {}
    raise TypeError(f"no torch state mapping for {type(optimizer).__name__}")


def _is_adam(optimizer):
    return isinstance(optimizer, (TorchAdam, keras.optimizers.Adam))


def _velocity_scale(optimizer):
    """Keras's SGD keeps the velocity -lr * buf where torch keeps buf."""
    if isinstance(optimizer, keras.optimizers.SGD):
        return -float(np.asarray(optimizer.learning_rate))
    return 1.0


def set_state(optimizer, model, state):
    """Load torch's optimizer state (torch_impl.ladder_optim.get_state's format) into a Keras optimizer."""
    slots = _variable_slots(model)
    optimizer.build([var for var, _ in slots.values()])
    wanted = {"exp_avg", "exp_avg_sq"} if _is_adam(optimizer) else set(_slots(optimizer))
    given = set(state) - {"step"}
    if given != wanted or (_is_adam(optimizer) and "step" not in state):
        raise KeyError(f"{type(optimizer).__name__} state needs {sorted(wanted | ({'step'} if _is_adam(optimizer) else set()))}; "
                       f"got {sorted(state)}")
    scale = _velocity_scale(optimizer)
    for key, buffers in _slots(optimizer).items():
        for name, (var, transposed) in slots.items():
            value = _weights.to_keras(state[key][name], transposed)
            buffers[optimizer._get_variable_index(var)].assign(value * scale if key == "momentum_buffer" else value)
    if "step" in state:
        optimizer.iterations.assign(int(state["step"]))


def get_state(optimizer, model):
    """The optimizer's state in torch's format (arrays in torch's layout by parameter name)."""
    slots = _variable_slots(model)
    scale = _velocity_scale(optimizer)
    state = {"step": int(optimizer.iterations.numpy())} if _is_adam(optimizer) else {}
    for key, buffers in _slots(optimizer).items():
        state[key] = {}
        for name, (var, transposed) in slots.items():
            value = _weights.to_torch(buffers[optimizer._get_variable_index(var)], transposed).numpy()
            state[key][name] = value / scale if key == "momentum_buffer" else value
    return state


def _layers(model):
    """torch module name -> Dense: a model's own ``torch_layers()`` (TwoLayerNet, DynamicNet), else Sequential's."""
    own = getattr(model, "torch_layers", None)
    return own() if callable(own) else torch_layers(model)


def _variable_slots(model):
    return _weights.variables(_layers(model))


def step(model, x, y, optimizer):
    """One pass of the loop: the loss, every parameter's gradient, and the parameters after the update."""
    loss_fn = SumSquaredError(dtype=x.dtype)
    with tf.GradientTape() as tape:
        y_pred = model(x)
        loss = loss_fn(y, y_pred)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    by_path = {v.path: g for v, g in zip(model.trainable_variables, grads)}
    layers = _layers(model)
    return {"loss": loss, "grad": _weights.named_gradients(layers, by_path),
            "params": _weights.named_parameters(layers)}


def train(model, x, y, optimizer, steps=500, log=None):
    """The tutorial's loop (updates ``model`` in place); ``log(t, loss)`` at t % 100 == 99."""
    loss_fn = SumSquaredError(dtype=x.dtype)
    optimizer.build(model.trainable_variables)  # its variables exist before the step is traced

    @tf.function  # the loop body as one graph: the same operations, without eager dispatch
    def train_step():
        with tf.GradientTape() as tape:
            y_pred = model(x)
            loss = loss_fn(y, y_pred)

        # fresh gradients from the tape: no zero_grad()
        grads = tape.gradient(loss, model.trainable_variables)

        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = []
    for t in range(steps):
        loss = train_step()
        losses.append(loss)
        if log is not None and t % 100 == 99:
            log(t, loss.numpy().item())
    return {"losses": tf.stack(losses), "params": _weights.named_parameters(_layers(model))}


def main():
    rng = np.random.default_rng(0)
    x, y, _, _ = tutorial_data(rng)
    model = build_model(two_layer_params(rng))
    learning_rate = 1e-4
    optimizer = TorchAdam(learning_rate=learning_rate)
    train(model, tf.constant(x, dtype=dtype), tf.constant(y, dtype=dtype), optimizer,
          log=lambda t, loss: print(t, loss))


if __name__ == "__main__":
    main()
