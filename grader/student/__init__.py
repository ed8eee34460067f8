"""What students run inside a handout: ``lmcourse check`` and ``lmcourse submit``."""
