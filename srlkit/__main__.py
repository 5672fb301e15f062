"""`python -m srlkit ...` and `accelerate launch -m srlkit train ...`."""

from srlkit.cli import main

if __name__ == "__main__":
    main()
