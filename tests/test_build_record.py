"""``yolobench build --record``: the record accounts for every variant the command built, the parents
and teachers a requested rung needed included, with the state each was in before (a cold build time is
the sum of whole builds: results/scripts/cold_build_sum.py adds records up by ``state_before``)."""

from __future__ import annotations

import json

from yolobench import cli

PROFILE = "tiny"


def _record(tmp_path, store, variants: str, name: str) -> dict:
    path = tmp_path / name
    code = cli.main(["build", "--profile", PROFILE, "--variants", variants, "--store", str(store), "--quiet",
                     "--record", str(path)])
    assert code == 0
    return json.loads(path.read_text())


def test_record_names_the_parent_a_rung_built(tiny_home, tmp_path):
    store = tiny_home / "store-record"
    first = _record(tmp_path, store, "oneshot", "first.json")
    assert list(first["variants"]) == ["oneshot", "dense"]
    oneshot, dense = first["variants"]["oneshot"], first["variants"]["dense"]
    assert (oneshot["requested"], oneshot["state_before"]) == (True, "missing")
    assert (dense["requested"], dense["state_before"]) == (False, "missing")
    assert oneshot["parent"] == "dense"
    assert dense["build_seconds"] > 0 and oneshot["build_seconds"] > 0
    assert first["profile"] == PROFILE and first["machine"]["cpu_generation"]

    # asked for by name, a variant is requested even where another asked-for variant needs it; and a
    # second run finds both built (their build seconds are the first run's, from meta.json)
    second = _record(tmp_path, store, "dense,oneshot", "second.json")
    assert {name: (v["requested"], v["state_before"]) for name, v in second["variants"].items()} == {
        "dense": (True, "built"), "oneshot": (True, "built")}
    assert second["variants"]["dense"]["build_seconds"] == dense["build_seconds"]
