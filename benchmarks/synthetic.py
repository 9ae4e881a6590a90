"""A seeded synthetic outcome table shaped like RouterBench's full 0-shot table (architecture.md §7).

It stands in for ``routerbench_0shot.pkl`` (not reachable here) in performance work and in tests of
learned routers, so it is structured rather than noise:

- Rows: 36,497 prompts at full scale in RouterBench's dataset mix (hellaswag 10,042, grade-school-math
  7,450, mmlu 14,042 over 57 subjects, arc-challenge 1,470, winogrande 1,267, mbpp 427, mt-bench 80,
  and 1,719 of a made-up ``misc`` eval); a smaller ``n_prompts`` scales every dataset proportionally.
- Quality: a model answers prompt i correctly with probability σ(a_j + s_kj + u_tj − b_k − β·d_i): a
  latent difficulty d_i shared by all models (so correctness correlates across models), a skill per
  (dataset, model) and per (topic, model) (so the best model changes with the dataset and topic), and
  an intercept a_j calibrated so that the pooled (row-weighted) quality of each model hits its target,
  gpt-4 0.78 down to mistral-7b 0.31. Binary, except mt-bench: judge score / 10 ~ Binomial(10, p) / 10.
- Cost: input tokens × input price + output tokens × output price, in $. Input length depends on the
  dataset, output length on the dataset and the model's verbosity; harder prompts are longer. Mean
  cost per prompt runs from ≈ $0.0033 (gpt-4) down to ≈ $0.00005 (mistral-7b).
- Text: a short prompt per row whose words name the dataset's task, the topic and a noisy difficulty
  level, so an embedding-based predictor has something to learn; responses, when asked, are short.
- sample_ids are ``<eval_name>.synthetic.<number>``; the eval name of mmlu rows is ``mmlu-<subject>``.

All randomness comes from one ``numpy.random.default_rng(seed)``: the same seed gives an identical
table, and asking for responses draws after everything else, so it changes nothing but the responses.

    python -m benchmarks.synthetic --out FILE [--seed S] [--n N] [--responses]
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from routeyard.arrays import BoolArray, FloatArray, IndexArray, ObjectArray
from routeyard.predictor.outcome_table import OutcomeTable

FULL_SIZE = 36_497


class SyntheticModel(NamedTuple):
    name: str
    price_in: float  # $ per 1M input tokens (list price)
    price_out: float  # $ per 1M output tokens
    quality: float  # pooled (row-weighted) mean quality the generator calibrates to
    verbosity: float  # output length relative to the dataset's typical answer


class SyntheticDataset(NamedTuple):
    name: str
    size: int  # rows at full scale
    input_tokens: float  # mean prompt length
    output_tokens: float  # mean answer length at verbosity 1
    difficulty: float  # b_k, in logits: positive is harder for every model
    answers: str  # "ABCD"/"AB" multiple choice, "number", or "text"
    template: str  # prompt text; turns separated by " || "
    topics: tuple[str, ...]


MODELS = (
    SyntheticModel("gpt-4-1106-preview", 10.0, 30.0, 0.78, 1.6),
    SyntheticModel("gpt-3.5-turbo-1106", 1.0, 2.0, 0.63, 0.8),
    SyntheticModel("claude-v2", 8.0, 24.0, 0.57, 1.2),
    SyntheticModel("claude-v1", 8.0, 24.0, 0.61, 1.1),
    SyntheticModel("claude-instant-v1", 0.8, 2.4, 0.56, 1.0),
    SyntheticModel("meta/llama-2-70b-chat", 0.9, 0.9, 0.47, 2.0),
    SyntheticModel("mistralai/mixtral-8x7b-chat", 0.6, 0.6, 0.62, 1.4),
    SyntheticModel("zero-one-ai/Yi-34B-Chat", 0.8, 0.8, 0.66, 1.5),
    SyntheticModel("meta/code-llama-instruct-34b-chat", 0.776, 0.776, 0.40, 1.2),
    SyntheticModel("WizardLM/WizardLM-13B-V1.2", 0.3, 0.3, 0.41, 1.6),
    SyntheticModel("mistralai/mistral-7b-chat", 0.2, 0.2, 0.31, 2.0),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MMLU_SUBJECTS = _words(
    """abstract-algebra anatomy astronomy business-ethics clinical-knowledge college-biology
    college-chemistry college-computer-science college-mathematics college-medicine college-physics
    computer-security conceptual-physics econometrics electrical-engineering elementary-mathematics
    formal-logic global-facts high-school-biology high-school-chemistry high-school-computer-science
    high-school-european-history high-school-geography high-school-government-and-politics
    high-school-macroeconomics high-school-mathematics high-school-microeconomics high-school-physics
    high-school-psychology high-school-statistics high-school-us-history high-school-world-history
    human-aging human-sexuality international-law jurisprudence logical-fallacies machine-learning
    management marketing medical-genetics miscellaneous moral-disputes moral-scenarios nutrition
    philosophy prehistory professional-accounting professional-law professional-medicine
    professional-psychology public-relations security-studies sociology us-foreign-policy virology
    world-religions"""
)

DATASETS = (
    SyntheticDataset("hellaswag", 10_042, 170, 5, 0.0, "ABCD",
                     "Pick the most plausible ending of this {level} scene about {topic}: {words}.",
                     _words("cooking sports gardening grooming travel music cleaning fitness")),
    SyntheticDataset("grade-school-math", 7_450, 110, 110, 0.6, "number",
                     "Solve this {level} word problem about {topic} step by step: {words}.",
                     _words("money baking distance shopping time farming savings fractions")),
    SyntheticDataset("mmlu", 14_042, 200, 6, 0.0, "ABCD",
                     "Answer this {level} multiple-choice question on {topic}: {words}.",
                     tuple(s.replace("-", " ") for s in _MMLU_SUBJECTS)),
    SyntheticDataset("arc-challenge", 1_470, 420, 5, -1.0, "ABCD",
                     "Answer this {level} grade-school science question about {topic}: {words}.",
                     _words("energy plants weather magnets rocks animals light forces")),
    SyntheticDataset("winogrande", 1_267, 300, 4, -0.2, "AB",
                     "Resolve the blank in this {level} sentence about {topic}: {words}.",
                     _words("friends work school family neighbors pets doctors holidays")),
    SyntheticDataset("mbpp", 427, 70, 170, 0.4, "text",
                     "Write a {level} Python function that handles {topic}: {words}.",
                     _words("strings lists sorting primes dictionaries recursion matrices regex")),
    SyntheticDataset("mt-bench", 80, 90, 280, -1.2, "text",
                     "Write a {level} answer on {topic}: {words}. || Now revise it to be more {level}.",
                     _words("writing roleplay reasoning math coding extraction stem humanities")),
    SyntheticDataset("misc", 1_719, 150, 40, 0.0, "text",
                     "Respond to this {level} request about {topic}: {words}.",
                     _words("summaries trivia translation advice definitions analogies facts")),
)  # fmt: skip

# Skill s_kj per (dataset, model) in logits, before a seeded jitter; relative only, because the
# intercepts absorb each model's overall level. Columns follow MODELS.
_AFFINITY = np.array([
    # gpt4 gpt35  clv2  clv1  inst llama  mixt    yi  code   wiz  mis7
    [ 0.3,  0.0, -0.6,  0.0,  0.0, -0.2,  0.3,  0.5, -0.4,  0.0,  0.0],  # hellaswag
    [ 0.8,  0.3,  0.2,  0.0, -0.2, -0.6,  0.1, -0.1, -0.4, -0.4, -0.5],  # grade-school-math
    [ 0.2,  0.0,  0.0,  0.2,  0.0,  0.0,  0.2,  0.4, -0.3,  0.0,  0.0],  # mmlu
    [ 0.5,  0.2, -0.8,  0.4,  0.2,  0.3,  0.4,  0.6,  0.0,  0.2,  0.3],  # arc-challenge
    [ 0.5,  0.0, -0.4,  0.0, -0.4,  0.0,  0.2,  0.4,  0.0,  0.2,  0.3],  # winogrande
    [ 0.2,  0.4,  0.3,  0.2,  0.2, -0.3,  0.2, -0.4,  1.0, -0.3,  0.0],  # mbpp
    [ 0.3,  0.3,  0.5,  0.3,  0.4, -0.2,  0.0, -0.2, -0.5,  0.0,  0.0],  # mt-bench
    [ 0.0,  0.2,  0.3,  0.3,  0.2,  0.0,  0.0,  0.0, -0.3,  0.0, -0.2],  # misc
])  # fmt: skip
_DISCRIMINATION = 1.5  # β: how strongly the shared difficulty drives every model's success
_LEVELS = ("simple", "routine", "moderate", "tricky", "obscure")
_LEVEL_EDGES = (-1.2, -0.4, 0.4, 1.2)  # cuts of noisy difficulty into the five level words
# Flat over datasets, indexed by a row's topic: the topic word, and the eval name its sample_id carries.
_TOPICS = tuple(topic for d in DATASETS for topic in d.topics)
_EVAL_NAMES = tuple(
    f"mmlu-{topic.replace(' ', '-')}" if d.name == "mmlu" else d.name for d in DATASETS for topic in d.topics
)
_FILLER = _words("red blue green quiet busy early late north south small large old new warm cold")


class _Rows(NamedTuple):
    """Per-row layout: dataset index into DATASETS, topic index into the flat topic list, number."""

    dataset: IndexArray
    topic: IndexArray
    number: IndexArray


def dataset_sizes(n_prompts: int = FULL_SIZE) -> dict[str, int]:
    """Rows per dataset in a table of ``n_prompts`` rows: the full-scale mix scaled proportionally.

    Sizes sum to exactly ``n_prompts``, are the real ones at :data:`FULL_SIZE`, and every dataset keeps
    at least one row. Raises ``ValueError`` when ``n_prompts`` is smaller than the number of datasets.
    """
    if n_prompts < len(DATASETS):
        raise ValueError(f"n_prompts must be at least {len(DATASETS)}, got {n_prompts}")
    full = np.array([d.size for d in DATASETS], dtype=np.int64)
    sizes = np.maximum(n_prompts * full // FULL_SIZE, 1)  # integer arithmetic: exact at full scale
    # Largest remainder: rows lost to flooring go to the datasets that lost the most.
    for k in np.argsort(-(n_prompts * full % FULL_SIZE), kind="stable")[: max(n_prompts - sizes.sum(), 0)]:
        sizes[k] += 1
    while sizes.sum() > n_prompts:  # the ≥ 1 floor overshot: take rows back from the largest datasets
        sizes[np.argmax(sizes)] -= 1
    return {d.name: int(s) for d, s in zip(DATASETS, sizes, strict=True)}


def generate_synthetic_table(
    *, seed: int = 0, n_prompts: int = FULL_SIZE, with_responses: bool = False
) -> OutcomeTable:
    """A RouterBench-shaped table of ``n_prompts`` rows × the 11 :data:`MODELS`, as the module describes.

    Deterministic in ``seed``; no quality is missing; rows are grouped by dataset in :data:`DATASETS`
    order. ``responses`` is ``None`` unless ``with_responses``. Raises ``ValueError`` when ``n_prompts``
    is smaller than the number of datasets.
    """
    rng = np.random.default_rng(seed)
    rows = _layout(rng, dataset_sizes(n_prompts))
    topic_difficulty = rng.normal(0.0, 0.5, len(_TOPICS))
    difficulty = topic_difficulty[rows.topic] + rng.standard_normal(n_prompts)
    quality = _quality(rng, rows, difficulty)
    cost = _cost(rng, rows, difficulty)
    prompts = _prompts(rng, rows, difficulty)
    return OutcomeTable(
        sample_ids=_sample_ids(rows),
        datasets=np.array([d.name for d in DATASETS])[rows.dataset],
        prompts=prompts,
        models=tuple(m.name for m in MODELS),
        quality=quality,
        missing=np.zeros(quality.shape, dtype=bool),
        cost=cost,
        responses=_responses(rng, rows, quality) if with_responses else None,
        source=f"synthetic(seed={seed}, n_prompts={n_prompts})",
    )


def _layout(rng: np.random.Generator, sizes: dict[str, int]) -> _Rows:
    counts = np.array(list(sizes.values()))
    dataset = np.repeat(np.arange(len(DATASETS)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_topics = np.array([len(d.topics) for d in DATASETS])
    first_topic = np.concatenate([[0], np.cumsum(n_topics)[:-1]])
    topic = first_topic[dataset] + rng.integers(0, n_topics[dataset])
    return _Rows(dataset=dataset, topic=topic, number=np.arange(len(dataset)) - starts[dataset])


def _quality(rng: np.random.Generator, rows: _Rows, difficulty: FloatArray) -> FloatArray:
    """(n, m) quality: Bernoulli(p), or Binomial(10, p) / 10 for mt-bench's judge scores."""
    skill = _AFFINITY + rng.normal(0.0, 0.3, _AFFINITY.shape)
    topic_skill = rng.normal(0.0, 0.3, (len(_TOPICS), len(MODELS)))
    hardness = np.array([d.difficulty for d in DATASETS])[rows.dataset] + _DISCRIMINATION * difficulty
    logits = skill[rows.dataset] + topic_skill[rows.topic] - hardness[:, None]
    p = _sigmoid(logits + _intercepts(logits, np.array([m.quality for m in MODELS])))
    quality = (rng.random(p.shape) < p).astype(np.float64)
    judged = rows.dataset == [d.name for d in DATASETS].index("mt-bench")
    quality[judged] = rng.binomial(10, p[judged]) / 10.0
    return quality


def _intercepts(logits: FloatArray, targets: FloatArray) -> FloatArray:
    """Per-model shifts a_j with mean_i σ(logits_ij + a_j) = targets_j, by damped Newton steps.

    Calibrating on the drawn sample rather than analytically keeps the pooled quality on target for
    every seed and size; only the Bernoulli draw is left to vary.
    """
    shift: FloatArray = np.log(targets / (1.0 - targets)) - logits.mean(axis=0)
    for _ in range(12):
        p = _sigmoid(logits + shift)
        slope = np.maximum((p * (1.0 - p)).mean(axis=0), 1e-6)
        shift -= np.clip((p.mean(axis=0) - targets) / slope, -2.0, 2.0)
    return shift


def _sigmoid(x: FloatArray) -> FloatArray:
    p: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return p


def _cost(rng: np.random.Generator, rows: _Rows, difficulty: FloatArray) -> FloatArray:
    """(n, m) $ cost: the same input tokens for every model, output tokens per model."""
    length = np.exp(0.15 * difficulty)  # harder prompts take more words to state and to answer
    input_mean = np.array([d.input_tokens for d in DATASETS])[rows.dataset] * length
    output_mean = np.array([d.output_tokens for d in DATASETS])[rows.dataset] * length
    verbosity = np.array([m.verbosity for m in MODELS])
    input_tokens = _tokens(rng, input_mean)
    output_tokens = _tokens(rng, output_mean[:, None] * verbosity)
    price_in = np.array([m.price_in for m in MODELS]) / 1e6
    price_out = np.array([m.price_out for m in MODELS]) / 1e6
    return input_tokens[:, None] * price_in + output_tokens * price_out


def _tokens(rng: np.random.Generator, mean: FloatArray) -> FloatArray:
    """Whole token counts ≥ 1 around ``mean``: lognormal with that mean, because lengths are skewed."""
    sigma = 0.4
    return np.maximum(1.0, np.rint(mean * rng.lognormal(-(sigma**2) / 2, sigma, mean.shape)))


def _prompts(rng: np.random.Generator, rows: _Rows, difficulty: FloatArray) -> ObjectArray:
    """(n,) tuples of turns; the level word is the difficulty seen through noise, as a hint not a label."""
    level = np.digitize(difficulty + rng.normal(0.0, 0.5, len(difficulty)), _LEVEL_EDGES)
    filler = np.array(_FILLER)[rng.integers(0, len(_FILLER), (len(difficulty), 3))]
    turns = [d.template.split(" || ") for d in DATASETS]
    texts = (
        tuple(t.format(level=_LEVELS[lv], topic=_TOPICS[tp], words=" ".join(w)) for t in turns[k])
        for k, tp, lv, w in zip(
            rows.dataset.tolist(), rows.topic.tolist(), level.tolist(), filler.tolist(), strict=True
        )
    )
    return np.fromiter(texts, dtype=object, count=len(difficulty))


def _sample_ids(rows: _Rows) -> NDArray[np.str_]:
    evals = np.array(_EVAL_NAMES)[rows.topic].tolist()
    return np.array([f"{e}.synthetic.{i}" for e, i in zip(evals, rows.number.tolist(), strict=True)])


def _responses(rng: np.random.Generator, rows: _Rows, quality: FloatArray) -> ObjectArray:
    """(n, m) short answers consistent with quality: the gold choice or number exactly when correct."""
    correct = quality >= 0.5
    gold = rng.integers(0, 1000, len(quality))
    miss = rng.random(quality.shape)  # which wrong choice, as a fraction of the wrong ones
    out = np.empty(quality.shape, dtype=object)
    for k, dataset in enumerate(DATASETS):
        mask = rows.dataset == k
        choices = len(dataset.answers) if dataset.answers in ("ABCD", "AB") else 1000
        wrong = gold[mask, None] + 1 + (miss[mask] * (choices - 1)).astype(np.intp)
        chosen = np.where(correct[mask], gold[mask, None], wrong) % choices
        out[mask] = _render(dataset, chosen, correct[mask], [_TOPICS[t] for t in rows.topic[mask]])
    return out


def _render(
    dataset: SyntheticDataset, chosen: IndexArray, correct: BoolArray, topics: list[str]
) -> ObjectArray:
    if dataset.answers == "number":
        cells = [[f"The answer is {c}." for c in row] for row in chosen.tolist()]
    elif dataset.answers == "text":
        good, bad = "Here is a complete answer about {}.", "I am not sure how to handle {}."
        pairs = zip(topics, correct.tolist(), strict=True)
        cells = [[(good if ok else bad).format(t) for ok in row] for t, row in pairs]
    else:
        cells = [[dataset.answers[c] for c in row] for row in chosen.tolist()]
    out = np.empty(chosen.shape, dtype=object)
    for i, row in enumerate(cells):
        for j, text in enumerate(row):
            out[i, j] = (text,)  # one answer turn, as the outcome table stores responses
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.synthetic --out FILE``: write a synthetic table (.pkl/.csv/.csv.gz/.parquet)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic",
        description="Write a seeded synthetic RouterBench-shaped outcome table.",
    )
    parser.add_argument("--out", required=True, help="file to write; the suffix picks the format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=FULL_SIZE, help="number of prompts")
    parser.add_argument("--responses", action="store_true", help="include short synthetic responses")
    args = parser.parse_args(argv)
    # Imported here, not at the top, so that generating tables never depends on the file formats.
    from routeyard.predictor.routerbench_format import write_routerbench_table

    table = generate_synthetic_table(seed=args.seed, n_prompts=args.n, with_responses=args.responses)
    write_routerbench_table(table, args.out)
    print(f"wrote {table.n_prompts} prompts × {table.n_models} models to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
