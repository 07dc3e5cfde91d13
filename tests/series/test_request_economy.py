"""The run artifact's request economy: data requests against the least the API rows allow."""

from __future__ import annotations

from tasks.series.report import EntryReport, least_pages, markdown_summary, request_economy, table_rows
from tasks.store.runlog import Counts


def test_the_least_is_full_pages_and_one_request_even_for_no_rows() -> None:
    assert [least_pages(n, 5000) for n in (0, 1, 5000, 5001, 12_500)] == [1, 1, 1, 2, 3]


def test_a_rerun_with_one_page_per_entry_is_at_the_least() -> None:
    entries = [EntryReport("a", pages=1, fetched=12), EntryReport("b", pages=1, fetched=0)]
    assert (
        request_economy(entries, 5000)
        == "2 data requests for 2 entries; the least for their API rows is 2 (ratio 1.00)"
    )


def test_a_first_run_counts_the_short_page_that_ends_a_full_one_and_skips_entries_not_run() -> None:
    entries = [
        EntryReport("full", pages=2, fetched=5000),
        EntryReport("long", pages=3, fetched=12_500),
        EntryReport("stopped", not_run="breaker open"),
    ]
    assert (
        request_economy(entries, 5000)
        == "5 data requests for 2 entries; the least for their API rows is 4 (ratio 1.25)"
    )
    assert [r["least_pages"] for r in table_rows(entries)] == [1, 3, 0]
    summary = markdown_summary("t", entries, Counts(), requests=7, kafka="off", status="Completed")
    assert (
        "**Request economy:** 5 data requests for 2 entries; the least for their API rows is 4 (ratio 1.25)" in summary
    )
