from brandsafe.cli import main

raise SystemExit(main())
