"""The forms a built model is stored and loaded in: one vocabulary for the store and the engines.

Must not: import anything (the store, the engines and the report all read these names).
"""

FORM_FP32 = "fp32"  # dense float ONNX graph, Conv+BN fused: every ONNX engine
FORM_DEEPSPARSE = "deepsparse"  # sparseml's converted integer graph (ConvInteger / QLinearConv)
FORM_QDQ = "qdq"  # QuantizeLinear/DequantizeLinear graph: ONNX Runtime and OpenVINO
FORM_TORCH = "torch"  # a PyTorch module, not an ONNX file
FORM_NNCF = "nncf-int8"  # an OpenVINO IR that NNCF quantized from the FP32 graph (the openvino_nncf engine)
ONNX_FORMS = (FORM_FP32, FORM_DEEPSPARSE, FORM_QDQ)
QUANTIZED_FORMS = (FORM_DEEPSPARSE, FORM_QDQ)  # quantized ONNX forms an artifact stores
INT8_FORMS = (*QUANTIZED_FORMS, FORM_NNCF)  # forms whose convolutions run in INT8
