import sys

from dpfusion.cli import main

sys.exit(main())
