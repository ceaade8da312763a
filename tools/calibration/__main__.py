from tools.calibration.run import main

raise SystemExit(main())
