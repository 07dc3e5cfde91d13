"""The fan-out's rules: what a parent retry runs again, how a failure is named, what the artifact says."""

from __future__ import annotations

from tasks.bulk.fanout import (
    ChildOutcome,
    ChildRun,
    apply_run_log,
    artifact_markdown,
    child_tags,
    dataset_of,
    failure_message,
    idempotency_key,
    still_to_run,
)
from tasks.store.runlog import COUNT_FIELDS, Counts


def test_a_retry_runs_only_the_datasets_whose_latest_child_did_not_complete() -> None:
    previous = [
        ChildRun("ELEC", "a1", "Completed", True, 1.0),
        ChildRun("EBA", "b1", "Crashed", False, 1.0),
        ChildRun("NG", "c1", "Completed", True, 1.0),
        ChildRun("NG", "c2", "Failed", False, 2.0),  # a later NG child failed: NG runs again
        ChildRun("COAL", "d1", "Completed", True, 1.0),  # not asked for this time
    ]

    todo, done = still_to_run(["ELEC", "EBA", "NG", "PET"], previous)

    assert todo == ["EBA", "NG", "PET"]
    assert {code: child.flow_run_id for code, child in done.items()} == {"ELEC": "a1"}


def test_children_are_found_by_their_parent_tag_and_started_once_per_attempt() -> None:
    tags = child_tags("parent-1", "EBA")
    assert tags == ["eia-bulk-parent:parent-1", "eia-bulk-dataset:EBA"]
    assert dataset_of(["eia", "bulk", *tags]) == "EBA" and dataset_of(["eia"]) is None
    assert idempotency_key("parent-1", "EBA", 2) == "parent-1:EBA:2"


def test_the_parent_names_each_failed_dataset_and_its_artifact_links_every_child() -> None:
    elec = ChildOutcome("ELEC", "11111111-aaaa", "Completed", "http://ui/flow-runs/flow-run/11111111-aaaa")
    apply_run_log(
        elec,
        {
            "status": "completed",
            "details": {"datasets": {"ELEC": "loaded"}},
            **dict(zip(COUNT_FIELDS, (5, 4, 0, 0, 1, 0), strict=True)),
            "message": "ELEC loaded",
            "host": "pod-a",
            "pid": 7,
        },
    )
    eba = ChildOutcome("EBA", "22222222-bbbb", "Crashed", None, message="Flow run infrastructure exited with code -9")
    apply_run_log(eba, None)

    assert (elec.status, elec.counts, elec.host, elec.pid) == ("loaded", Counts(5, 4, 0, 0, 1, 0), "pod-a", 7)
    assert failure_message([elec, eba]) == "EBA: child run Crashed (Flow run infrastructure exited with code -9)"
    assert failure_message([elec]) is None
    markdown = artifact_markdown([elec, eba], parent="p-1")
    assert "| ELEC | [11111111](http://ui/flow-runs/flow-run/11111111-aaaa) | Completed | loaded | 5 | 4 |" in markdown
    assert "| EBA | 22222222-bbbb | Crashed | unknown |" in markdown
    assert "pod-a:7" in markdown
