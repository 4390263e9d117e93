"""The regulator: the risk monitor's alerts across every organisation, their review, scans."""
