"""Options every command spells the same way: ``--profile`` (its choices in the help), ``--engines``
(``a,b`` or ``a b``), ``--quiet``, ``--json``."""

from __future__ import annotations

import argparse


def profile_help(what: str) -> str:
    from yolobench import catalogue

    return f"{what}: {', '.join(catalogue.PROFILES)}"


def add_profile(parser: argparse.ArgumentParser, *, default: str | None = "smoke",
                what: str = "build profile") -> None:
    parser.add_argument("--profile", default=default, metavar="PROFILE",
                        help=profile_help(what) + (f" (default: {default})" if default else ""))


def add_engines(parser: argparse.ArgumentParser, *, what: str = "engines to run, in this order") -> None:
    from yolobench import engines

    parser.add_argument("--engines", nargs="+", default=None, metavar="ENGINE",
                        help=f"{what}: comma- or space-separated, from {', '.join(engines.engine_names())} "
                             "(default: all)")


def engine_list(values) -> list[str]:
    """``--engines`` as given (``['a,b']`` or ``['a', 'b']``) or None -> checked names, in order."""
    from yolobench import bench

    return bench.parse_engines(values)


def add_quiet(parser: argparse.ArgumentParser, what: str = "no progress lines") -> None:
    parser.add_argument("--quiet", action="store_true", help=what)


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout (for scripts)")
