import sys

if sys.argv[1:2] == ["label"]:
    from tools.calibration.label import main

    raise SystemExit(main(sys.argv[2:]))
if sys.argv[1:2] == ["probe-table"]:
    from tools.calibration.probe_table import main

    raise SystemExit(main(sys.argv[2:]))
from tools.calibration.run import main  # noqa: E402

raise SystemExit(main())
