"""Zero-size inputs in real Keras (see tests/data/keras_zero_size.json). Run with the oracle venv:

    KERAS_BACKEND=tensorflow /work/oracle-venv/bin/python tests/data/make_keras_zero_size.py
"""
import json, sys
import numpy as np
import keras
cases = [
  # (class, kwargs, input_shape)
  ("Conv2DTranspose", dict(filters=2, kernel_size=3), (1, 0, 4, 3)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2), (1, 0, 4, 3)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 3, 0, 3)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, output_padding=1), (1, 0, 2, 3)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=(3, 2), strides=2, data_format="channels_first"), (1, 3, 0, 2)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2), (0, 4, 4, 3)),
  ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2), (1, 4, 4, 0)),
  ("Conv1DTranspose", dict(filters=2, kernel_size=4, strides=1), (2, 0, 3)),
  ("Conv1DTranspose", dict(filters=2, kernel_size=1, strides=3, output_padding=0), (1, 0, 3)),
  ("Conv3DTranspose", dict(filters=2, kernel_size=3, strides=(1, 2, 1)), (1, 2, 0, 2, 3)),
  ("Conv3DTranspose", dict(filters=2, kernel_size=2, data_format="channels_first"), (1, 0, 2, 2, 2)),
]
out = []
for cls, kw, shp in cases:
    layer = getattr(keras.layers, cls)(**kw, bias_initializer=keras.initializers.Constant(0.5), activation="sigmoid")
    rec = dict(class_name=cls, kwargs=kw, input_shape=list(shp))
    try:
        rec["compute_output_shape"] = list(layer.compute_output_shape(shp))
    except Exception as e:
        rec["compute_output_shape"] = f"{type(e).__name__}"
    cos = rec["compute_output_shape"]
    if keras.backend.backend() == "tensorflow" and isinstance(cos, list) and min(d for d in cos if d is not None) < 0:
        rec["output_shape"] = "process abort (TF check failure: Dimension -N must be >= 0)"
        out.append(rec); continue
    try:
        y = np.asarray(layer(np.ones(shp, np.float32)))
        rec["output_shape"] = list(y.shape)
        rec["unique_values"] = sorted(set(np.round(y.ravel(), 6).tolist()))[:4]
    except BaseException as e:
        rec["output_shape"] = f"{type(e).__name__}: {str(e)[:120]}"
    out.append(rec)
print(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__, "cases": out}))
