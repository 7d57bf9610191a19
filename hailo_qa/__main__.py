import sys

from hailo_qa.cli import main

sys.exit(main())
