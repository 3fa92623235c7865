from autosdlc_ws.cli import main

raise SystemExit(main())
