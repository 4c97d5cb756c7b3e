import sys

from pixelplayer.cli import main

sys.exit(main())
