"""The `thrifty` command line."""

import sys


def main(argv=None) -> int:
    from thrifty import _cli_impl

    return _cli_impl.main(sys.argv[1:] if argv is None else argv)
