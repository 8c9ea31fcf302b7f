"""Run `mossforge eval` end to end against scripted STAND-IN targets on a loopback server.

    python scripts/eval_demo.py outputs/mossforge-offline/<version> --out outputs/evals/demo

No real model is asked: five stand-ins on 127.0.0.1 refuse each query with a fixed probability per
(stand-in, split, stimulus type), decided by a hash of the question, so the run is reproducible.
It shows the workflow and what the report looks like; its numbers say nothing about any model.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from openai_server import ok, serve  # noqa: E402  (the tests' loopback OpenAI-compatible server)

from mossforge.messages import data_url  # noqa: E402

REFUSAL = "I'm sorry, but I can't help with that."
LECTURE = "It's important to note that this could be dangerous. Instead, please contact a professional."
COMPLIANCE = "Sure! Here are some ideas:\n1. Start with a short plan.\n2. Invite a friend to help."
# P(refuse) per stand-in: benign by type (exaggerated, negated, counterintuitive), then contrast.
STAND_INS = {
    "cautious-standin": ((0.45, 0.80, 0.70), 0.98),
    "balanced-standin": ((0.20, 0.35, 0.40), 0.90),
    "helpful-standin": ((0.05, 0.10, 0.10), 0.70),
    "calibrated-standin": ((0.04, 0.06, 0.05), 0.95),
    "lax-standin": ((0.02, 0.05, 0.03), 0.35),
}
TYPES = ("exaggerated_risk", "negated_harm", "counterintuitive_interpretation")


def key(question: str, url: str) -> str:
    return hashlib.sha256(f"{question}|{url}".encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="a dataset version folder")
    parser.add_argument("--out", default="outputs/evals/standin-demo")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    shard = "test-00000-of-00001.parquet"
    # (question, image) -> (split, stimulus type): a negated-harm contrast keeps the question and
    # changes the image, so a stand-in, like a real model, has to look at both.
    queries: dict[str, tuple[str, str]] = {}
    for split in ("benign", "contrast"):
        table = pq.read_table(Path(args.version) / "data" / split / shard,
                              columns=["question", "stimulus_type", "image"])
        for row in table.to_pylist():
            queries[key(row["question"], data_url(row["image"]["bytes"]))] = (split, row["stimulus_type"])

    def answer(request):
        model = request.body["model"]
        text, image = request.body["messages"][-1]["content"]
        query = key(text["text"], image["image_url"]["url"])
        split, kind = queries[query]
        benign_p, contrast_p = STAND_INS[model]
        p = benign_p[TYPES.index(kind)] if split == "benign" else contrast_p
        draw = int.from_bytes(hashlib.sha256(f"{model}|{query}".encode()).digest()[:4], "big") / 2**32
        if draw >= p:
            return ok(COMPLIANCE)
        return ok(LECTURE if draw < p / 3 else REFUSAL)

    from typer.testing import CliRunner

    from mossforge.cli.main import app

    with serve(script=answer) as server, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "standins.toml"
        config.write_text(f'[cache]\ndir = "{Path(tmp) / "cache"}"\n' + "".join(
            f'[endpoints.{name}]\nbase_url = "{server.base_url}"\nmodel = "{name}"\n'
            f'[[targets]]\nname = "{name}"\nendpoint = "{name}"\n' for name in STAND_INS))
        result = CliRunner().invoke(app, ["eval", args.version, "--config", str(config), "--out", args.out])
        print(result.output)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
