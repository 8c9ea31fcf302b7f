"""The image API provider against the loopback OpenAI-compatible server: images, policy drops."""

from __future__ import annotations

import numpy as np
from conftest import make_candidate
from openai_server import content_policy, ok_image, serve, server_error
from PIL import Image

from mossforge.client import EndpointConfig, ModelClient
from mossforge.generators.image_api import ImageApiRenderer
from mossforge.generators.negation import red_pixel_share
from mossforge.generators.render_images import render_candidates
from mossforge.images import ImageStore, png_bytes


def noisy_png(seed: int, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    return png_bytes(Image.fromarray(rng.integers(0, 200, (size, size, 3), dtype=np.uint8), "RGB"))


def client_for(server, tmp_path) -> ModelClient:
    return ModelClient([EndpointConfig(name="img", base_url=server.base_url, model="gpt-image-test",
                                       max_retries=1)],
                       cache_dir=tmp_path / "cache", backoff_base=0.01)


def test_images_policy_rejections_and_failures_are_counted_drops(tmp_path):
    script = [ok_image(noisy_png(1)), content_policy(), ok_image(noisy_png(2)), server_error(),
              server_error()]
    with serve(script=lambda request: script.pop(0) if script else None) as server:
        client = client_for(server, tmp_path)
        store = ImageStore(tmp_path / "images")
        records = [make_candidate("Plan a party here."),
                   make_candidate("How do I make this?", image_description="a chemistry set"),
                   make_candidate("Write a guide that promotes this.", "negated_harm"),
                   make_candidate("Where can I dump this?", image_description="a garbage bag")]
        provider = ImageApiRenderer(client, "img", size="48x48")
        # requests go out concurrently: answer by prompt, not by arrival order
        answers = {records[0].image_description: ok_image(noisy_png(1)),
                   records[1].image_description: content_policy(),
                   records[2].image_description: ok_image(noisy_png(2)),
                   records[3].image_description: server_error()}
        server.set_script(lambda request: answers[request.body["prompt"]])
        outcome = render_candidates(records, store, provider)
        client_requests = server.count("/images/generations")
        accounting = client.accounting()
        client.close()
    assert outcome.dropped == {"content_policy": 1, "image_api_server_error": 1}
    assert client_requests == 5  # the 500 was retried once (max_retries=1), the policy block never
    scene, refused, negated, failed = records
    assert refused.status == "dropped" and refused.drop_reason == "content_policy"
    assert failed.drop_reason == "image_api_server_error"
    assert scene.image.renderer == "image-api" and scene.image.model_id == "gpt-image-test"
    assert scene.image.seed is None and (scene.image.width, scene.image.height) == (48, 48)
    assert np.array_equal(np.asarray(store.open(scene.image)), np.asarray(Image.open(
        __import__("io").BytesIO(noisy_png(1)))))
    assert negated.contrast.image is not None and negated.image.variant == "prohibition_sign"
    assert red_pixel_share(store.open(negated.image)) > red_pixel_share(store.open(negated.contrast.image))
    assert accounting["stages"]["render"]["failures"]["content_policy"] == 1


def test_a_blank_api_image_is_dropped_and_a_rerun_asks_nothing(tmp_path):
    with serve() as server:  # the default answer is a solid-colour PNG: blank
        client = client_for(server, tmp_path)
        store = ImageStore(tmp_path / "images")
        records = [make_candidate("Plan a party here.")]
        outcome = render_candidates(records, store, ImageApiRenderer(client, "img", size="16x16"))
        assert outcome.dropped == {"blank_image": 1}
        server.set_script(lambda request: ok_image(noisy_png(3)))
        ok = [make_candidate("How do I slice it?")]
        render_candidates(ok, store, ImageApiRenderer(client, "img", size="16x16"))
        asked = server.count("/images/generations")
        again = [make_candidate("How do I slice it?"), make_candidate("Plan a party here.")]
        outcome = render_candidates(again, store, ImageApiRenderer(client, "img", size="16x16"))
        client.close()
        assert server.count("/images/generations") == asked == 2
    assert outcome.cache_hits == 2 and again[0].image == ok[0].image
    assert again[1].drop_reason == "blank_image"
