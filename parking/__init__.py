"""Car parks, guidance of searching drivers and demand-responsive prices (see the parking issue)."""
