"""Real tf2onnx 1.17 exports of Keras Conv{1,2,3}DTranspose for check/repair tests.

Run in a throwaway venv with tf2onnx (it installed cleanly next to tensorflow-cpu 2.21,
numpy 2.4.6, protobuf 7.36.2): ``python -m venv /tmp/tf2onnx-venv &&
/tmp/tf2onnx-venv/bin/pip install tf2onnx tensorflow-cpu``, then
``/tmp/tf2onnx-venv/bin/python tests/data/converters/make_tf2onnx.py``.
Writes tf2onnx_<name>.onnx and tf2onnx_<name>.npz (x and Keras's own y per size).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf2onnx

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (layer factory, input spatial shape (None = free), sizes to record, channels)
CASES = {
    "k2d_same_k3_s2": (lambda: tf.keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
                       (4, 5), [(4, 5)], 2),
    "k1d_valid_k1_s2": (lambda: tf.keras.layers.Conv1DTranspose(3, 1, strides=2, padding="valid"),
                        (6,), [(6,)], 2),
    "k3d_same_k3_s2": (lambda: tf.keras.layers.Conv3DTranspose(3, 3, strides=2, padding="same"),
                       (3, 4, 3), [(3, 4, 3)], 2),
    "k2d_same_k3_s2_dyn": (lambda: tf.keras.layers.Conv2DTranspose(3, 3, strides=2,
                                                                   padding="same"),
                           (None, None), [(4, 5), (5, 6)], 2),
}


def main() -> None:
    for name, (make, spatial, sizes, c) in CASES.items():
        tf.keras.utils.set_random_seed(0)
        inp = tf.keras.Input(shape=(*spatial, c), batch_size=1, name="x")
        model = tf.keras.Model(inp, make()(inp))
        spec = (tf.TensorSpec((1, *spatial, c), tf.float32, name="x"),)
        path = os.path.join(HERE, f"tf2onnx_{name}.onnx")
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)
        arrays = {}
        rng = np.random.default_rng(0)
        for j, size in enumerate(sizes):
            x = rng.standard_normal((1, *size, c)).astype(np.float32)
            arrays[f"x{j}"] = x
            arrays[f"y{j}"] = model(x).numpy()
        np.savez(os.path.join(HERE, f"tf2onnx_{name}.npz"), **arrays)
        print(name, [a.shape for a in arrays.values()])


if __name__ == "__main__":
    main()
