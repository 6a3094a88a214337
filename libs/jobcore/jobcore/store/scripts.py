"""The Lua scripts in ``lua/``, loaded at import, each called by the names of its slots.

Every script file opens with a header naming each slot: ``-- KEYS[1] = job: ...``,
``-- ARGV[2] = generation: ...`` (``KEYS[2...] = name`` takes the rest as a list). The header
is the one source of the argument order: ``LuaScript.call`` takes the values by name, and
the loader binds each slot to a local of that name before the script's body, after the
shared prelude (the key builders of ``keys.lua_prelude``, the vocabulary of
``model.states.lua_prelude`` and the helpers of ``lua/_records.lua``). A call is data
(``ScriptCall``); an executor runs it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jobcore.model.states import lua_prelude as states_prelude
from jobcore.store.keys import lua_prelude as keys_prelude

#: Where the scripts live.
LUA_DIR = Path(__file__).parent / "lua"
#: A header line naming one slot: ``-- KEYS[1] = job: what it is``.
_SLOT = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.\.)?\] = ([a-z_][a-z0-9_]*)\b")


@dataclass(frozen=True)
class ScriptCall:
    """One script to run with its keys and arguments in slot order (built by ``call``)."""

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]

    def command(self) -> tuple[Any, ...]:
        """The ``EVALSHA`` command that runs it."""
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


@dataclass(frozen=True)
class LuaScript:
    """One ``.lua`` file: its name, the names of its slots, and the source Redis runs."""

    name: str
    key_names: tuple[str, ...]
    arg_names: tuple[str, ...]
    #: The name of the trailing ``KEYS[n...]`` list, if the script takes one.
    rest_of_keys: str | None
    source: str

    @cached_property
    def sha(self) -> str:
        """The SHA1 digest ``EVALSHA`` names the script by."""
        return hashlib.sha1(self.source.encode()).hexdigest()

    @cached_property
    def _slot_order(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.key_names, self.arg_names

    @cached_property
    def _names(self) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset(self.key_names), frozenset(self.arg_names)

    def call(
        self,
        keys: Mapping[str, str],
        args: Mapping[str, Any] | None = None,
        rest_of_keys: tuple[str, ...] = (),
    ) -> ScriptCall:
        """A call with every slot given by name; a missing or unknown name is a bug."""
        given = args or {}
        if rest_of_keys and self.rest_of_keys is None:
            raise TypeError(f"{self.name}.lua takes no list of keys")
        if (tuple(keys), tuple(given)) != self._slot_order:
            # Not the order of the header: check the names, each given once.
            key_names, arg_names = self._names
            if keys.keys() != key_names or given.keys() != arg_names:
                raise TypeError(
                    f"{self.name}.lua takes keys {self.key_names} and arguments "
                    f"{self.arg_names}; got {tuple(keys)} and {tuple(given)}"
                )
            ordered_keys = tuple(keys[name] for name in self.key_names)
            ordered_args = tuple(given[name] for name in self.arg_names)
        else:
            ordered_keys, ordered_args = tuple(keys.values()), tuple(given.values())
        return ScriptCall(self, ordered_keys + rest_of_keys, ordered_args)


def parse_header(text: str) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """The key names, argument names and trailing key list a script's header declares."""
    slots: dict[str, dict[int, str]] = {"KEYS": {}, "ARGV": {}}
    rest = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = _SLOT.match(line)
        if not match:
            continue
        kind, index, variadic, name = match.groups()
        if variadic:
            rest = name
        else:
            slots[kind][int(index)] = name
    for kind, found in slots.items():
        if sorted(found) != list(range(1, len(found) + 1)):
            raise ValueError(f"{kind} slots must be numbered 1..n without gaps, not {found}")
    key_names = tuple(slots["KEYS"][i] for i in sorted(slots["KEYS"]))
    return key_names, tuple(slots["ARGV"][i] for i in sorted(slots["ARGV"])), rest


def _bindings(key_names: tuple[str, ...], arg_names: tuple[str, ...], rest: str | None) -> str:
    """``local job, due = KEYS[1], KEYS[2]`` and the like, from the header."""
    lines = [f"local {name} = KEYS[{i}]" for i, name in enumerate(key_names, start=1)]
    lines += [f"local {name} = ARGV[{i}]" for i, name in enumerate(arg_names, start=1)]
    if rest is not None:
        lines.append(f"local {rest} = {{unpack(KEYS, {len(key_names) + 1})}}")
    return "\n".join(lines) + "\n"


def prelude() -> str:
    """What every script runs before its own slots and body."""
    return keys_prelude() + states_prelude() + (LUA_DIR / "_records.lua").read_text()


def load(name: str) -> LuaScript:
    text = (LUA_DIR / f"{name}.lua").read_text()
    key_names, arg_names, rest = parse_header(text)
    source = prelude() + _bindings(key_names, arg_names, rest) + text
    return LuaScript(name, key_names, arg_names, rest, source)


CREATE = load("create")
CLAIM = load("claim")
BEGIN = load("begin")
RELEASE = load("release")
FINISH = load("finish")
PROGRESS = load("progress")
CANCEL = load("cancel")
RETRY = load("retry")
PROMOTE = load("promote")
RECOVER_LOST = load("recover_lost")
PURGE = load("purge")
LIST = load("list")
STATS = load("stats")
PRUNE = load("prune")
RENEW_LEASE = load("renew_lease")
RECORD_LAST_RUN = load("record_last_run")

#: Every script, by name.
ALL: dict[str, LuaScript] = {
    s.name: s
    for s in (
        CREATE,
        CLAIM,
        BEGIN,
        RELEASE,
        FINISH,
        PROGRESS,
        CANCEL,
        RETRY,
        PROMOTE,
        RECOVER_LOST,
        PURGE,
        LIST,
        STATS,
        PRUNE,
        RENEW_LEASE,
        RECORD_LAST_RUN,
    )
}
