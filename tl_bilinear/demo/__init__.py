"""The main job: train a bilinear model on the built-in corpus, sample it, analyse it.

``tl-bilinear demo --out runs/demo`` (what ``scripts/demo.sh`` runs) does, offline, in
a wall-clock budget for the whole job (default 7 minutes on 2 CPU cores, at most 10),
in named stages:

1. ``tokenizer``: trains a BPE tokenizer (4096 tokens, lowercase) on the synthetic story
   corpus, builds the model and chooses the precision (``"auto"``: bf16 autocast only
   where this CPU runs it clearly faster than fp32, measured);
2. ``train``: trains it (linear-decay schedule) for what the budget leaves after the
   other stages' reserve (``POST_TRAINING_S``), fitting the step count to the measured
   speed, with a final validation that shrinks to the time left; the checkpoint goes to
   ``out/checkpoint``;
3. ``samples``, ``validation data``, ``entropy``: sample stories; read validation blocks
   (200k tokens, or what a fifth of the time left reads) for the unigram entropy
   (nats/token) the validation loss is compared with, and for the report's contexts;
4. ``analysis``: eigendecomposes the interaction matrices of a few sentiment words'
   unembedding directions, plots their spectra (``out/spectra.png``), and checks the
   identity ``u · hook_mlp_out == Σ λ_i (v_i · x)²`` on held-out stories;
5. ``report``: the self-contained HTML analysis report of ``" sad"`` vs ``" happy"``
   (``out/report.html``), scanning as many of those contexts as fit in the time left;
6. everything to ``out/demo_summary.json``.

Ctrl-C or SIGTERM stops any stage within seconds (training saves its checkpoint first),
logs one line saying what was saved, and raises ``JobStopped``; a second one exits at once.

Modules: ``job`` (the stages, their budget and stop handling: ``run_demo``), ``analysis``
(spectra, identity check, report), ``summary`` (``DemoResult`` and the printed summary).
"""

from tl_bilinear.demo.analysis import SENTIMENT_WORDS, analyse, write_report
from tl_bilinear.demo.job import DEMO_PRESET, DEMO_PRESETS, POST_TRAINING_S, demo_config, run_demo
from tl_bilinear.demo.summary import DemoResult, print_summary

__all__ = [
    "DEMO_PRESET",
    "DEMO_PRESETS",
    "POST_TRAINING_S",
    "SENTIMENT_WORDS",
    "DemoResult",
    "analyse",
    "demo_config",
    "print_summary",
    "run_demo",
    "write_report",
]
