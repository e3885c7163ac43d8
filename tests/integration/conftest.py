"""Root conftest for Canopy integration tests: loads the fixture modules."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

pytest_plugins = ["fixtures.pg", "fixtures.camera", "fixtures.daemons", "fixtures.edge",
                  "fixtures.central", "fixtures.relay"]
