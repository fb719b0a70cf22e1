"""``verirl eval compare A B``: diff two evaluation runs problem by problem.

Both runs must be on the same benchmark (name and task); a different benchmark commit is allowed but reported.
Per problem, the pass rate c/n of A and B is compared; problems solved (c > 0) by only one run are listed first.
"""

from __future__ import annotations

import dataclasses

from .report import load_run, per_problem_rates


class CompareError(ValueError):
    """The two runs cannot be compared (different benchmarks, missing files)."""


@dataclasses.dataclass
class Comparison:
    a: str
    b: str
    benchmark: str
    pass_at_k: dict[str, tuple[float | None, float | None]]
    only_a: list[str]
    only_b: list[str]
    changed: list[tuple[str, tuple[int, int], tuple[int, int]]]
    only_in_a_run: list[str]
    only_in_b_run: list[str]
    notes: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare_runs(path_a: str, path_b: str) -> Comparison:
    """Compare run folders ``path_a`` and ``path_b`` (each holding a summary.json)."""
    try:
        sa, _ = load_run(path_a)
        sb, _ = load_run(path_b)
    except FileNotFoundError as exc:
        raise CompareError(str(exc)) from None
    ba, bb = sa["benchmark"], sb["benchmark"]
    if (ba["name"], ba.get("task")) != (bb["name"], bb.get("task")):
        raise CompareError(f"{path_a} is {ba['name']} {ba.get('task') or ''} but {path_b} is {bb['name']} "
                           f"{bb.get('task') or ''}: only runs on the same benchmark can be compared")
    notes = []
    if ba.get("commit") != bb.get("commit"):
        notes.append(f"benchmark commits differ: {ba.get('commit')} vs {bb.get('commit')}")
    if sa.get("n") != sb.get("n"):
        notes.append(f"samples per problem differ: n={sa.get('n')} vs n={sb.get('n')}")
    for key, field, what in (("extraction", "rule", "extraction rules"), ("analysis", "name", "verdicts")):
        va, vb = (sa.get(key) or {}).get(field), (sb.get(key) or {}).get(field)
        if va != vb:
            notes.append(f"{what} differ: {va or 'not recorded'} vs {vb or 'not recorded'}")
    if sa.get("simulator") != sb.get("simulator"):
        notes.append(f"simulators differ: {sa.get('simulator')} vs {sb.get('simulator')}")
    ra, rb = per_problem_rates(sa), per_problem_rates(sb)
    common = [t for t in ra if t in rb]
    ks = list(dict.fromkeys([*sa.get("pass_at_k", {}), *sb.get("pass_at_k", {})]))
    pass_k = {k: (sa.get("pass_at_k", {}).get(k), sb.get("pass_at_k", {}).get(k)) for k in ks}
    only_a = [t for t in common if ra[t][0] > 0 and rb[t][0] == 0]
    only_b = [t for t in common if rb[t][0] > 0 and ra[t][0] == 0]
    changed = [(t, ra[t], rb[t]) for t in common
               if ra[t][1] and rb[t][1] and ra[t][0] / ra[t][1] != rb[t][0] / rb[t][1]]
    changed.sort(key=lambda item: item[2][0] / item[2][1] - item[1][0] / item[1][1])
    return Comparison(
        a=path_a, b=path_b, benchmark=ba["name"] + (f" ({ba['task']})" if ba.get("task") else ""),
        pass_at_k=pass_k, only_a=only_a, only_b=only_b, changed=changed,
        only_in_a_run=[t for t in ra if t not in rb], only_in_b_run=[t for t in rb if t not in ra], notes=notes,
    )


def render(cmp: Comparison) -> str:
    """Markdown rendering of a comparison."""
    lines = [f"# {cmp.benchmark}: A = `{cmp.a}` vs B = `{cmp.b}`", ""]
    lines += [f"> {note}" for note in cmp.notes]
    if cmp.notes:
        lines.append("")
    lines += ["| metric | A | B | B − A |", "|---|---|---|---|"]
    for k, (a, b) in cmp.pass_at_k.items():
        delta = f"{100 * (b - a):+.2f}" if a is not None and b is not None else "n/a"
        lines.append(f"| pass@{k} | {_pct(a)} | {_pct(b)} | {delta} |")
    lines += ["", f"Solved only by A ({len(cmp.only_a)}): {', '.join(cmp.only_a) or '—'}",
              f"Solved only by B ({len(cmp.only_b)}): {', '.join(cmp.only_b) or '—'}", ""]
    if cmp.changed:
        lines += ["| problem | A passed/n | B passed/n |", "|---|---|---|"]
        for t, (ca, na), (cb, nb) in cmp.changed:
            lines.append(f"| {t} | {ca}/{na} | {cb}/{nb} |")
        lines.append("")
    if cmp.only_in_a_run or cmp.only_in_b_run:
        lines.append(f"Problems scored in only one run: A {len(cmp.only_in_a_run)}, B {len(cmp.only_in_b_run)}.")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
