"""Mounts that root-run tools leave under a directory (dockerd's ``netns/default``, a failed
debootstrap's ``/proc``), and a removal of that directory that never walks into one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
#: mountinfo writes a space, tab, newline or backslash in a path as an octal escape.
OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def mount_points_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest first (the order to unmount them)."""
    root = directory.resolve()
    points = []
    for line in MOUNTINFO.read_text().splitlines():
        field = line.split()[4]
        point = Path(OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field))
        if point == root or root in point.parents:
            points.append(point)
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def unmount_all_under(directory: Path) -> list[Path]:
    """Unmount everything below ``directory`` (lazily if busy); return what was unmounted."""
    points = mount_points_under(directory)
    for point in points:
        done = subprocess.run(["umount", str(point)], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)
    return points


def remove_tree(directory: Path) -> None:
    """Delete ``directory``, unmounting first; refuse if a mount is still there."""
    if not directory.exists():
        return
    unmount_all_under(directory)
    left = mount_points_under(directory)
    if left:
        raise RuntimeError(f"not removing {directory}: still mounted: {left}")
    shutil.rmtree(directory)
