"""Offline pass@k evaluation on VerilogEval v2, RTLLM and verirl task files.

The evaluation is two separate steps, as in OpenAI's human-eval: sampling writes ``samples.jsonl``
(:mod:`verirl.eval.generate`), scoring reads it through the reward engine (:mod:`verirl.eval.scoring`), needs no
GPU and can be rerun. Modules:

* :mod:`~verirl.eval.benchmarks` — loaders for the benchmarks' original folder layouts;
* :mod:`~verirl.eval.prompts` — the prompts each benchmark's own harness sends;
* :mod:`~verirl.eval.extraction` — named rules that take the code from a reply (VerilogEval's ``sv-generate``,
  first block, CodeV-R1's last answer block, the training extractor);
* :mod:`~verirl.eval.generate` — vLLM, OpenAI-compatible HTTP and transformers backends, resumable;
* :mod:`~verirl.eval.scoring` — benchmark problems → reward-engine tasks, verdicts, failure classes;
* :mod:`~verirl.eval.passk` — the unbiased pass@k estimator;
* :mod:`~verirl.eval.failures` — VerilogEval's ``sv-iv-analyze`` (result letters from compiler and simulator logs);
* :mod:`~verirl.eval.official` — the official harnesses one sample at a time (validation), and their file names;
* :mod:`~verirl.eval.conventions` — what the official flows and CodeV-R1 do, and how far a run is from each;
* :mod:`~verirl.eval.report` / :mod:`~verirl.eval.plots` / :mod:`~verirl.eval.compare` — outputs;
* :mod:`~verirl.eval.cli` — ``verirl eval``.
"""
