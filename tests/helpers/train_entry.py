"""Entry script for the multi-process tests: `accelerate launch ... tests/helpers/train_entry.py train ARGS`.

It registers the test reward (as the resume test's subprocess wrapper does) and runs the CLI.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the repo root

if __name__ == "__main__":  # reward worker processes re-import this file: they must not train
    from tests.helpers import training as fixtures

    fixtures.install()

    from srlkit.cli import main

    main(sys.argv[1:])
