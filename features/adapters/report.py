"""What an adapter did to a raw dataset: counts of dropped / mapped / repaired rows and plain-text notes.

Adapters never drop or repair silently: every change is counted here under a name that says what it was
(``purchase_lines_quantity_le_0_dropped``), and every source quirk they worked around gets a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AdapterReport"]


@dataclass
class AdapterReport:
    """Counts (``counts``) and notes (``notes``) of one adapter run on one dataset."""

    dataset: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, what: str, n: int) -> None:
        """Add ``n`` to counter ``what`` (zero counts are recorded too: "checked, none found" is news)."""
        self.counts[what] = self.counts.get(what, 0) + int(n)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def __str__(self) -> str:
        lines = [f"{self.dataset}:"]
        lines += [f"  {k} = {v:,}" for k, v in self.counts.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
