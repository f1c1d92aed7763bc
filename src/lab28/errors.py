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


# errno -> the words a user needs; anything else falls back to the system's own message.
_OS_PROBLEMS = {"ENOSPC": "no space left on the device", "EDQUOT": "disk quota exceeded",
                "EROFS": "read-only file system", "EACCES": "permission denied", "EPERM": "permission denied",
                "EISDIR": "is a directory", "ENOTDIR": "a parent is not a directory", "ENOENT": "no such file or folder",
                "EEXIST": "already exists", "ENAMETOOLONG": "name too long", "EIO": "input/output error"}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: `path: problem`, naming the file the system call was about."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    problem = _OS_PROBLEMS.get(name) or (exc.strerror or str(exc) or type(exc).__name__).lower()
    where = exc.filename if exc.filename is not None else None
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    return f"{where}: {problem}" if where is not None else problem
