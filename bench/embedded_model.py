"""The embedded model on this machine: load time, prompt (prefill) and generation tokens/s.

python -m bench.embedded_model [--repeats 3] [--model-path FILE.gguf] [--threads N]
"""

from __future__ import annotations

import argparse
import time

from deepsearch.agent.config import LLMSettings
from deepsearch.agent.llm.llamacpp_backend import resolve_model_path

from bench.stats import print_table, summary

LONG_PROMPT = " ".join(
    f"Paragraph {i}: the river passes the old mill, the bridge and the market square before it reaches the sea."
    for i in range(20)
)


def run(repeats: int = 3, model_path: str = "", threads: int = 0) -> dict:
    from llama_cpp import Llama

    settings = LLMSettings(model_path=model_path, n_threads=threads)
    path = str(resolve_model_path(settings))
    loads, prefill, generation = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        llama = Llama(model_path=path, n_ctx=2048, n_threads=threads or None, logits_all=True, verbose=False)
        loads.append(time.perf_counter() - t)
        # Prefill: a long prompt and one generated token.
        llama.reset()
        t = time.perf_counter()
        out = llama.create_completion(LONG_PROMPT, max_tokens=1, temperature=0)
        prefill.append(out["usage"]["prompt_tokens"] / (time.perf_counter() - t))
        # Generation: a short prompt, many tokens; the tiny prefill is negligible.
        llama.reset()
        t = time.perf_counter()
        messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
        out = llama.create_chat_completion(messages=messages, max_tokens=128, temperature=0)
        generation.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t))
        del llama
    return {
        "model": path.rsplit("/", 1)[-1],
        "load_s": summary(loads),
        "prefill_tokens_per_s": summary(prefill),
        "generation_tokens_per_s": summary(generation),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-path", default="")
    parser.add_argument("--threads", type=int, default=0, help="0 = llama.cpp's default")
    args = parser.parse_args()
    f = run(args.repeats, args.model_path, args.threads)

    def fmt(s: dict, unit: str) -> str:
        return f"median {s['median']:.2f} {unit} (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"

    print_table(
        f"embedded model {f['model']}",
        [
            ("load", fmt(f["load_s"], "s")),
            ("prompt (prefill)", fmt(f["prefill_tokens_per_s"], "tok/s")),
            ("generation", fmt(f["generation_tokens_per_s"], "tok/s")),
        ],
    )


if __name__ == "__main__":
    main()
