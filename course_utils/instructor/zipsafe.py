"""``zip-collect``'s extraction with caps: total and per-member size, compression ratio, safe names.

nbgrader's own extractor unpacks everything (a 2 MB zip bomb became 2 GiB) and aborts the
whole archive on one unsafe member. :class:`SafeExtractor` (``ZipCollectApp.extractor_plugin``)
skips a member that is a link, has an absolute or ``..`` path, is larger than
``max_member_bytes``, compresses better than ``max_ratio`` or would pass ``max_total_bytes``,
logs a note naming it and why (``not collected: ...``), and extracts the rest.
"""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import PurePosixPath

from nbgrader.plugins.zipcollect import ExtractorPlugin
from traitlets import Integer

CHUNK = 1 << 16


class SafeExtractor(ExtractorPlugin):
    max_total_bytes = Integer(512 << 20, help="everything extracted from one archive").tag(config=True)
    max_member_bytes = Integer(64 << 20, help="one extracted file").tag(config=True)
    max_ratio = Integer(200, help="largest uncompressed/compressed size of a member").tag(config=True)

    def skip(self, archive: str, name: str, why: str) -> None:
        self.log.warning("not collected: %s in %s: %s", name, os.path.basename(archive), why)

    def unsafe(self, info: zipfile.ZipInfo) -> str:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or not info.filename.strip("/"):
            return "unsafe path"
        if stat.S_ISLNK(info.external_attr >> 16):
            return "a symbolic link"
        if info.file_size > self.max_member_bytes:
            return f"larger than {self.max_member_bytes} bytes"
        if info.file_size > CHUNK and info.file_size > self.max_ratio * max(info.compress_size, 1):
            return f"compression ratio above {self.max_ratio}"
        return ""

    def extract_zip(self, archive: str, target: str) -> None:
        total = 0
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as error:
            self.skip(archive, "(whole archive)", f"not a readable zip ({error})")
            return
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                why = self.unsafe(info)
                if not why and total + info.file_size > self.max_total_bytes:
                    why = f"the archive passes {self.max_total_bytes} bytes"
                if why:
                    self.skip(archive, info.filename, why)
                    continue
                dest = os.path.join(target, *PurePosixPath(info.filename.replace("\\", "/")).parts)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                written = 0
                try:
                    with zf.open(info) as src, open(dest, "xb") as out:  # sizes in the header may lie: count
                        while chunk := src.read(CHUNK):
                            written += len(chunk)
                            if written > self.max_member_bytes or total + written > self.max_total_bytes:
                                raise ValueError("larger than its header says")
                            out.write(chunk)
                except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
                    if os.path.exists(dest):
                        os.unlink(dest)
                    self.skip(archive, info.filename, str(error))
                    continue
                total += written

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for root, _, files in os.walk(archive_path):
            target = os.path.normpath(os.path.join(extracted_path, os.path.relpath(root, archive_path)))
            os.makedirs(target, exist_ok=True)
            for name in files:
                path = os.path.join(root, name)
                if zipfile.is_zipfile(path):
                    self.extract_zip(path, os.path.join(target, os.path.splitext(name)[0]))
                elif os.path.islink(path):
                    self.skip(path, name, "a symbolic link")
                else:
                    shutil.copy(path, os.path.join(target, name))
