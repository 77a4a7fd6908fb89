"""Reading the module's settings files (JSON in ``etc/amocrm/``) for the pure checks in ``rules``.

A file that cannot be read is a ``ConfigError`` naming it, like a file whose content
is wrong; what is read goes on as a ``rules.jsontext.Document`` (path and text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from ..paths import HostPaths
from ..rules.errors import ConfigError, Problem
from ..rules.jsontext import Document


@dataclass(frozen=True)
class SettingsFiles:
    """The three files as read, nothing checked yet; the optional ones are None when absent."""

    presets_default: Document
    presets_custom: Optional[Document]
    config: Optional[Document]        # no amocrm.conf yet: the defaults apply


def read_document(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [Problem("", "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, [Problem("", "file is not UTF-8 text")]) from None
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read: {exc.strerror}")]) from None
    return Document(str(path), text)


def read_if_present(path: Path) -> Optional[Document]:
    return read_document(path) if path.exists() else None


# a file's identity and change stamp, as os.stat gives them; None while it does not exist
FileStamp = Optional[Tuple[int, int, int, int]]


def files_stamp(paths: HostPaths) -> Tuple[FileStamp, ...]:
    """The three files' stamps: a running worker notices a save (the panel's, an admin's editor,
    an atomic replace) without reading them. Taken before a read, so a save during the read
    shows as a change next time (read once more, not missed)."""
    return tuple(_stamp(path) for path in (paths.presets_default, paths.presets_custom, paths.amocrm_conf))


def _stamp(path: Path) -> FileStamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_files(paths: HostPaths) -> SettingsFiles:
    return SettingsFiles(presets_default=read_document(paths.presets_default),
                         presets_custom=read_if_present(paths.presets_custom),
                         config=read_if_present(paths.amocrm_conf))
