"""The forms a built model is stored and loaded in: one vocabulary for the store and the engines.

Must not: import anything (the store, the engines and the report all read these names).
"""

FORM_FP32 = "fp32"  # dense float ONNX graph, Conv+BN fused: every ONNX engine
FORM_DEEPSPARSE = "deepsparse"  # sparseml's converted integer graph (ConvInteger / QLinearConv)
FORM_QDQ = "qdq"  # QuantizeLinear/DequantizeLinear graph: ONNX Runtime and OpenVINO
FORM_TORCH = "torch"  # a PyTorch module, not an ONNX file
ONNX_FORMS = (FORM_FP32, FORM_DEEPSPARSE, FORM_QDQ)
QUANTIZED_FORMS = (FORM_DEEPSPARSE, FORM_QDQ)
