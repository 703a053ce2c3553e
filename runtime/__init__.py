"""The on-device half of edgehound: preprocessing, labels and inference, with numpy and OpenCV only.

Nothing in this package imports torch, onnx, TensorFlow or TVM's compiler at import time.
"""
