"""Splits other than a layout's own: the seeded LAD2000 re-splits of Ped2 and Avenue, and list-file splits.

A :class:`Split` is a set of video ids per split name, with the rule that made it and the seed, saved to and
read from a small JSON file. :func:`apply_split` gives a dataset view whose records carry the new split names;
records keep their frame labels, so the training part of a re-split is fully labelled where the ground truth is
known.

LAD2000 re-split (paper of the AED seed, §2.1.3 of docs/seed-systems.md; the original shuffled without a seed):
``abnormal`` = the official test videos, ``normal`` = the official training videos; both lists are sorted,
shuffled with ``random.Random(seed)``, and the first ``n`` of each go to training:
Ped2 6 abnormal + 8 normal (test 6 + 8), Avenue 11 abnormal + 8 normal (test 10 + 8).

List files (ShanghaiTech weakly supervised split of Zhong et al., UCF-Crime ``Anomaly_Train.txt``, LAD2000
``train_split.txt``) name videos as bare names, relative paths or feature paths; :func:`match_list` maps every line
to exactly one dataset id (``Abuse/Abuse001_x264.mp4`` and ``/x/01_0014_i3d.npy`` both work).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vadkit.datasets.base import (
    MAX_JSON_BYTES,
    MAX_VIDEOS,
    DatasetError,
    VideoDataset,
    VideoEntry,
    VideoRecord,
    clip,
    iter_lines,
    preview,
    read_text_file,
)

SPLIT_FORMAT = "vadkit-split/1"
MAX_LIST_LINES = 10 * MAX_VIDEOS  #: distinct entries a list file may hold

#: (training abnormal, training normal) videos of the LAD2000 re-splits, with the dataset sizes they assume
LAD2000_RESPLITS = {
    "ucsd_ped2": {"train_abnormal": 6, "train_normal": 8, "abnormal": 12, "normal": 16},
    "avenue": {"train_abnormal": 11, "train_normal": 8, "abnormal": 21, "normal": 16},
}


@dataclass(frozen=True)
class Split:
    """Video ids per split.

    Attributes:
        train, test: ids (each in one split only); ``val`` optional.
        rule: how it was made, in words.
        seed: the integer seed of a generated split, ``None`` for a list-file split.
        dataset: the registry name of the dataset it belongs to.
        source: the file it was loaded from (``Split.load``), named in errors; not saved.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    rule: str = ""
    seed: int | None = None
    dataset: str | None = None
    val: tuple[str, ...] = ()
    source: str | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("train", "test", "val"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        seen: dict[str, str] = {}
        for name in ("train", "val", "test"):
            for video in getattr(self, name):
                if video in seen:
                    where = "twice in " + name if seen[video] == name else f"in both {seen[video]} and {name}"
                    raise DatasetError(f"split: video {video!r} is listed {where}")
                seen[video] = name

    def parts(self) -> dict[str, tuple[str, ...]]:
        """``{split name: ids}`` for the non-empty splits."""
        return {name: ids for name, ids in (("train", self.train), ("val", self.val), ("test", self.test)) if ids}

    def assignment(self) -> dict[str, str]:
        """``{id: split name}``."""
        return {video: name for name, ids in self.parts().items() for video in ids}

    def to_dict(self) -> dict:
        data = {"format": SPLIT_FORMAT, "dataset": self.dataset, "seed": self.seed, "rule": self.rule,
                "train": list(self.train), "test": list(self.test)}
        if self.val:
            data["val"] = list(self.val)
        return data

    def save(self, path: str | Path) -> Path:
        """Write the split as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(self.to_dict(), out, indent=1)
                out.write("\n")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Split":
        path = Path(path)
        text = read_text_file(path, "split file", max_bytes=MAX_JSON_BYTES)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DatasetError(f"split file {path} is not valid JSON: {err}") from None
        except RecursionError:
            raise DatasetError(f"split file {path} is not valid: JSON nested too deeply") from None
        except ValueError as err:  # e.g. an integer of more than 4300 digits
            raise DatasetError(f"split file {path} is not valid JSON: {str(err)[:200]}") from None
        if not isinstance(data, dict) or "train" not in data or "test" not in data:
            raise DatasetError(f"split file {path}: expected a JSON object with 'train' and 'test' id lists")
        for key in ("train", "test", "val"):
            ids = data.get(key, [])
            if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
                raise DatasetError(f"split file {path}: {key!r} must be a list of video ids (strings), "
                                   f"found {preview(ids)}")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise DatasetError(f"split file {path}: 'seed' must be an integer or null, found {preview(seed)}")
        for key in ("rule", "dataset"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise DatasetError(f"split file {path}: {key!r} must be a string, found {preview(data[key])}")
        try:
            return cls(train=data["train"], test=data["test"], val=data.get("val", ()), rule=data.get("rule") or "",
                       seed=seed, dataset=data.get("dataset"), source=str(path))
        except DatasetError as err:
            raise DatasetError(f"split file {path}: {err}") from None


# ---------------------------------------------------------------------------------------------------------------
# generated splits
# ---------------------------------------------------------------------------------------------------------------
def lad2000_resplit(dataset: VideoDataset, seed: int, train_abnormal: int | None = None,
                    train_normal: int | None = None) -> Split:
    """The LAD2000 re-split of a one-class dataset (official test videos = abnormal, training videos = normal).

    Args:
        dataset: ``ucsd_ped2`` or ``avenue`` (complete), or any dataset with train/test splits when both counts
            are given.
        seed: integer seed of ``random.Random``.
        train_abnormal, train_normal: how many of each go to training (defaults: the paper's, see
            ``LAD2000_RESPLITS``).

    Raises:
        DatasetError: the dataset lacks the videos the rule needs.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DatasetError(f"split seed must be an integer, got {seed!r}")
    spec = LAD2000_RESPLITS.get(dataset.name)
    abnormal = sorted(dataset.ids("test"), key=_natural) if "test" in dataset.splits() else []
    normal = sorted(dataset.ids("train"), key=_natural) if "train" in dataset.splits() else []
    if train_abnormal is None or train_normal is None:
        if spec is None:
            raise DatasetError(f"no LAD2000 re-split is defined for {dataset.name!r} (defined: "
                               f"{', '.join(LAD2000_RESPLITS)}); give train_abnormal and train_normal")
        if (len(abnormal), len(normal)) != (spec["abnormal"], spec["normal"]):
            raise DatasetError(f"{dataset.name}: the LAD2000 re-split needs the complete dataset: expected "
                               f"{spec['abnormal']} test and {spec['normal']} training videos under {dataset.root}, "
                               f"found {len(abnormal)} and {len(normal)}")
        train_abnormal = spec["train_abnormal"] if train_abnormal is None else train_abnormal
        train_normal = spec["train_normal"] if train_normal is None else train_normal
    if not (0 <= train_abnormal <= len(abnormal) and 0 <= train_normal <= len(normal)):
        raise DatasetError(f"{dataset.name}: cannot put {train_abnormal} abnormal and {train_normal} normal videos "
                           f"in training: the dataset has {len(abnormal)} test and {len(normal)} training videos")
    rng = random.Random(seed)
    rng.shuffle(abnormal)
    rng.shuffle(normal)
    rule = (f"lad2000: official test videos (abnormal) and training videos (normal), each sorted then shuffled "
            f"with random.Random({seed}); train = first {train_abnormal} abnormal + first {train_normal} normal, "
            f"test = the remaining {len(abnormal) - train_abnormal} + {len(normal) - train_normal}")
    return Split(train=abnormal[:train_abnormal] + normal[:train_normal],
                 test=abnormal[train_abnormal:] + normal[train_normal:], rule=rule, seed=seed, dataset=dataset.name)


def resplit_file(dataset: VideoDataset, path: str | Path, seed: int) -> Split:
    """Read the re-split saved at ``path``, or make it with ``seed`` and save it there.

    Raises:
        DatasetError: the saved file belongs to another dataset or seed.
    """
    path = Path(path)
    if path.exists():
        split = Split.load(path)
        if split.dataset not in (None, dataset.name) or split.seed != seed:
            raise DatasetError(f"split file {path} was made for dataset {split.dataset!r} with seed {split.seed}, "
                               f"not {dataset.name!r} with seed {seed}; delete it or pick another path")
        return split
    split = lad2000_resplit(dataset, seed)
    split.save(path)
    return split


# ---------------------------------------------------------------------------------------------------------------
# list-file splits
# ---------------------------------------------------------------------------------------------------------------
def read_list(path: str | Path) -> list[str]:
    """The non-empty lines of a list file, stripped (duplicates dropped, order kept)."""
    out: dict[str, None] = {}
    for number, line in enumerate(iter_lines(read_text_file(path, "list file")), 1):
        line = line.strip()
        if line:
            out[line] = None
            if len(out) > MAX_LIST_LINES:
                raise DatasetError(f"{path}:{number}: more than {MAX_LIST_LINES} entries in the list")
    return list(out)


def split_by_lists(entries: list, train_list: str | Path, test_list: str | Path, dataset: str) -> list:
    """Keep the entries named by the two list files, with ``split`` set to ``train`` / ``test``.

    Raises:
        DatasetError: a line matches no video, or a video is in both lists (the first few are named).
    """
    ids = [e.id for e in entries]
    train_list, test_list = Path(train_list), Path(test_list)
    train = match_list(read_list(train_list), ids, str(train_list))
    test = match_list(read_list(test_list), ids, str(test_list))
    both = set(train) & set(test)
    if both:
        raise DatasetError(f"{dataset}: {len(both)} videos are in both {train_list.name} and {test_list.name}: "
                           f"{', '.join(clip(b) for b in sorted(both)[:5])}")
    split_of = {**{v: "train" for v in train}, **{v: "test" for v in test}}
    kept = [entry for entry in entries if entry.id in split_of]
    for entry in kept:
        entry.split = split_of[entry.id]
    return kept


def match_list(lines: list[str], ids: list[str], source: str = "list") -> list[str]:
    """Map list lines to dataset ids.

    A line matches the id equal to its file name without extension (``Abuse/Abuse001_x264.mp4``), or to the
    longest id that its name starts with followed by a non-alphanumeric character (``01_0014_i3d.npy``,
    ``Abuse001_x264__0.npy``); ``Ped`` / ``ped`` and a ``v_`` prefix are tolerated.

    Raises:
        DatasetError: lines that match no id (the first few are named).
    """
    exact = {video: video for video in ids}
    folded = {video.lower(): video for video in ids}
    prefixes: dict[str, str] = {}
    for video in ids:  # the first id of each case-folded spelling, as a scan in id order finds it
        prefixes.setdefault(video.lower(), video)
    longest = max((len(video) for video in ids), default=0)
    out, unmatched = [], []
    for line in lines:
        name = _list_name(line)
        video = exact.get(name) or folded.get(name.lower()) or _prefix_match(name, prefixes, longest)
        if video is None:  # LAD2000 names with or without their 'v_' prefix
            video = folded.get(name[2:].lower()) if name.lower().startswith("v_") else folded.get("v_" + name.lower())
        if video is None:
            unmatched.append(line)
        elif video not in out:
            out.append(video)
    if unmatched:
        shown = ", ".join(preview(u) for u in unmatched[:5])
        raise DatasetError(f"{source}: {len(unmatched)} entries match no video of the dataset: {shown}"
                           f"{' ...' if len(unmatched) > 5 else ''}")
    return out


def list_split(dataset: VideoDataset, train_list: str | Path, test_list: str | Path, rule: str | None = None) -> Split:
    """A split from two list files (one video per line)."""
    ids = dataset.ids()
    train = match_list(read_list(train_list), ids, str(train_list))
    test = match_list(read_list(test_list), ids, str(test_list))
    return Split(train=train, test=test, dataset=dataset.name,
                 rule=rule or f"lists: train = {Path(train_list).name}, test = {Path(test_list).name}")


def _list_name(line: str) -> str:
    name = re.split(r"[\\/]", line.strip())[-1]
    name = name.split()[0] if name.split() else name
    for extension in (".npy", ".mp4", ".avi", ".mkv", ".mov", ".mpg", ".txt"):
        if name.lower().endswith(extension):
            return name[: -len(extension)]
    return name


def _prefix_match(name: str, folded: dict[str, str], longest: int) -> str | None:
    """The longest id that ``name`` starts with, followed by a non-alphanumeric character (case-insensitive).
    Linear in the length of ``name``: only the prefixes ending before such a character are looked up."""
    lowered = name.lower()
    for end in range(min(len(lowered) - 1, longest), 0, -1):
        if not lowered[end].isalnum() and lowered[:end] in folded:
            return folded[lowered[:end]]
    return None


def _natural(video: str) -> tuple:
    from vadkit.io import natural_key

    return natural_key(video)


# ---------------------------------------------------------------------------------------------------------------
# applying a split
# ---------------------------------------------------------------------------------------------------------------
class SplitDataset(VideoDataset):
    """A dataset seen through another split: same videos and ground truth, new split names. Videos the split
    does not name are left out."""

    def __init__(self, base: VideoDataset, split: Split) -> None:
        self.base = base
        self.split = split
        self.name = base.name  # type: ignore[misc]  (instance attribute shadows the class one)
        self.folder_fps = base.folder_fps  # type: ignore[misc]
        self.class_names = base.class_names
        super().__init__(base.root)

    def _scan(self) -> list[VideoEntry]:
        assignment = self.split.assignment()
        known = set(self.base.ids())
        missing = [video for video in assignment if video not in known]
        if missing:
            where = f" ({self.split.source})" if self.split.source else ""
            raise DatasetError(f"{self.name}: the split{where} names {len(missing)} videos not found under "
                               f"{self.root}: {', '.join(clip(m) for m in missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''}")
        self._base_entries = {entry.id: entry for entry in self.base.entries}
        return [dataclasses.replace(entry, split=assignment[entry.id]) for entry in self.base.entries
                if entry.id in assignment]

    def _record(self, entry: VideoEntry) -> VideoRecord:
        cached = self._records.get(entry.id)
        if cached is None:
            base_record = self.base._record(self._base_entries[entry.id])
            cached = dataclasses.replace(base_record, split=entry.split)
            self._records[entry.id] = cached
        return cached

    def _extra_problems(self, records: list[VideoRecord]) -> list[str]:
        return self.base._extra_problems(records)

    def __repr__(self) -> str:
        return f"SplitDataset({self.base!r}, rule={self.split.rule!r})"


def apply_split(dataset: VideoDataset, split: Split) -> VideoDataset:
    """``dataset`` with the splits of ``split``.

    Raises:
        DatasetError: the split names a video the dataset does not have, or belongs to another dataset.
    """
    where = f"split file {split.source}: " if split.source else ""
    if split.dataset not in (None, dataset.name):
        raise DatasetError(f"{where}the split was made for dataset {split.dataset!r}, not {dataset.name!r}")
    view = SplitDataset(dataset, split)
    view.entries  # noqa: B018  (validates the ids now)
    return view
