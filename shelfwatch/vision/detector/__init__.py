"""A small learned facing detector (CenterNet-style): trained with torch, run with OpenCV.

``data`` makes training samples (numpy/OpenCV), ``train`` fits and exports the network
(torch, the ``models`` extra), ``infer`` runs the exported ONNX file with OpenCV's DNN
module, so the default backend needs no torch and no downloaded weights.
"""
