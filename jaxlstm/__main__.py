"""``python -m jaxlstm``: the ``jaxlstm`` command."""

import sys

from jaxlstm.commands import main

sys.exit(main())
