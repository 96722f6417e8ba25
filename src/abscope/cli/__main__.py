"""``python -m abscope.cli``: the same as the ``abscope`` console script."""

from abscope.cli import main

if __name__ == "__main__":
    main()
