"""A load's counts, as the engine reports them (the DELETE's, the MERGE's), checked against the
table (sfpd.warehouse)."""

import pytest

from sfpd.warehouse import Changes
from sfpd.warehouse.checks import checked_changes
from sfpd.window import Window

WINDOW = Window.from_dict({"start": "2018-11-01", "end": "2019-01-01"})
BEFORE = (100, 1000, 0)  # rows in the window, in the table, carrying the load's time


def test_reported_changes_that_the_table_shows_are_kept():
    after = (103, 1003, 7)  # 5 inserted, 2 deleted: +3 rows; 5 inserted + 2 updated stamped
    assert checked_changes(WINDOW, 2, Changes(5, 2, 0), BEFORE, after) == Changes(5, 2, 2)


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ((103, 1004, 7), "5 inserted - 2 deleted should leave 1003 rows, the table has 1004"),
        ((103, 1003, 6), "5 inserted \\+ 2 updated, but 6 rows carry this load's time"),
    ],
)
def test_reported_changes_the_table_does_not_show_fail_the_load(after, message):
    with pytest.raises(RuntimeError, match=message):
        checked_changes(WINDOW, 2, Changes(5, 2, 0), BEFORE, after)


def test_an_engine_reporting_only_its_changed_rows_gets_the_split_from_the_table():
    # the DELETE removed 2; the MERGE changed 7 rows, the table grew by 3: 5 inserted, 2 updated
    assert checked_changes(WINDOW, 2, 7, BEFORE, (103, 1003, 7)) == Changes(5, 2, 2)
    # and its count must still agree with the rows carrying the load's time
    with pytest.raises(RuntimeError, match="but 6 rows carry this load's time"):
        checked_changes(WINDOW, 2, 7, BEFORE, (103, 1003, 6))
