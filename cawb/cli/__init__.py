"""The command-line faces, inside the package so that installed console commands and the clone's scripts run the
same code: each module holds one command's argparse parser and ``main(argv) -> exit status``, which parses,
calls one library function, and prints. Bad input ends with one line on stderr and exit status 2.

The top layer: may import anything in ``cawb``; nothing in ``cawb`` imports it. Heavy imports (torch,
ultralytics, OpenCV) happen inside ``main`` after parsing, so ``--help`` answers at once.
"""
