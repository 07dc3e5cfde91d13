"""The bulk use case: EIA's bulk archives through the same gate and merge as the API rows.

What it does: the manifest says which archive versions exist (`manifest`); archives download
conditionally with caps (`download`) and are verified against zip bombs and traversal (`archive`);
their member streams line by line (`reader`) into fixed-size batches that go through
`tasks.load.load_batch` with a checkpoint in the same transaction, so a killed load resumes exactly
(`load`: `load_archive`, `BulkLoadConfig`; `checkpoints`); series metadata and categories are kept
(`metadata`); progress (`progress`) and the run's artifacts (`report`). Its Prefect wrappers are
`tasks.bulk.tasks`.

What it never does: load a batch its own way: every row obeys exactly the rules API rows do.
"""

from tasks.bulk.archive import ArchiveLimits
from tasks.bulk.checkpoints import ArchiveVersion
from tasks.bulk.download import Validators
from tasks.bulk.errors import ArchiveError, BulkError, quiet_expected_tracebacks
from tasks.bulk.load import DEFAULT_BATCH_SIZE, DEFAULT_MAX_LINE_BYTES, BulkLoadConfig, load_archive
from tasks.bulk.manifest import Manifest, check_dataset_code
from tasks.bulk.progress import LoadProgress, LogProgress, RichProgress
from tasks.bulk.report import DatasetReport

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_LINE_BYTES",
    "ArchiveError",
    "ArchiveLimits",
    "ArchiveVersion",
    "BulkError",
    "BulkLoadConfig",
    "DatasetReport",
    "LoadProgress",
    "LogProgress",
    "Manifest",
    "RichProgress",
    "Validators",
    "check_dataset_code",
    "load_archive",
    "quiet_expected_tracebacks",
]
