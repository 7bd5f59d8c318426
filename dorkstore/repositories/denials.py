"""DenialList: project paths refused during discovery."""

from __future__ import annotations

import builtins
from dataclasses import asdict

import peewee as pw

from dorkstore import validation as check
from dorkstore.backends import guarded, write_transaction
from dorkstore.models.mesh import AgentDenial
from dorkstore.records import DenialRecord
from dorkstore.repositories.base import Repository
from dorkstore.statements import Statement, assign, slot
from dorkstore.timestamps import format_timestamp

__all__ = ["DenialList"]

_NAMES = tuple(DenialRecord.__dataclass_fields__)
_COLUMNS = [AgentDenial._meta.columns[name] for name in _NAMES]

DENY = Statement(
    lambda: AgentDenial.insert(assign(AgentDenial, _NAMES)).on_conflict(
        conflict_target=[AgentDenial.path],
        preserve=[AgentDenial.reason, AgentDenial.denier, AgentDenial.created_at],
    )
)
DENIAL_BY_PATH = Statement(
    lambda: AgentDenial.select(*_COLUMNS).where(AgentDenial.path == slot("path")),
    into=AgentDenial.to_record,
)
IS_DENIED = Statement(
    lambda: AgentDenial.select(pw.SQL("1")).where(AgentDenial.path == slot("path"))
)
LIST_DENIALS = Statement(
    lambda: AgentDenial.select(*_COLUMNS).order_by(
        AgentDenial.created_at.desc(), AgentDenial.id.desc()
    ),
    into=AgentDenial.to_record,
)
CLEAR_DENIAL = Statement(lambda: AgentDenial.delete().where(AgentDenial.path == slot("path")))


class DenialList(Repository):
    """Project paths refused during discovery, stored canonical (symlinks and .. resolved)."""

    @guarded
    def deny(
        self, path: str, *, reason: str | None = None, denier: str | None = "user"
    ) -> DenialRecord:
        """Deny a path; denying it again replaces reason, denier and created_at."""
        now = self._now()
        denial = DenialRecord(
            id=self._new_id(now),
            path=check.canonical_path(path, "path"),
            reason=check.optional_text(reason, "reason"),
            denier=check.optional_text(denier, "denier"),
            created_at=format_timestamp(now),
        )
        with write_transaction():
            DENY.run(**asdict(denial))
            stored = DENIAL_BY_PATH.one(path=denial.path)
        return stored or denial

    @guarded
    def is_denied(self, path: str) -> bool:
        """Return True if the canonical form of `path` is denied."""
        return IS_DENIED.one(path=check.canonical_path(path, "path")) is not None

    @guarded
    def list(self) -> builtins.list[DenialRecord]:
        """Return every denial, newest first."""
        return LIST_DENIALS.all()

    @guarded
    def clear(self, path: str) -> bool:
        """Remove a denial; False if the path was not denied."""
        return bool(CLEAR_DENIAL.run(path=check.canonical_path(path, "path")))
