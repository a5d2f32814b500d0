import sys

from mltrainer.cli import main

sys.exit(main())
