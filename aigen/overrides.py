"""Command-line overrides checked before Hydra runs the app: a typo is one `error:` line that names the closest valid
key or group option, never Hydra's hint to add the key with `+` (which would silently run the default instead)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aigen.errors import UserError

# Flags of Hydra's own command line that take no `key=value` and need no check (their values neither).
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun"}  # fmt: skip


def command_line_overrides(argv: list[str]) -> list[str] | None:
    """The `key=value` overrides of a command line; None when it picks another config (then Hydra checks)."""
    overrides, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in FLAGS_WITH_VALUE:
            if arg in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"):
                return None
            skip = arg != "--info" and arg != "-i"
        elif not arg.startswith("-"):
            overrides.append(arg)
    return overrides


def closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def config_keys(cfg: DictConfig, prefix: str = "") -> Iterator[str]:
    """Every dotted key of a composed config (Hydra's own node left out)."""
    for key in cfg:
        name = f"{prefix}{key}"
        yield name
        node = cfg._get_node(key)
        if isinstance(node, DictConfig):
            yield from config_keys(node, f"{name}.")


def did_you_mean(override: Override, suggestion: str | None, problem: str) -> UserError:
    text = override.input_line
    hint = f": did you mean `{suggestion}`?" if suggestion else ""
    return UserError(f"`{text}`: {problem}{hint}")


def check_group_options(override: Override, options: list[str]) -> None:
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    for value in values:
        if isinstance(value, str) and value not in options:
            suggestion = closest(value, options)
            raise did_you_mean(
                override,
                f"{override.get_key_element()}={suggestion}" if suggestion else None,
                f"{value!r} is not an option of the config group {override.key_or_group!r} ({', '.join(options)})",
            )


COMMANDS = {"config": "python run.py", "detect": "python -m aigen.detect"}  # which command composes which config
ADDED_GROUPS = {"experiment": "config"}  # groups no defaults list chooses (added with +), by the config they serve


def default_groups(config_dir: str, config_name: str) -> set[str]:
    """The config groups a primary config chooses in its defaults list (`source`, `generator`, ...)."""
    defaults = OmegaConf.load(Path(config_dir) / f"{config_name}.yaml").get("defaults", [])
    return {key for entry in defaults if isinstance(entry, DictConfig) for key in entry}


def group_owner(group: str, config_dir: str) -> str | None:
    """The config a group belongs to: the one whose defaults list chooses it, or the one it is added to with `+`."""
    chosen = [name for name in COMMANDS if group in default_groups(config_dir, name)]
    return chosen[0] if chosen else ADDED_GROUPS.get(group)


def wrong_group(override: Override, config_dir: str, config_name: str) -> UserError | None:
    """A group of the other command (`model=` on run.py, `+experiment=` on aigen.detect), or one this config adds
    with `+` given without it (`experiment=demo`); None when the override is right."""
    group, line = override.key_or_group, override.input_line
    if group in default_groups(config_dir, config_name):
        return None
    owner = group_owner(group, config_dir)
    if owner is not None and owner != config_name:
        return UserError(f"`{line}`: {group} is a setting of {COMMANDS[owner]}, not of {COMMANDS[config_name]}")
    if not (override.is_add() or override.is_delete()):
        value = line.split("=", 1)[1]
        return UserError(f"`{line}`: no {group} is chosen by default; add one with `+{group}={value}`")
    return None


def check_overrides(config_dir: str, config_name: str, argv: list[str]) -> None:
    """Compose the config the command line asks for, as Hydra will; raise one UserError for an unknown group
    option, an unknown key (both with the closest valid one) or a value Hydra refuses."""
    overrides = command_line_overrides(argv)
    if not overrides:
        return
    try:
        parsed = [
            o for o in OverridesParser.create().parse_overrides(overrides) if not o.key_or_group.startswith("hydra")
        ]
    except HydraException as error:
        raise UserError(first_line(error)) from None
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        groups = [g for g in loader.get_group_options("", results_filter=ObjectType.GROUP) if g != "hydra"]
        choices = [o for o in parsed if o.key_or_group in groups]
        for override in choices:
            if not override.is_delete():
                check_group_options(override, loader.get_group_options(override.key_or_group))
            error = wrong_group(override, config_dir, config_name)
            if error:
                raise error
        try:
            base = compose(config_name, overrides=[one_value(o) for o in choices])
        except (HydraException, OmegaConfBaseException) as error:  # e.g. an experiment of the other command
            raise UserError(first_line(error)) from None
        for override in parsed:
            key = override.key_or_group
            if key in groups or override.is_add() or override.is_delete():
                continue
            if not has_key(base, key):
                suggestion = closest(key, [*groups, *config_keys(base)])
                value = override.input_line.split("=", 1)[1]
                raise did_you_mean(override, suggestion and f"{suggestion}={value}", f"no key {key!r} in the config")
        try:
            compose(config_name, overrides=[one_value(o) for o in parsed])
        except (HydraException, OmegaConfBaseException) as error:
            raise UserError(first_line(error)) from None


def has_key(cfg: DictConfig, dotted: str) -> bool:
    """Whether the config has this key, without resolving any value (`${hydra:...}` cannot be resolved here)."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig):
            return False
        try:
            node = node._get_node(part, throw_on_missing_key=False)
        except OmegaConfBaseException:  # a struct config refuses the lookup of a key it lacks
            return False
        if node is None:
            return False
    return True


def one_value(override: Override) -> str:
    """The override as one run of it: a sweep by its first value."""
    if not override.is_sweep_override():
        return override.input_line
    return f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"


def first_line(error: Exception) -> str:
    """Hydra's message without its `+key` advice."""
    line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return line.split(" To append to your config use")[0]
