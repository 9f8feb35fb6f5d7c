"""A page of a ranked list found without counting it: ``size + 1`` rows tell whether there is a next.

A clinician works from the top of a list, and the page's counts already give the totals; a
"page 1 of 3,219" would need a COUNT over every match on each request.
"""

from __future__ import annotations

from collections.abc import Sequence


class UncountedPage:
    """Paging links for a page with ``number``, ``size``, ``has_next`` and its ``items``."""

    number: int
    size: int
    has_next: bool

    @property
    def items(self) -> Sequence[object]:
        raise NotImplementedError

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.size + 1

    @property
    def end_index(self) -> int:
        return self.start_index + len(self.items) - 1
