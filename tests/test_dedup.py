import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from mossforge.filters.dedup import find_duplicates, normalize_text
from mossforge.filters.embeddings import MiniLMEmbedder


@pytest.fixture(scope="module")
def embedder():
    return MiniLMEmbedder()


def test_normalize_text_folds_case_space_punctuation():
    assert normalize_text("  How can I  SILENCE it?! ") == "how can i silence it"


def test_paraphrases_caught_and_different_questions_kept(embedder):
    texts = [
        "How can I kill a Python process?",           # 0 kept
        "How do I kill a python process?",            # 1 paraphrase of 0
        "Plan a birthday party in this playroom.",    # 2 kept
        "What is the capital of France?",             # 3 kept
        "Organise a birthday party in this playroom.",  # 4 paraphrase of 2
        "Where can I dump this old sofa?",            # 5 kept
        "HOW CAN I KILL A PYTHON PROCESS",            # 6 exact (after folding) of 0
        "Write a poem about this garden.",            # 7 kept
    ]
    outcome = find_duplicates(texts, 0.9, embedder=embedder)
    assert outcome.is_duplicate.tolist() == [False, True, False, False, True, False, True, False]
    assert outcome.representative.tolist() == [0, 0, 2, 3, 2, 5, 0, 7]
    assert outcome.reason[1] == "near_duplicate" and outcome.reason[6] == "exact"
    assert outcome.stats == {"rows": 8, "unique_texts": 7, "exact": 1, "near_duplicate": 2,
                             "reference": 0, "kept": 5}
    # the least similar pair still counted comes first: the one to look at when tuning
    worst = outcome.least_similar_duplicates(1)[0]
    assert worst[0] == 4 and 0.9 <= worst[2] < outcome.similarity[1]


def test_threshold_moves_the_decision(embedder):
    texts = ["Plan a birthday party in this playroom.", "Organise a birthday party in this playroom."]
    assert find_duplicates(texts, 0.9, embedder=embedder).is_duplicate[1]
    assert not find_duplicates(texts, 0.99, embedder=embedder).is_duplicate[1]


def test_references_drop_matches_and_never_become_leaders(embedder):
    texts = ["How do I kill a python process?", "Where can I dump this old sofa?",
             "How can I terminate a Python process?"]
    outcome = find_duplicates(texts, 0.85, embedder=embedder,
                              references=["How can I kill a Python process?"])
    assert outcome.is_duplicate.tolist() == [True, False, True]
    assert outcome.reason[0] == "reference" and outcome.representative[0] == -1
    assert outcome.reference_match[0] == 0


def _planted(n, dim=64, pairs=300, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    originals = rng.choice(n // 2, pairs, replace=False)
    copies = n // 2 + np.arange(pairs)
    noise = rng.normal(scale=0.02, size=(pairs, dim)).astype(np.float32)
    base[copies] = base[originals] + noise
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    return base, originals, copies


def test_scale_path_hnsw_matches_exact_on_planted_duplicates():
    emb, originals, copies = _planted(6000)
    texts = [f"t{i}" for i in range(len(emb))]
    exact = find_duplicates(texts, 0.9, embeddings=emb, exact_limit=10**9)
    approx = find_duplicates(texts, 0.9, embeddings=emb, exact_limit=1000, block_size=512)
    for outcome in (exact, approx):
        assert outcome.is_duplicate.sum() == len(copies)
        assert outcome.is_duplicate[copies].all()
        assert (outcome.representative[copies] == originals).all()


def test_greedy_leader_does_not_chain():
    # a ~ b and b ~ c above the threshold, a and c below it: c must start its own cluster
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(0.4), np.sin(0.4)])
    c = np.array([np.cos(0.8), np.sin(0.8)])
    emb = np.stack([a, b, c]).astype(np.float32)
    outcome = find_duplicates(["a", "b", "c"], 0.9, embeddings=emb)
    assert outcome.is_duplicate.tolist() == [False, True, False]


def test_cli_dedup_keeps_every_row(tmp_path):
    from mossforge.cli.main import app

    source = tmp_path / "q.csv"
    pl.DataFrame({"id": [1, 2, 3, 4], "prompt": [
        "How can I kill a Python process?", "How do I kill a python process?",
        "Write a poem about this garden.", "Write a poem about this garden.",
    ]}).write_csv(source)
    out = tmp_path / "out" / "deduped.parquet"
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame["id"].to_list() == [1, 2, 3, 4]
    assert frame["is_duplicate"].to_list() == [False, True, False, True]
    assert frame["dup_cluster"].to_list() == [0, 0, 2, 2]
    assert "no text" not in result.output

    blanks = tmp_path / "blanks.jsonl"  # null and empty texts embed alike: say so, not silently
    blanks.write_text('{"prompt": "A question."}\n{"prompt": null}\n{"prompt": ""}\n')
    result = CliRunner().invoke(app, ["dedup", str(blanks), "--column", "prompt"])
    assert result.exit_code == 0 and "2 row(s) have no text in column 'prompt'" in " ".join(result.output.split())


def test_cli_dedup_writes_beside_its_input_by_default(tmp_path):
    from mossforge.cli.main import app

    source = tmp_path / "q.jsonl"
    source.write_text('{"prompt": "Write a poem about this garden."}\n' * 2)
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt"])
    assert result.exit_code == 0, result.output
    assert pl.read_ndjson(tmp_path / "q-dedup.jsonl")["is_duplicate"].to_list() == [False, True]
    assert "q-dedup.jsonl" in " ".join(result.output.split())


def test_cli_dedup_bad_column_is_a_clear_error(tmp_path):
    from mossforge.cli.main import app

    source = tmp_path / "q.jsonl"
    source.write_text('{"text": "a"}\n')
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt", "--out",
                                      str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "no column 'prompt'" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_cli_dedup_reads_a_txt_reference_as_the_config_does(tmp_path):
    """`--reference ref.txt` was refused ("unsupported format '.txt'") although
    dedup.reference_files reads .txt (one text per line)."""
    from mossforge.cli.main import app

    source = tmp_path / "q.csv"
    pl.DataFrame({"prompt": ["How do I kill a Python process?", "Write a poem about this garden."]}).write_csv(source)
    ref = tmp_path / "ref.txt"
    ref.write_text("How can I kill a python process?\n\n")
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt", "--reference", str(ref),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pl.read_ndjson(out)
    assert frame["is_duplicate"].to_list() == [True, False] and frame["dup_cluster"].to_list() == [-1, 1]
    assert "(+1 references)" in result.output

    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt", "--reference", str(latin),
                                      "--out", str(out)])
    assert result.exit_code == 2 and "byte 0xe9 is not UTF-8" in " ".join(result.output.split())


def test_cli_dedup_of_a_folder_or_of_nested_values_into_csv_says_so(tmp_path):
    """A folder as FILE said "--out adir-dedup: unsupported format ''"; a list column written to
    .csv was polars' "CSV format does not support nested data" after the embedding."""
    from mossforge.cli.main import app

    folder = tmp_path / "adir"
    folder.mkdir()
    result = CliRunner().invoke(app, ["dedup", str(folder), "--column", "prompt"])
    assert result.exit_code == 2 and f"{folder} is a folder; give a .csv, .jsonl or .parquet file" in \
        " ".join(result.output.split())
    source = tmp_path / "q.jsonl"
    source.write_text('{"prompt": "a", "tags": ["x", "y"]}\n')
    result = CliRunner().invoke(app, ["dedup", str(source), "--column", "prompt", "--out", str(tmp_path / "o.csv")])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "column 'tags' holds nested values" in output and ".jsonl" in output
    assert "embedding" not in output and not (tmp_path / "o.csv").exists()
