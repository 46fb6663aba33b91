"""``python -m train``: see ``train.cli``."""
from .cli import main

if __name__ == "__main__":
    main()
