"""The prompt's embeddings kept between runs (Pipeline.encode_text) and made ahead of a run
(prepare_text, which the page calls while the learner types): a run that finds them skips the text
encoder, says so, and draws exactly what a run that encoded them draws."""

from __future__ import annotations

import numpy as np

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import TEXT_CACHE_SIZE, Pipeline, Settings

GUIDED = dict(prompt="a red circle on the left", negative="blue", seed=3, steps=2, guidance=7.5, scheduler="ddim")


class CountingRuntime(OnnxRuntime):
    """onnxruntime, counting the text encoder's runs."""

    def __init__(self):
        super().__init__()
        self.text_runs = 0

    def run(self, graph, feeds):
        self.text_runs += "input_ids" in feeds
        return super().run(graph, feeds)


def pipeline(model_dir) -> Pipeline:
    return Pipeline(Model.from_dir(str(model_dir)), CountingRuntime())


def test_a_second_run_of_the_same_words_reuses_their_embeddings(tiny_model_dir):
    p = pipeline(tiny_model_dir)
    phases = []
    first = p.generate(Settings(**GUIDED), on_phase=lambda name, call=None: phases.append(name))
    assert p.runtime.text_runs == 2 and not first.timings["text_reused"] and phases[0] == "text"
    phases.clear()
    again = p.generate(Settings(**{**GUIDED, "seed": 4}), on_phase=lambda name, call=None: phases.append(name))  # another seed, same words
    assert p.runtime.text_runs == 2 and again.timings["text_reused"] and "text" not in phases
    # the same picture as a pipeline that encoded the words itself
    fresh = pipeline(tiny_model_dir).generate(Settings(**{**GUIDED, "seed": 4}))
    assert np.array_equal(np.asarray(again.latents), np.asarray(fresh.latents)) and again.rgb == fresh.rgb
    # another negative prompt: the prompt's embeddings are kept, the negative's are new
    other = p.generate(Settings(**{**GUIDED, "negative": "green"}))
    assert p.runtime.text_runs == 3 and not other.timings["text_reused"]
    # guidance off encodes no negative prompt: the prompt's kept embeddings are all it needs
    assert p.generate(Settings(**{**GUIDED, "guidance": 0})).timings["text_reused"]


def test_prepared_words_make_the_run_skip_the_text_encoder(tiny_model_dir):
    p = pipeline(tiny_model_dir)
    assert p.prepare_text(Settings(**GUIDED)) is True and p.runtime.text_runs == 2
    assert p.prepare_text(Settings(**GUIDED)) is False and p.runtime.text_runs == 2  # (already made)
    run = p.generate(Settings(**GUIDED))
    assert run.timings["text_reused"] and p.runtime.text_runs == 2
    assert run.rgb == pipeline(tiny_model_dir).generate(Settings(**GUIDED)).rgb


def test_only_the_last_few_prompts_are_kept(tiny_model_dir):
    p = pipeline(tiny_model_dir)
    words = [f"a red circle number {i}" for i in range(TEXT_CACHE_SIZE + 1)]
    for prompt in words:
        p.prepare_text(Settings(prompt=prompt, guidance=0))
    assert len(p._text_cache) == TEXT_CACHE_SIZE
    assert p.prepare_text(Settings(prompt=words[-1], guidance=0)) is False  # the newest is kept
    assert p.prepare_text(Settings(prompt=words[0], guidance=0)) is True  # the oldest went first
