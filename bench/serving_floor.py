"""The floor for a Python model server: a bare Starlette app that decodes an Open Inference
Protocol V2 body with orjson, calls the model's ``predict`` inline on the event loop and
answers with orjson, under uvicorn with uvloop and httptools and no access log.

Nothing else: no validation beyond what NumPy does, no thread hop, no metrics, no request
log, no timeouts. lockgate's server does all of that, so the distance between the two is
what lockgate's features cost per request.

Both V2 layouts lockgate accepts: one ``[n, N]`` tensor, or one ``[n]`` tensor per feature
(in the model's feature order). Run: ``python serving_floor.py MODEL.joblib NAME PORT``.
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(model: object, name: str) -> Starlette:
    predict = model.predict  # type: ignore[attr-defined]

    async def infer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        inputs = body["inputs"]
        if len(inputs) == 1 and len(inputs[0]["shape"]) == 2:
            X = np.asarray(inputs[0]["data"], dtype=np.float64).reshape(inputs[0]["shape"])
        else:
            X = np.column_stack([np.asarray(t["data"], dtype=np.float64) for t in inputs])
        labels = predict(X)
        answer = {
            "model_name": name,
            "outputs": [
                {
                    "name": "predicted",
                    "datatype": "INT64",
                    "shape": [len(labels)],
                    "data": labels,
                }
            ],
        }
        return Response(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    return Starlette(
        routes=[
            Route(f"/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
        ]
    )


def main() -> None:
    model_file, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = make_app(joblib.load(model_file), name)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
