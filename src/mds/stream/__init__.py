"""Event fan-out: the Bus that carries bar and quote events to WebSocket clients."""
