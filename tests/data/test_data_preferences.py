"""DPO preference pairs and pass-rate difficulty, scored by the reward engine with real tools."""

from __future__ import annotations

import json

import pytest
from data_fixtures import CORPUS, REWRITES, fence

from data_pipeline.config import DifficultyConfig, LLMConfig, PreferenceConfig
from data_pipeline.difficulty import estimate_difficulty
from data_pipeline.preferences import build_preferences, make_pairs

pytestmark = pytest.mark.eda

ADDER = """module adder(input [3:0] a, input [3:0] b, output [4:0] s);
  assign s = a + b;
endmodule
"""
#: verirl harness: one check per input pair, partial credit = passed / total
ADDER_TB = """module tb;
  reg [3:0] a, b;
  wire [4:0] s, s_ref;
  integer i, pass = 0, total = 0;
  adder dut(.a(a), .b(b), .s(s));
  ref_adder golden(.a(a), .b(b), .s(s_ref));
  initial begin
    for (i = 0; i < 256; i = i + 1) begin
      {a, b} = i; #1;
      total = total + 1;
      if (s === s_ref) pass = pass + 1;
    end
    `VERIRL_REPORT(pass, total)
  end
endmodule
"""
RIGHT = fence(ADDER)
HALF = fence("module adder(input [3:0] a, input [3:0] b, output [4:0] s);\n  assign s = a ^ b;\nendmodule")
WRONG_SYNTAX = fence("module adder(input [3:0] a, input [3:0] b, output [4:0] s)\n  assign s = a + b\nendmodule")
NO_CODE = "I don't know."


def _tasks(tmp_path, rows) -> str:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_pairs_from_a_file_of_samples(tmp_path):
    tasks = _tasks(tmp_path, [
        {"id": "add", "prompt": "Write a 4-bit adder named adder.", "top": "adder", "reference": ADDER,
         "testbench": ADDER_TB},
        {"id": "chat", "prompt": [{"role": "user", "content": "Write adder."}], "top": "adder",
         "reference": ADDER, "testbench": ADDER_TB},
        {"id": "same", "prompt": "Write adder.", "top": "adder", "reference": ADDER, "testbench": ADDER_TB},
    ])
    samples = tmp_path / "samples.jsonl"
    rows = [("add", RIGHT), ("add", HALF), ("add", WRONG_SYNTAX), ("add", NO_CODE), ("add", RIGHT),
            ("chat", RIGHT), ("chat", HALF), ("same", RIGHT), ("same", RIGHT + "\n")]
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    cfg = PreferenceConfig(tasks=tasks, output=str(tmp_path / "pairs.jsonl"), completions=str(samples),
                           margin=0.25, max_pairs_per_prompt=2, require_chosen_pass=False)  # partial-credit pairs too
    counts = build_preferences(cfg, progress=False)
    pairs = [json.loads(line) for line in open(tmp_path / "pairs.jsonl")]
    by_task = {}
    for p in pairs:
        by_task.setdefault(p["task_id"], []).append(p)
        assert p["chosen_score"]["pass_fraction"] - p["rejected_score"]["pass_fraction"] >= 0.25
    assert len(by_task["add"]) == 2 and len(by_task["chat"]) == 1 and "same" not in by_task
    first = by_task["add"][0]
    assert first["chosen"] == RIGHT and first["chosen_score"]["pass_fraction"] == 1.0
    assert first["rejected_score"]["pass_fraction"] == 0.0
    assert by_task["add"][1]["chosen"] != first["chosen"] or by_task["add"][1]["rejected"] != first["rejected"]
    chat = by_task["chat"][0]  # conversational prompt -> conversational chosen/rejected (TRL format)
    assert chat["chosen"] == [{"role": "assistant", "content": RIGHT}] and chat["rejected"][0]["content"] == HALF
    assert 0.0 < chat["rejected_score"]["pass_fraction"] < 0.75
    assert counts["pairs"] == 3 and counts["no_pair_with_margin"] == 1 and counts["completions"] == 9


def test_unscorable_samples_are_never_rejected():
    from rewards.score import Score

    ok = Score(1.0, True, None, {}, {"pass_fraction": 1.0})
    infra = Score.unscorable("infrastructure", "tool crashed")
    cfg = PreferenceConfig(tasks="t", output="o", completions="c", margin=0.5)
    assert make_pairs({"id": "t", "prompt": "p"}, ["a", "b"], [ok, infra], cfg) == []


def test_preferences_sampled_from_a_policy_and_difficulty(tmp_path, llm_server):
    """A policy served over HTTP: pairs from its samples; the pass rate drops always/never-solved prompts."""
    base_url, mock = llm_server
    code = {name: open(f"{CORPUS}/{f}").read()
            for name, f in (("adder8", "adder.v"), ("mux4", "mux.v"), ("alu8", "alu.v"))}
    rows = [{"id": top, "prompt": f"Implement ... a synthesizable Verilog module named `{top}`.", "top": top,
             "reference": code[top], "metadata": {"difficulty": None}} for top in code]
    tasks = _tasks(tmp_path, rows)
    # adder8: always right; mux4: always wrong; alu8: right one time in two
    mock.variants["alu8"] = [REWRITES["alu8"], REWRITES["mux4"]]
    llm = LLMConfig(kind="openai", model="policy", base_url=base_url, api_key_env="", max_retries=0)
    counts = estimate_difficulty(DifficultyConfig(tasks=tasks, output=str(tmp_path / "rl.jsonl"), llm=llm,
                                                  samples=4), progress=False)
    kept = [json.loads(line) for line in open(tmp_path / "rl.jsonl")]
    assert [r["id"] for r in kept] == ["alu8"]
    assert kept[0]["metadata"]["difficulty"] == {"pass_rate": 0.5, "samples": 4, "model": "policy"}
    assert counts["dropped_always_solved"] == 1 and counts["dropped_never_solved"] == 1

    cfg = PreferenceConfig(tasks=tasks, output=str(tmp_path / "pairs.jsonl"), llm=llm, samples_per_prompt=4)
    counts = build_preferences(cfg, progress=False)
    pairs = [json.loads(line) for line in open(tmp_path / "pairs.jsonl")]
    assert [p["task_id"] for p in pairs] == ["alu8"]  # the only prompt whose samples differ
    assert pairs[0]["chosen"] == REWRITES["alu8"] and pairs[0]["rejected"] == REWRITES["mux4"]
    assert counts["no_pair_with_margin"] == 2


def test_preference_config_errors():
    with pytest.raises(ValueError, match="margin"):
        PreferenceConfig(margin=0)
    with pytest.raises(ValueError, match="completions.*llm"):
        PreferenceConfig(tasks="t", output="o").validate_for_run()


def test_difficulty_run_resumes_after_an_outage(tmp_path):
    from data_pipeline.llm import LLMBackend, LLMUnavailable

    class Flaky(LLMBackend):
        """Right answer for even-numbered tasks, wrong for odd ones; down on its second call once."""

        def __init__(self, fail_on: int | None):
            super().__init__(LLMConfig(kind="openai", model="flaky"))
            self.calls, self.fail_on = 0, fail_on

        def generate(self, conversations, *, n=1, seed=0):
            self.calls += 1
            if self.calls == self.fail_on:
                raise LLMUnavailable("endpoint down")
            return [[RIGHT if "even" in c[-1]["content"] else HALF] * n for c in conversations]

    rows = [{"id": f"t{i}", "prompt": f"adder ({'even' if i % 2 == 0 else 'odd'})", "top": "adder",
             "reference": ADDER, "testbench": ADDER_TB} for i in range(6)]
    tasks = _tasks(tmp_path, rows)
    cfg = DifficultyConfig(tasks=tasks, output=str(tmp_path / "out.jsonl"), llm=LLMConfig(kind="openai", model="x"),
                           samples=2, batch_size=2, drop_always_solved=False)
    first = Flaky(fail_on=2)
    with pytest.raises(LLMUnavailable):
        estimate_difficulty(cfg, backend=first, progress=False)
    assert not (tmp_path / "out.jsonl").exists()
    second = Flaky(fail_on=None)
    counts = estimate_difficulty(cfg, backend=second, progress=False)
    assert second.calls == 2  # the first shard was committed before the outage and is not sampled again
    kept = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert [r["id"] for r in kept] == ["t0", "t2", "t4"]  # odd ones never pass: dropped
    assert counts == {"tasks": 6, "kept": 3, "dropped_never_solved": 3}
    assert all(r["metadata"]["difficulty"]["pass_rate"] == 1.0 for r in kept)


@pytest.mark.parametrize("system_prompt, template", [
    ("Answer in Verilog.", "{prompt}"),
    (None, "Task {id}: {prompt} (module `{top}`)"),
    ("Be brief.", "### {top}\n{prompt}"),
])
def test_difficulty_samples_the_prompt_the_rl_recipe_trains_on(tmp_path, system_prompt, template):
    """The pass rate is measured on the conversation the trainer renders (data_pipeline.prompting.render_prompt
    with the recipe's system_prompt and prompt_template), not on the bare prompt."""
    from data_pipeline.llm import LLMBackend
    from data_pipeline.prompting import render_prompt

    class Recording(LLMBackend):
        def __init__(self):
            super().__init__(LLMConfig(kind="openai", model="rec"))
            self.seen = []

        def generate(self, conversations, *, n=1, seed=0):
            self.seen += conversations
            return [[RIGHT] * n for _ in conversations]

    rows = [{"id": f"t{i}", "prompt": f"adder {i}", "top": "adder", "reference": ADDER, "testbench": ADDER_TB}
            for i in range(3)]
    backend = Recording()
    cfg = DifficultyConfig(tasks=_tasks(tmp_path, rows), output=str(tmp_path / "out.jsonl"),
                           llm=LLMConfig(kind="openai", model="x"), samples=2, drop_always_solved=False,
                           system_prompt=system_prompt, prompt_template=template)
    estimate_difficulty(cfg, backend=backend, progress=False)
    assert backend.seen == [render_prompt(r["prompt"], r, system_prompt=system_prompt, prompt_template=template)
                            for r in rows]
    with pytest.raises(ValueError, match="prompt_template"):
        DifficultyConfig(prompt_template="{prompt} {colour}")


def test_the_data_commands_run_from_the_command_line(tmp_path, capsys):
    """`verirl data preferences` and `verirl data difficulty` through the CLI: a summary on success, exit 1 for an
    endpoint that is down (infrastructure: rerun to resume), exit 2 for a recipe the backend cannot use."""
    import socket

    from verirl.cli import main

    tasks = _tasks(tmp_path, [{"id": "add", "prompt": "Write adder.", "top": "adder", "reference": ADDER,
                               "testbench": ADDER_TB}])
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "add", "completion": c}) + "\n" for c in (RIGHT, HALF)))
    pairs = tmp_path / "pairs.jsonl"
    assert main(["data", "preferences", "--tasks", tasks, "--completions", str(samples), "--output", str(pairs),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 1 and pairs.read_text().count("\n") == 1

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    recipe = tmp_path / "difficulty.yaml"
    recipe.write_text(f"llm: {{kind: openai, model: m, base_url: 'http://127.0.0.1:{port}/v1', max_retries: 0}}\n")
    argv = ["data", "difficulty", "--config", str(recipe), "--tasks", tasks, "--output", str(tmp_path / "d.jsonl"),
            "--no-progress"]
    assert main(argv) == 1
    assert "infrastructure error (rerun to resume)" in capsys.readouterr().err
    recipe.write_text("llm: {kind: openai, model: m, base_url: '127.0.0.1:8000/v1'}\n")
    assert main(argv) == 2
    assert "must start with http" in capsys.readouterr().err
