"""torch_mlp's peer: a minimal MLServer custom runtime, what MLServer users deploy for a
PyTorch model (MLServer ships no PyTorch runtime).

It reads the same ``model.safetensors`` lockgate serves (weights, with the architecture
JSON under the header's ``"lockgate"`` metadata key), rebuilds the same ``nn.Sequential``
MLP, and answers a V2 request's ``[n, 20]`` tensor with the class labels as ``predict``.
``serving_model.py`` copies this file into MLServer's model folder as ``torch_runtime.py``
(``"implementation": "torch_runtime.TorchMLP"``). It runs in bench/.venv-mlserver.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, NumpyRequestCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri
from safetensors import safe_open
from safetensors.torch import load_file

_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}


def build_mlp(architecture: dict) -> torch.nn.Sequential:
    spec = architecture["module"]
    layers: list[torch.nn.Module] = []
    width = architecture["n_features"]
    for hidden in spec["hidden_layers"]:
        layers += [torch.nn.Linear(width, hidden), _ACTIVATIONS[spec["activation"]]()]
        if spec["dropout"]:
            layers.append(torch.nn.Dropout(spec["dropout"]))
        width = hidden
    layers.append(torch.nn.Linear(width, architecture["n_outputs"]))
    return torch.nn.Sequential(*layers)


class TorchMLP(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings, wellknown_filenames=["model.safetensors"])
        with safe_open(path, framework="pt") as weights:
            architecture = json.loads(weights.metadata()["lockgate"])
        self._module = build_mlp(architecture)
        self._module.load_state_dict(load_file(path))
        self._module.eval()
        self._classes = np.asarray(architecture["classes"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        X = self.decode_request(payload, default_codec=NumpyRequestCodec)
        with torch.inference_mode():
            logits = self._module(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        labels = self._classes[logits.argmax(dim=1).numpy()]
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("predict", labels)],
        )
