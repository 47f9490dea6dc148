"""Operations: config reload, and later the SLO monitor, scheduler and coverage."""
