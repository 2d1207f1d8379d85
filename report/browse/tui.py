"""The interactive evidence browser (``bitwitness browse``), in the spirit of FTK Imager's tree.

Left: the image's partitions and their folders as a tree (folders load when opened). Right: the
selected folder's entries (name, size, MACB times, deleted marked), below them the metadata of
the selected entry and a hex or text preview of its first bytes. Keys: ``e`` exports the
selected file or folder (with the hashed manifest, and a custody event when the image lies in a
case folder), ``/`` searches names in every file system of the image (the ``where`` column
names the partition and file system of each hit), ``x`` switches hex/text, ``q`` quits.

Evidence is shown as text, never as markup: names and previews reach textual as plain
:class:`~rich.text.Text`, and the detail panes do not parse markup, so ``[@click=...]``,
``x[a=%`` or an emoji code such as ``:smile:`` inside a file or a name is displayed as it is
(a markup-escaped string would still have its emoji codes replaced).

Everything here goes through the same read-only engine as the commands; this module is imported
only by ``browse`` so that textual is never loaded for the other commands.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree
from textual.widgets.tree import TreeNode

from bitwitness.casefolder import EXPORTS, case_root
from bitwitness.errors import BitWitnessError
from bitwitness.image import image_files, open_image
from bitwitness.progress import NullMediator
from bitwitness.report.browse.doubts import doubts, unreadable_sectors
from bitwitness.report.browse.entries import Entry, Selection
from bitwitness.report.browse.export import ExportResult, escaped, export, record_custody
from bitwitness.report.browse.interface import BrowsableFileSystem as FileSystem
from bitwitness.report.browse.safenames import shown
from bitwitness.report.browse.volumekeys import NO_KEYS, VolumeKeys
from bitwitness.report.browse.volumetree import open_node, read_tree

PREVIEW_BYTES = 4096
_PRINTABLE = set(string.printable) - set("\x0b\x0c")


@dataclass(frozen=True)
class FolderRef:
    """What a tree node stands for: a folder of one file system."""

    partition: str  #: volume-tree path of the file system ("5", "0/vss1", "0/apfs1")
    path: str
    loaded: bool = False


def hexdump(data: bytes, width: int = 16) -> str:
    """Offset, hex and ASCII columns, as ``xxd`` shows them."""
    lines = []
    for at in range(0, len(data), width):
        chunk = data[at : at + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{at:08x}  {hexpart:<{width * 3}} {text}")
    return "\n".join(lines)


def as_text(data: bytes) -> str:
    """The preview as text (UTF-8, undecodable bytes replaced, control characters as '.')."""
    decoded = data.decode("utf-8", "replace")
    return "".join(c if c in _PRINTABLE or ord(c) > 127 else "." for c in decoded)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


class EvidenceBrowser(App[None]):
    """The browser; ``export_to`` defaults to the case's exports folder or ``./exports``."""

    TITLE = "BitWitness evidence browser (read-only)"
    CSS = """
    #tree { width: 35%; }
    #entries { height: 1fr; }
    #meta { height: auto; max-height: 12; border-top: solid $accent; }
    #preview { height: 14; border-top: solid $accent; overflow-y: auto; }
    #search { dock: bottom; display: none; }
    #search.visible { display: block; }
    """
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("e", "export", "Export selection"),
        Binding("slash", "search", "Search names"),
        Binding("x", "toggle_hex", "Hex/text"),
        Binding("escape", "cancel_search", "Close search", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, image: Path, *, export_to: Path | None = None,
                 case_dir: Path | None = None, keys: VolumeKeys = NO_KEYS) -> None:
        super().__init__()
        self.image = image
        self.case_dir = case_dir if case_dir is not None else case_root(image)
        self.export_to = export_to
        self.stream = open_image(image)
        try:
            self.volumes = read_tree(self.stream, keys)
        except BaseException:
            self.stream.close()
            raise
        self.layout = self.volumes.layout
        #: the media's unreadable sectors, for each file's doubts (None when none are listed)
        self.unreadable = unreadable_sectors(image, self.stream)
        self.filesystems: dict[str, FileSystem] = {}
        self.current: list[tuple[str, Entry]] | None = None
        self.selected: tuple[str, Entry] | None = None
        self.hex_mode = True
        self.last_export: ExportResult | None = None
        self.status = ""

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield Tree(Text(self.image.name), id="tree")
            with Vertical():
                yield DataTable(id="entries", cursor_type="row")
                yield Static("", id="meta", markup=False)
                yield Static("", id="preview", markup=False)
        yield Input(placeholder="search names (Enter to search, Esc to close)", id="search")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#entries", DataTable)
        table.add_columns("name", "size", "modified", "accessed", "changed", "born", "deleted",
                          "where")
        tree: Tree[FolderRef] = self.query_one("#tree", Tree)
        tree.root.expand()
        for node in self.volumes.walk():
            if node.filesystem is None:
                if node.encrypted:
                    locked = ", locked: give its key" if node.locked else ""
                    tree.root.add_leaf(Text(f"{node.path}: encrypted ({node.encrypted}{locked})"))
                continue
            if "/" not in node.path:
                by = f" (read by {node.reader})" if node.reader else ""
                label = f"{node.path}: {node.filesystem}{by} at sector {node.row.start}"
            else:
                when = f" of {_when(node.created)}" if node.created else ""
                label = f"{node.path}: {node.filesystem} ({node.description}{when})"
            tree.root.add(Text(label), data=FolderRef(node.path, "/"))
        self.set_status(f"{len(self.volumes.filesystems)} file system(s); read-only")

    def on_unmount(self) -> None:
        self.volumes.close()
        self.stream.close()

    # --- helpers ---------------------------------------------------------------------------

    def filesystem(self, index: str) -> FileSystem:
        if index not in self.filesystems:
            self.filesystems[index] = open_node(self.volumes, self.volumes.find(index))
        return self.filesystems[index]

    def set_status(self, message: str) -> None:
        self.status = message
        self.sub_title = message

    def where(self, index: str) -> str:
        """``5: ext4``: the partition row and file system an entry lies in."""
        return f"{index}: {self.filesystem(index).type}"

    def show_entries(self, index: str, entries: list[Entry],
                     rows: list[tuple[str, Entry]] | None = None) -> None:
        """Fill the table with ``entries`` of one file system, or ``rows`` from several."""
        listed = rows if rows is not None else [(index, e) for e in entries]
        self.current = listed
        table = self.query_one("#entries", DataTable)
        table.clear()
        for number, (where, entry) in enumerate(listed):
            t = entry.times
            name = entry.display_path if entry.path.count("/") > 1 and self._searching else (
                f"{entry.name}:{entry.stream}" if entry.stream else entry.name)
            table.add_row(Text(shown(name) + ("/" if entry.is_dir else "")), str(entry.size),
                          _when(t.modified), _when(t.accessed), _when(t.changed), _when(t.born),
                          "DELETED" if entry.deleted else "", self.where(where),
                          key=str(number))
        if listed:
            self.select_entry(*listed[0])

    _searching = False

    def select_entry(self, index: str, entry: Entry) -> None:
        self.selected = (index, entry)
        fs = self.filesystem(index)
        t = entry.times
        lines = [
            f"path: {shown(entry.display_path)}   in: {self.where(index)}",
            f"inode: {entry.address}   type: {entry.kind}"
            f"   size: {entry.size}   deleted: {'yes' if entry.deleted else 'no'}"
            + ("   (inode reused)" if entry.realloc else ""),
            f"modified: {_when(t.modified)}  accessed: {_when(t.accessed)}  "
            f"changed: {_when(t.changed)}  born: {_when(t.born)} (UTC)",
        ]
        if entry.link:
            lines.append(f"link to: {shown(entry.link)}")
        note = fs.content_note(entry)
        if note:
            lines.append(f"content: {note}")
        else:
            lines.extend(f"doubt: {doubt}" for doubt in self._doubts(fs, entry))
        self.query_one("#meta", Static).update(Text("\n".join(lines)))
        self.render_preview(fs, entry)

    def _doubts(self, fs: FileSystem, entry: Entry) -> list[str]:
        """Why the entry's bytes may not all be its own (see :mod:`.doubts`); a failure to
        tell claims nothing."""
        try:
            return doubts(fs, entry, self.unreadable)
        except BitWitnessError:
            return []

    def render_preview(self, fs: FileSystem, entry: Entry) -> None:
        preview = self.query_one("#preview", Static)
        if entry.is_dir:
            preview.update(Text("(folder)"))
            return
        note = fs.content_note(entry)
        if note is not None:
            # Nothing of a deleted file whose inode or clusters were reused is its own: neither
            # an empty preview nor the newer file's bytes may stand for its content.
            self.preview_text = f"(content {note})"
            preview.update(Text(self.preview_text))
            return
        try:
            data = fs.read(entry, 0, PREVIEW_BYTES)
        except BitWitnessError as exc:
            preview.update(Text(f"cannot read: {exc}"))
            return
        self.preview_text = (hexdump(data) if self.hex_mode else as_text(data)) or "(empty)"
        preview.update(Text(self.preview_text))

    preview_text = ""

    # --- events ----------------------------------------------------------------------------

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[FolderRef]) -> None:
        self._load_children(event.node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[FolderRef]) -> None:
        ref = event.node.data
        if ref is None:
            return
        self._load_children(event.node)
        self._searching = False
        entries = list(self.filesystem(ref.partition).walk(ref.path, selection=Selection.ALL,
                                                           mediator=NullMediator()))
        self.show_entries(ref.partition, entries)

    def _load_children(self, node: TreeNode[FolderRef]) -> None:
        ref = node.data
        if ref is None or ref.loaded:
            return
        node.data = FolderRef(ref.partition, ref.path, loaded=True)
        fs = self.filesystem(ref.partition)
        for entry in fs.walk(ref.path, selection=Selection.ALL, mediator=NullMediator()):
            if entry.is_dir:
                label = shown(entry.name) + (" (deleted)" if entry.deleted else "")
                node.add(Text(label), data=FolderRef(ref.partition, entry.path))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.current is None or event.row_key.value is None:
            return
        number = int(event.row_key.value)
        if number < len(self.current):
            self.select_entry(*self.current[number])

    # --- actions ---------------------------------------------------------------------------

    def action_toggle_hex(self) -> None:
        self.hex_mode = not self.hex_mode
        if self.selected is not None:
            index, entry = self.selected
            self.render_preview(self.filesystem(index), entry)

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("visible")
        box.focus()

    def action_cancel_search(self) -> None:
        box = self.query_one("#search", Input)
        box.remove_class("visible")
        self.query_one("#entries", DataTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value)
        self.action_cancel_search()

    def search(self, text: str) -> list[Entry]:
        """Entries whose name contains ``text`` (case-insensitive), in every file system."""
        if not text:
            return []
        wanted = text.casefold()
        rows: list[tuple[str, Entry]] = []
        for node in self.volumes.filesystems:
            try:
                fs = self.filesystem(node.path)
                rows.extend((node.path, e) for e in fs.walk(
                    "/", recursive=True, selection=Selection.ALL, mediator=NullMediator())
                    if wanted in e.name.casefold())
            except BitWitnessError as exc:
                self.set_status(f"{node.path}: {exc}")
        self._searching = True
        self.show_entries("", [], rows)
        systems = len({index for index, _ in rows})
        self.set_status(f"{len(rows)} match(es) for {text!r} in {systems} file system(s) of "
                        f"{len(self.volumes.filesystems)}")
        return [entry for _, entry in rows]

    def action_export(self) -> None:
        if self.selected is None:
            self.set_status("nothing selected to export")
            return
        index, entry = self.selected
        try:
            result = self.export_entry(index, entry)
        except BitWitnessError as exc:
            self.set_status(f"export failed: {exc}")
            return
        failed = f", {len(result.failed)} NOT exported (see manifest)" if result.failed else ""
        self.set_status(f"exported {result.file_count} file(s){failed} to {result.destination}")

    def export_entry(self, index: str, entry: Entry) -> ExportResult:
        """Export one entry (file, stream or folder) with its manifest and custody event."""
        fs = self.filesystem(index)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        if self.export_to is not None:
            base = self.export_to
        elif self.case_dir is not None:
            base = self.case_dir / EXPORTS
        else:
            base = Path("exports")
        destination = base / f"{self.image.name}-{stamp}"
        path = escaped(entry.display_path)
        result = export(fs, [entry], destination, image=self.image.absolute(),
                        image_files=[p.absolute() for p in image_files(self.image)],
                        selection=Selection.ALL if entry.deleted else Selection.ALLOCATED,
                        unreadable=self.unreadable)
        if self.case_dir is not None:
            record_custody(self.case_dir, result, evidence_id=None, paths=[path])
        self.last_export = result
        return result


def run(image: Path, *, export_to: Path | None = None, case_dir: Path | None = None,
        keys: VolumeKeys = NO_KEYS) -> None:
    """Run the browser on a terminal until the user quits."""
    app: Any = EvidenceBrowser(image, export_to=export_to, case_dir=case_dir, keys=keys)
    app.run()
