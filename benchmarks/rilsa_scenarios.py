"""The RiLSA guideline scenarios among sumolib's, as the real-network benchmark runs them.

- ``rilsa_example(k)``: RiLSA example ``k`` (``RealWorld/RiLSA_example{k}``): its net, its
  programs and its own counted flows (``makeRoutes.py``);
- ``rilsa1_with_signals(name)``: RiLSA example 1 with signals 200 m out on its four legs
  (``RiLSA1OutTLS``: on the lanes leaving the junction; ``RiLSA1BothTLS``: both directions).

Each returns a builder ``(work folder, seed, end s) → the scenario table`` for
``benchmarks/real_networks.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: sumolib's RiLSA example 1 variants with signals on its legs: scenario folder, net file and the
#: scenario module that holds its counted flows (``flowsRiLSA1``).
RILSA1_SIGNALS = {"rilsa1_out": ("RiLSA1OutTLS", "rilsa1.net.xml", "rilsa1_out_tls.py"),
                  "rilsa1_both": ("RiLSA1BothTLS", "rilsa1both.net.xml", "rilsa1_both_tls.py")}


def _scenarios() -> Path:
    from greenwave._sumo import sumo_home

    return sumo_home() / "tools" / "sumolib" / "scenario" / "scenarios"


def rilsa_example(k: int) -> Callable[[Path, int, float], dict[str, Any]]:
    """RiLSA example k: its net, its programs and its own counted flows (``makeRoutes.py``)."""

    def build(work: Path, _seed: int, _end: float) -> dict[str, Any]:
        from greenwave._sumo import run_sumo_command

        src = _scenarios() / "RealWorld" / f"RiLSA_example{k}"
        out = work / f"rilsa{k}"
        out.mkdir(parents=True, exist_ok=True)
        flows = out / "flows.rou.xml"
        if not flows.is_file():
            run_sumo_command([src / "makeRoutes.py"], what=f"RiLSA example {k} demand", cwd=out)
        return {"network": {"file": str(src / f"rilsa{k}.net.xml")},
                "demand": {"route_files": [str(flows)],
                           "additional_files": [str(src / "vtypes.add.xml"), str(src / f"rilsa{k}_tls.add.xml")]}}

    return build


def rilsa1_flows(module: Path) -> list[tuple[str, str, float, float]]:
    """``(from edge, to edge, veh/h, heavy vehicles %)`` of a sumolib RiLSA 1 scenario module's
    ``flowsRiLSA1`` table (read as data, never imported); a ValueError naming the file and the
    entry when the table is missing or not ``[[from, [[to, veh/h, heavy %], ...]], ...]``."""
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise ValueError(f"{module}: cannot read it as Python source ({exc})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "flowsRiLSA1" for t in node.targets):
            try:
                table = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{module}: flowsRiLSA1 is not a literal table") from None
            out = []
            for entry in table if isinstance(table, list) else [table]:
                try:
                    frm, rels = entry
                    for to, n, heavy in rels:
                        out.append((str(frm), str(to), float(n), float(heavy)))
                except (TypeError, ValueError):
                    raise ValueError(f"{module}: flowsRiLSA1 entry {entry!r}: expected "
                                     "[from edge, [[to edge, veh/h, heavy vehicles %], ...]]") from None
            return out
    raise ValueError(f"{module}: no flowsRiLSA1 table")


def rilsa1_with_signals(name: str) -> Callable[[Path, int, float], dict[str, Any]]:
    """RiLSA example 1 with signals 200 m out on its four legs (``name`` a key of
    :data:`RILSA1_SIGNALS`), with the scenario's own programs (``tls.add.xml``: the RiLSA
    program at the junction, 74 s plans on the legs) and its counted flows, each vehicle
    departing at random as the scenario's demand generator draws them (SUMO ``probability``
    flows, seeded by the run's seed; heavy vehicles as RiLSA's LKW)."""
    folder, net_name, module = RILSA1_SIGNALS[name]

    def build(work: Path, _seed: int, _end: float) -> dict[str, Any]:
        from greenwave.engine.results import write_text_atomic

        scen = _scenarios()
        out = work / name
        out.mkdir(parents=True, exist_ok=True)
        lines = ["<routes>"]
        for frm, to, n, heavy in rilsa1_flows(scen / module):
            for vtype, share in (("PKW", 1.0 - heavy / 100.0), ("LKW", heavy / 100.0)):
                if n * share > 0:
                    lines.append(f'    <flow id="{frm}_{to}_{vtype}" type="{vtype}" from="{frm}" to="{to}" begin="0" '
                                 f'end="3600" probability="{n * share / 3600.0:.6f}" departPos="base" '
                                 f'departSpeed="max" departLane="best"/>')
        lines.append("</routes>")
        flows = write_text_atomic("\n".join(lines) + "\n", out / "flows.rou.xml")
        return {"network": {"file": str(scen / folder / net_name)},
                "demand": {"route_files": [str(flows)],
                           "additional_files": [str(scen / "RealWorld" / "RiLSA_example1" / "vtypes.add.xml"),
                                                str(scen / folder / "tls.add.xml")]}}

    return build
