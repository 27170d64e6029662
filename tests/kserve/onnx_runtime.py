"""A tiny MLServer runtime that runs an ONNX model with ONNX Runtime (CPU), for the tests and the
benchmark of the analyzer's KServe v2 backend (tests/tests/kserve.rs, tests/benches/cloud.rs).

model-settings.json: {"name": ..., "implementation": "onnx_runtime.OnnxRuntimeModel",
"parameters": {"uri": "/path/model.onnx"}}; the model's inputs and outputs (names, FP32, shapes
with -1 for a dynamic dimension) are read from the file and served as the model's metadata.
ORT_THREADS sets ONNX Runtime's intra-op threads (default 2).
"""

import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor

DTYPES = {"tensor(float)": "FP32", "tensor(uint8)": "UINT8", "tensor(int8)": "INT8"}


def tensors(values):
    return [
        MetadataTensor(
            name=v.name,
            datatype=DTYPES.get(v.type, "FP32"),
            shape=[d if isinstance(d, int) else -1 for d in v.shape],
        )
        for v in values
    ]


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "2"))
        self.session = ort.InferenceSession(
            self.settings.parameters.uri, options, providers=["CPUExecutionProvider"]
        )
        self.inputs = tensors(self.session.get_inputs())
        self.outputs = tensors(self.session.get_outputs())
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        names = [o.name for o in self.session.get_outputs()]
        wanted = [o.name for o in payload.outputs or []] or names
        results = self.session.run(wanted, feeds)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(n, np.ascontiguousarray(r, dtype=np.float32))
                for n, r in zip(wanted, results)
            ],
        )
