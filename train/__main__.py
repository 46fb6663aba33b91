"""``python -m train``: see ``train.cli``."""
import logging
import os
import sys

from .cli import main
from .parallel import log_shards

if __name__ == "__main__":
    main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A process of a data-parallel launch ends here without the interpreter's teardown. Left to it, the gloo
        # process group is destroyed while Python is torn down, and its worker thread, freeing the tensors of a
        # finished collective, takes the GIL then and aborts the process (SIGABRT, exit -6, now and then; see
        # pytorch/pytorch#179291); destroyed earlier by hand, the DDP wrapper still holds it, and its destructor joins
        # that thread while holding the GIL the thread waits for (a hang). Everything is written by now.
        log_shards({"process": int(os.environ.get("RANK", "0")), "exit": 0})
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
