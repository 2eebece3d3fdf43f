#!/usr/bin/env python3
"""Write each bundled encoding's pre-parsed rank table, ``data/<name>.ranks``, from its
published rank file, and print the sha256 to put in ``EncodingSpec.ranks_sha256``.

    python scripts/pack_ranks.py            # rewrite the tables, print their sha256
    python scripts/pack_ranks.py --check    # exit 1 if a table is not its rank file's

Run it after a rank file changes. The rank files stay the source of truth (checked against
tiktoken's own sha256); ``tests/unit/test_tokenizers.py`` unpacks each table and compares
it with its parsed rank file, so a stale or edited table fails the suite.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from promptbudget.tokenizers import (
    ENCODINGS,
    _read_rank_file,
    pack_ranks,
    parse_rank_file,
    unpack_ranks,
)

DATA = Path(__file__).resolve().parent.parent / "src" / "promptbudget" / "tokenizers" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = 0
    for name, spec in sorted(ENCODINGS.items()):
        ranks = parse_rank_file(_read_rank_file(spec))
        packed = pack_ranks(ranks)
        path = DATA / f"{name}.ranks"
        if args.check:
            if not path.exists() or unpack_ranks(path.read_bytes()) != ranks:
                print(f"{path.name}: stale; run scripts/pack_ranks.py")
                stale += 1
            continue
        path.write_bytes(packed)
        print(f"{name}: ranks_sha256={hashlib.sha256(packed).hexdigest()}  ({len(packed):,} bytes)")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
