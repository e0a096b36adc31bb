import sys

from yolobench.cli import main

sys.exit(main())
