"""One exception type for every user-facing failure.

The CLI turns a `Lab28Error` into one line on stderr and a non-zero exit code; anything else is a bug and
keeps its traceback (or shows it only with --debug).
"""


class Lab28Error(Exception):
    """A problem with the user's input or environment, explained in one line."""


def file_error(path, problem: str, row: int | None = None) -> Lab28Error:
    """Build the error for a bad file, naming the file (and row) first so the line reads `path: problem`."""
    where = f"{path}" if row is None else f"{path}, row {row}"
    return Lab28Error(f"{where}: {problem}")
