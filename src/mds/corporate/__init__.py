"""Corporate actions applied to prices: adjustment factors and unexplained jumps."""
