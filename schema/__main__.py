"""`python -m schema` prints the SDL (same as `recruitmail export-schema`)."""

import sys

from schema import export_sdl

sys.stdout.write(export_sdl())
