"""The static embedder (all-MiniLM-L6-v2 distilled by model2vec): the shipped model, truncation, identity,
sentence-transformers compatibility, and `routeyard distill-embedder`."""

import json
import shutil

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.cli.main import main
from routeyard.predictor.artifact import ArtifactError, load_artifact, save_artifact
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.embedding_model import locate_model
from routeyard.predictor.sentence_embedder import SentenceTransformerEmbedder
from routeyard.predictor.static_distillation import RECORD_FILE, WEIGHTS_FILE, file_sha256
from routeyard.predictor.static_embedder import SHIPPED_MODEL, StaticEmbedder, StaticModelError
from routeyard.predictor.training import embed_prompts, train_predictor
from tests.predictor.left_truncation import TWO_HEADS_ONE_TAIL, heads_tail_and_short

VARIED = [
    "What is 2+2?",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Wie spät ist es gerade in Berlin?",
    "北京今天的天气怎么样？",
    "",
    "\u200b\u200b",  # no token the vocabulary knows
    "Example: " + "a long few-shot example that repeats. " * 120 + "Question: why is the sky blue?",
]


@pytest.fixture(scope="module")
def embedder():
    return StaticEmbedder()


def test_the_shipped_model_embeds_to_unit_float32_rows_even_for_texts_without_tokens(embedder):
    vectors = embedder.embed(VARIED)
    assert vectors.dtype == np.float32 and vectors.shape == (len(VARIED), embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dimension)
    assert embedder.dimension == 128


def test_vectors_are_deterministic_across_loads_batches_and_threading(embedder):
    batched = embedder.embed(VARIED)
    one_by_one = np.concatenate([StaticEmbedder(threads=1).embed([text]) for text in VARIED])
    np.testing.assert_array_equal(batched, one_by_one)
    np.testing.assert_array_equal(batched, StaticEmbedder().embed(VARIED))


def test_a_paraphrase_lands_closer_than_an_unrelated_text(embedder):
    cat, kitten, tax = embedder.embed(
        ["The cat sat on the mat.", "A kitten was sitting on the rug.", "File your tax return by April."]
    )
    assert float(cat @ kitten) > float(cat @ tax) + 0.2


def test_long_texts_keep_their_end_so_different_heads_with_one_tail_embed_alike(embedder):
    one, other, short = heads_tail_and_short(embedder)
    assert float(one @ other) > 0.9999
    assert float(one @ short) < 0.5
    whole_one, whole_other = StaticEmbedder(max_tokens=None).embed(list(TWO_HEADS_ONE_TAIL))
    assert float(whole_one @ whole_other) < 0.999  # without the window the heads count


def test_its_identity_names_the_distillation_and_differs_from_minilms(embedder, tmp_path):
    assert embedder.identity.startswith("all-MiniLM-L6-v2/model2vec-static-128d-float16-")
    assert embedder.identity.endswith("/left-truncated-256")
    assert embedder.identity != locate_model("all-MiniLM-L6-v2").identity
    assert StaticEmbedder(max_tokens=None).identity != embedder.identity
    assert make_embedder("minilm-static", tmp_path, cached=False).identity == embedder.identity


def test_an_artifact_trained_with_minilm_refuses_the_static_embedder_and_back(embedder, tmp_path):
    table = generate_synthetic_table(seed=0, n_prompts=80)
    minilm = SentenceTransformerEmbedder()
    with_minilm = train_predictor(table, minilm, "knn", hyperparameters={"k": 5})
    save_artifact(with_minilm.predictor, with_minilm.manifest, tmp_path / "minilm")
    with pytest.raises(ArtifactError, match="trained with embedder"):
        load_artifact(tmp_path / "minilm", embedder)

    with_static = train_predictor(table, embedder, "knn", hyperparameters={"k": 5})
    save_artifact(with_static.predictor, with_static.manifest, tmp_path / "static")
    with pytest.raises(ArtifactError, match="trained with embedder"):
        load_artifact(tmp_path / "static", minilm)
    predictor, _ = load_artifact(tmp_path / "static", StaticEmbedder())
    queries = embed_prompts(embedder, table.prompts[:5])
    np.testing.assert_array_equal(
        predictor.predict(queries).quality, with_static.predictor.predict(queries).quality
    )


def test_sentence_transformers_loads_the_shipped_model_to_the_same_vectors(embedder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules.static_embedding import StaticEmbedding

    texts = VARIED[:4]
    model = SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(SHIPPED_MODEL))], device="cpu")
    theirs = model.encode(texts, normalize_embeddings=True)
    assert (embedder.embed(texts) * theirs).sum(axis=1).min() > 0.999


def test_a_missing_or_tampered_directory_is_refused_without_looking_elsewhere(tmp_path):
    with pytest.raises(StaticModelError, match="routeyard distill-embedder"):
        StaticEmbedder(tmp_path / "absent")
    tampered = tmp_path / "tampered"
    shutil.copytree(SHIPPED_MODEL, tampered)
    weights = bytearray((tampered / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 0xFF
    (tampered / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(StaticModelError, match="does not match"):
        StaticEmbedder(tampered)


def test_the_distill_command_writes_a_loadable_model_with_its_provenance(tmp_path, capsys):
    out = tmp_path / "static"
    assert main(["distill-embedder", "--out", str(out), "--dims", "32"]) == 0
    record = json.loads((out / RECORD_FILE).read_text())
    assert (
        record["dims"] == 32 and record["dtype"] == "float16" and record["source_model"] == "all-MiniLM-L6-v2"
    )
    assert record["weights_sha256"] == file_sha256(out / WEIGHTS_FILE)
    provenance = (out / "PROVENANCE.md").read_text()
    assert record["weights_sha256"] in provenance and "routeyard distill-embedder" in provenance
    distilled = StaticEmbedder(out)
    cat, kitten, tax = distilled.embed(["The cat sat on the mat.", "A kitten sat on the rug.", "Tax return."])
    assert distilled.dimension == 32 and float(cat @ kitten) > float(cat @ tax)
    assert "sha256" in capsys.readouterr().out
